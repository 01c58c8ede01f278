"""Geometric and appearance features of one object crop (ROS-free, numpy + opencv).

The default labeller classifies these; they are chosen to tell the project's
categories apart from any viewpoint of the cell's cameras: size and footprint
(a can is wider than a bottle, a screwdriver long and thin), the height profile
(a bottle narrows to its cap), a dip in the middle of the top (an open mug or
bowl shows its inside), and colour statistics (a can's label band, a
screwdriver's metal shaft, a textured box). Every feature is scale-aware in
metres or a ratio; none depends on the image resolution.
"""

from __future__ import annotations

import cv2
import numpy as np

from robot_memory.perception.appearance import footprint, shape_features
from robot_memory.perception.labelling.base import ObjectCrop

HEIGHT_BINS = 5
#: np.histogram's bin edges for HEIGHT_BINS bins over [0, 1].
_HEIGHT_EDGES = np.linspace(0.0, 1.0, HEIGHT_BINS + 1)
FEATURE_NAMES: tuple[str, ...] = (
    "length",
    "width",
    "height",
    "elongation",
    "footprint_fill",
    "top_fill",
    "top_fraction",
    "circularity",
    *(f"height_profile_{i}" for i in range(HEIGHT_BINS)),
    *(f"width_profile_{i}" for i in range(HEIGHT_BINS)),
    "centre_dip",
    "centre_spread",
    "view_elevation",
    "saturation_mean",
    "value_mean",
    "value_std",
    "white_fraction",
    "dark_fraction",
    "colourful_fraction",
    "hue_concentration",
    "hue_std_local",
    "texture",
)


