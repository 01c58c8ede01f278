"""The labelling interface: what a labeller sees of an object, and what it answers.

Perception segments objects by geometry and names their colour itself; the
*category* ("mug", "cube", "screwdriver") comes from a :class:`Labeller`. Three
are shipped (``docs/perception.md``, "Labelling"):

* ``features`` (default): geometric and appearance features of the cluster and
  a small classifier trained on the project's rendered objects
  (``models/object_labeller/``); no image model, CPU only, ~0.1 ms an object;
* ``vlm``: image crops sent to any OpenAI-compatible vision model, off the frame
  thread, cached per tracked object; the ``features`` answer stands in until
  the server's arrives;
* ``image_text``: a CLIP/SigLIP-style model loaded from a local directory the
  user points to (never downloaded), crops scored against the category prompts.

A labeller never raises for a bad object: it answers :data:`UNKNOWN`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np

#: The answer when a labeller cannot tell (no model answer, garbage, too little seen).
UNKNOWN = "object"


@dataclass(frozen=True)
class ObjectCrop:
    """One segmented object in one frame, as a labeller sees it."""

    points: np.ndarray  # (N, 3) world points of the cluster [m]
    pixels: np.ndarray  # (N, 3) uint8 RGB of those points
    support_z: float  # world z of what it rests on [m]
    camera_position: np.ndarray  # (3,) world [m]
    image: np.ndarray  # (h, w, 3) uint8 RGB crop around the object (with a margin)
    mask: np.ndarray  # (h, w) bool: the object's pixels in ``image``
    color: str  # perception's colour word
    camera: str = ""
    stamp: float = 0.0

    @property
    def centroid(self) -> np.ndarray:
        return (self.points.min(axis=0) + self.points.max(axis=0)) / 2.0


@dataclass(frozen=True)
class Label:
    """A category word and how sure the labeller is of it (0..1)."""

    category: str
    confidence: float
    source: str = ""  # which labeller answered: "features", "vlm", "image_text"
    scores: dict[str, float] = field(default_factory=dict)  # per category, where known


class Labeller(Protocol):
    """``label`` is called on the perception thread for every object of every
    frame: it must return quickly (a slow model works asynchronously and answers
    from its cache). ``categories`` lists the words it can answer."""

    categories: tuple[str, ...]

    def label(self, crop: ObjectCrop) -> Label: ...

    def close(self) -> None: ...


def crop_image(
    rgb: np.ndarray, rows: np.ndarray, cols: np.ndarray, margin: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """The RGB crop around pixels (rows, cols) with ``margin`` px, and the mask
    of those pixels in it (gaps of a strided cloud closed by a dilation)."""
    h, w = rgb.shape[:2]
    if len(rows) == 0:
        return np.zeros((0, 0, 3), np.uint8), np.zeros((0, 0), bool)
    r0, r1 = max(0, int(rows.min()) - margin), min(h, int(rows.max()) + margin + 1)
    c0, c1 = max(0, int(cols.min()) - margin), min(w, int(cols.max()) + margin + 1)
    mask = np.zeros((r1 - r0, c1 - c0), bool)
    mask[rows - r0, cols - c0] = True
    unique_rows = np.unique(rows)
    step = int(np.min(np.diff(unique_rows))) if len(unique_rows) > 1 else 1
    if step > 1:  # strided back-projection: fill the pixels between samples
        kernel = np.ones((step + 1, step + 1), np.uint8)
        mask = cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)
    return rgb[r0:r1, c0:c1].copy(), mask
