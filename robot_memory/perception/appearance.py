"""What a cluster looks like: a colour word from HSV and a shape word from its
geometry (ROS-free; opencv for colour conversion and 2-D hulls).

Shape rules are tuned on the sim objects (cube 5 cm, cylinder d4.4 h7, sphere
d5, block 4x8x5, lying capsule 9x4x4, hexagonal prism 5x4.33x5, the 11 cm
open-bottom cover) seen by the front and wrist cameras.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from robot_memory.perception.config import PerceptionConfig

#: Upper hue bounds (OpenCV hue, 0-180) of each colour word; red wraps around.
HUE_BINS: tuple[tuple[float, str], ...] = (
    (8.0, "red"),
    (20.0, "orange"),
    (34.0, "yellow"),
    (85.0, "green"),
    (128.0, "blue"),
    (165.0, "purple"),
    (180.1, "red"),
)


def color_name(rgb_pixels: np.ndarray, config: PerceptionConfig) -> tuple[str, np.ndarray]:
    """Colour word and mean colour (0..1) of (N, 3) uint8 RGB pixels.

    Hue is the circular mean over saturated, lit pixels (shaded faces keep their
    hue) when at least ``min_colourful_fraction`` of the pixels are (a can's
    colour shows on its side, not on its metal lid or white label band); with
    fewer, the brightness picks white, grey or black: black when at least
    ``black_fraction`` of the pixels are dark (under ``grey_value``: a black
    handle with a bright steel shaft is a black screwdriver), else by the 75th
    percentile of the brightness (a white bowl with its inside in shade, a
    white cover with a shaded side, up to half its pixels dark, stay white).
    """
    px = np.asarray(rgb_pixels, dtype=np.uint8).reshape(-1, 1, 3)
    mean_rgb = px.reshape(-1, 3).mean(axis=0) / 255.0 if len(px) else np.zeros(3)
    if len(px) == 0:
        return "unknown", mean_rgb
    hsv = cv2.cvtColor(px, cv2.COLOR_RGB2HSV).reshape(-1, 3).astype(np.float64)
    hue, sat, val = hsv[:, 0], hsv[:, 1], hsv[:, 2]
    colourful = (sat >= config.min_saturation) & (val >= config.min_value)
    if np.count_nonzero(colourful) >= config.min_colourful_fraction * len(px):
        angle = hue[colourful] * (2.0 * np.pi / 180.0)
        mean_angle = np.arctan2(np.sin(angle).mean(), np.cos(angle).mean())
        mean_hue = (np.degrees(mean_angle) / 2.0) % 180.0
        for upper, name in HUE_BINS:
            if mean_hue < upper:
                return name, mean_rgb
    if np.count_nonzero(val < config.grey_value) >= config.black_fraction * len(val):
        return "black", mean_rgb
    brightness = np.percentile(val, 75)
    if brightness >= config.white_value:
        return "white", mean_rgb
    if brightness >= config.grey_value:
        return "grey", mean_rgb
    return "black", mean_rgb


@dataclass(frozen=True)
class ShapeFeatures:
    length: float  # long side of the xy footprint [m]
    width: float  # short side
    height: float  # top above the support [m]
    footprint_fill: float  # footprint hull area / its min-area rectangle
    top_fill: float  # hull of the flat top (points near the top) / its min-area rectangle
    top_fraction: float  # area of the flat top / area of the whole footprint


@dataclass(frozen=True)
class Footprint:
    """The convex hull of points seen from above and its min-area rectangle."""

    hull_area: float  # m²
    rect: tuple  # cv2.minAreaRect of the hull, in mm: ((cx, cy), (a, b), angle)

    @property
    def sides(self) -> tuple[float, float]:
        """(long, short) side of the rectangle [m]."""
        a, b = self.rect[1]
        return max(a, b) * 1e-3, min(a, b) * 1e-3


def footprint(xy: np.ndarray) -> Footprint:
    """Hull and min-area rectangle of (N, 2) points [m]; empty below 3 points.
    The rectangle of the hull is the rectangle of the points (cv2 takes the hull
    first either way), so callers needing both compute the hull once."""
    if len(xy) < 3:
        return Footprint(0.0, ((0.0, 0.0), (0.0, 0.0), 0.0))
    pts = (xy * 1000.0).astype(np.float32).reshape(-1, 1, 2)  # mm for opencv's precision
    hull = cv2.convexHull(pts)
    return Footprint(float(cv2.contourArea(hull)) * 1e-6, cv2.minAreaRect(hull))


def shape_features(
    points: np.ndarray, support_z: float, flat_band: float = 0.004, base: Footprint | None = None
) -> ShapeFeatures:
    """Footprint, height and top flatness of a cluster's visible points
    (``base``: the points' :func:`footprint`, if the caller has it already)."""
    top_z = float(np.percentile(points[:, 2], 99))
    base = base or footprint(points[:, :2])
    hull_area, (length, width) = base.hull_area, base.sides
    rect_area = length * width
    top = points[points[:, 2] >= top_z - flat_band]
    top_fit = footprint(top[:, :2])
    top_hull, top_rect = top_fit.hull_area, top_fit.sides[0] * top_fit.sides[1]
    return ShapeFeatures(
        length=length,
        width=width,
        height=top_z - support_z,
        footprint_fill=hull_area / rect_area if rect_area > 0 else 0.0,
        top_fill=top_hull / top_rect if top_rect > 0 else 0.0,
        top_fraction=top_hull / hull_area if hull_area > 0 else 0.0,
    )


def shape_name(f: ShapeFeatures) -> str:
    """Shape word from :class:`ShapeFeatures`; "object" when nothing fits."""
    if f.length > 0.085 and f.height > 0.07:
        return "box"  # the 11 cm cover, or anything that large and tall
    elongation = f.length / max(f.width, 1e-6)
    if f.height > 0.055 and f.length < 0.06:
        return "cylinder"
    if elongation > 1.5 and f.length > 0.06:
        if f.top_fraction < 0.75 or f.height < 0.045:
            return "capsule"
        return "block"
    if f.length < 0.065:
        if f.top_fraction < 0.45:
            return "sphere"
        return "cube" if f.top_fill > 0.87 else "prism"
    return "object"