def _rect_frame(rect: tuple) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Centre, unit long axis, long and short side of a cv2 min-area rectangle in mm."""
    (cx, cy), (a, b), angle = rect
    theta = np.radians(angle) if a >= b else np.radians(angle + 90.0)
    axis = np.array([np.cos(theta), np.sin(theta)])
    return np.array([cx, cy]) * 1e-3, axis, max(a, b) * 1e-3, min(a, b) * 1e-3


def band_spread(
    values: np.ndarray, band: np.ndarray, n_bands: int, q: tuple[float, float] = (5.0, 95.0)
) -> np.ndarray:
    """Per band (0..n_bands-1): the ``q[1]`` minus the ``q[0]`` percentile of its
    values (numpy's default linear interpolation), 0 for bands with fewer than 3
    values. One sort for all bands instead of two percentile calls per band."""
    # np.lexsort((values, band)) as two stable sorts: the same order, faster
    order = np.argsort(values, kind="stable")
    order = order[np.argsort(band[order], kind="stable")]
    v = values[order]
    counts = np.bincount(band, minlength=n_bands)[:n_bands]
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    out = np.zeros(n_bands)
    ok = counts >= 3
    if not ok.any():
        return out
    start, last = starts[ok], starts[ok] + counts[ok] - 1

    def at(percent: float) -> np.ndarray:
        pos = start + percent / 100.0 * (last - start)
        below = np.floor(pos).astype(int)
        above = np.minimum(below + 1, last)
        return v[below] + (v[above] - v[below]) * (pos - below)

    out[ok] = at(q[1]) - at(q[0])
    return out


def _height_histogram(h: np.ndarray) -> np.ndarray:
    """np.histogram(h, HEIGHT_BINS, range=(0, 1)) of ``h`` in [0, 1], as fractions:
    the same bins (edges included left, the last also right), by one search."""
    bins = np.minimum(np.searchsorted(_HEIGHT_EDGES, h, side="right") - 1, HEIGHT_BINS - 1)
    return np.bincount(bins, minlength=HEIGHT_BINS) / len(h)


def _median(values: np.ndarray) -> float:
    """np.median of a non-empty 1-D array without NaNs, by one partition."""
    n = len(values)
    half = n // 2
    if n % 2:
        return float(np.partition(values, half)[half])
    part = np.partition(values, (half - 1, half))
    return float((part[half - 1] + part[half]) / 2.0)


def crop_features(crop: ObjectCrop) -> np.ndarray:
    """The feature vector (``FEATURE_NAMES`` order, float32) of ``crop``."""
    pts = np.asarray(crop.points, dtype=np.float64)
    out = np.zeros(len(FEATURE_NAMES), dtype=np.float32)
    if len(pts) < 3:
        return out
    base = footprint(pts[:, :2])  # one hull for the shape features and the frame
    f = shape_features(pts, crop.support_z, base=base)
    height = max(f.height, 1e-3)
    centre, axis, long_side, short_side = _rect_frame(base.rect)
    rel = pts[:, :2] - centre
    along = rel @ axis
    across = rel @ np.array([-axis[1], axis[0]])
    hull_area = base.hull_area
    circle = np.pi * (max(long_side, 1e-3) / 2.0) ** 2
    h = np.clip((pts[:, 2] - crop.support_z) / height, 0.0, 1.0)
    hist = _height_histogram(h)
    band = np.minimum((h * HEIGHT_BINS).astype(int), HEIGHT_BINS - 1)
    widths = band_spread(across, band, HEIGHT_BINS) / max(short_side, 1e-3)
    radius = np.hypot(along / max(long_side / 2, 1e-3), across / max(short_side / 2, 1e-3))
    inner, outer = radius < 0.45, radius > 0.7
    centre_dip = 0.0
    if np.count_nonzero(inner) >= 3 and np.count_nonzero(outer) >= 3:
        centre_dip = _median(h[outer]) - _median(h[inner])
    centre_spread = float(np.std(h[inner])) if np.count_nonzero(inner) >= 3 else 0.0
    to_camera = np.asarray(crop.camera_position, float) - pts.mean(axis=0)
    elevation = float(to_camera[2] / max(np.linalg.norm(to_camera), 1e-6))
    geometric = [
        f.length,
        f.width,
        f.height,
        long_side / max(short_side, 1e-3),
        f.footprint_fill,
        f.top_fill,
        f.top_fraction,
        hull_area / circle,
        *hist,
        *widths,
        centre_dip,
        centre_spread,
        elevation,
    ]
    out[: len(geometric)] = geometric
    out[len(geometric) :] = _appearance(crop)
    return out


def _appearance(crop: ObjectCrop) -> list[float]:
    px = np.asarray(crop.pixels, dtype=np.uint8).reshape(-1, 1, 3)
    hsv = cv2.cvtColor(px, cv2.COLOR_RGB2HSV).reshape(-1, 3).astype(np.float64)
    hue, sat, val = hsv[:, 0] * (2 * np.pi / 180.0), hsv[:, 1] / 255.0, hsv[:, 2] / 255.0
    colourful = (sat > 0.3) & (val > 0.15)
    concentration = 0.0
    if np.count_nonzero(colourful) >= 3:
        a = hue[colourful]
        concentration = float(np.hypot(np.cos(a).mean(), np.sin(a).mean()))
    texture = hue_std_local = 0.0
    if crop.image.size and crop.mask.any():
        grey = cv2.cvtColor(crop.image, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
        inner = cv2.erode(crop.mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        if inner.any():
            lap = np.abs(cv2.Laplacian(grey, cv2.CV_32F, ksize=3))
            texture = float(np.mean(lap[inner]))
            saturation = cv2.cvtColor(crop.image, cv2.COLOR_RGB2HSV)[..., 1][inner]
            hue_std_local = float(np.std(saturation.astype(np.float32)) / 255.0)
    return [
        float(sat.mean()),
        float(val.mean()),
        float(val.std()),
        float(np.mean((sat < 0.2) & (val > 0.7))),
        float(np.mean(val < 0.2)),
        float(np.mean(colourful)),
        concentration,
        hue_std_local,
        texture,
    ]
