"""RGB images as ``data:`` URLs for OpenAI-compatible vision requests (the
planner's scene image, the VLM labeller's object crops)."""

from __future__ import annotations

import base64

import cv2
import numpy as np


def image_data_url(image: np.ndarray, fmt: str = "jpeg", max_side: int = 640) -> str:
    """RGB uint8 (H, W, 3) -> ``data:image/...;base64,...`` (downscaled to ``max_side``)."""
    if not (
        isinstance(image, np.ndarray)
        and image.dtype == np.uint8
        and image.ndim == 3
        and image.shape[2] == 3
        and min(image.shape[:2]) > 0
    ):
        raise ValueError("the image must be RGB uint8 (H, W, 3)")
    h, w = image.shape[:2]
    scale = max_side / max(h, w)
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    ext, mime = (".png", "image/png") if fmt == "png" else (".jpg", "image/jpeg")
    ok, buf = cv2.imencode(ext, bgr)
    if not ok:
        raise ValueError(f"could not encode the image as {fmt}")
    return f"data:{mime};base64,{base64.b64encode(buf.tobytes()).decode('ascii')}"
