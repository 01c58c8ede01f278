"""A RealSense-class depth noise model, and extrinsic calibration error (sim only).

Rendered depth is perfect; an active-stereo camera's is not. :class:`DepthNoise`
turns a rendered depth image into what a D400-series camera would report, from
the stereo geometry ``z = f * b / d`` (focal length ``f`` in pixels, baseline
``b``, disparity ``d``):

* **Axial noise** grows with the square of the distance: the disparity is
  matched to ``subpixel_sigma_px`` (RMS), so ``sigma_z = z**2 * sigma_d / (f * b)``
  with ``sigma_d`` that noise and the quantization's together (D435 at 848 px,
  f ~ 450 px: 0.4% of z at 1 m, 1.6% at 2 m with the defaults; Intel quotes
  <= 2% at 2 m);
* **Quantization** of the disparity to ``subpixel_step_px`` (1/8 px here;
  the step in depth, ``z**2 * step / (f * b)``, grows with z**2 too), then of
  the depth to ``depth_unit_m`` (1 mm: the z16 stream);
* **Holes** (0, "no depth"): pixels where the depth jumps by more than
  ``edge_jump_m`` to a neighbour are lost with ``edge_hole_prob`` (occlusion
  shadows and the matcher failing on edges); pixels darker than
  ``dark_luminance`` (0-255) with ``dark_hole_prob`` (no texture, no IR
  return); every pixel with ``random_hole_prob``; nearer than ``min_range_m``
  or further than ``max_range_m`` always;
* **Flying pixels**: an edge pixel that survives takes, with ``flying_prob``,
  a depth between the near and the far side (the matcher mixing both).

The defaults are a D435 at 848x480 scaled to the image: ``baseline_m`` 0.050,
the rest as above; :meth:`DepthNoise.sigma_z` is the documented axial noise and
``test_depth_noise.py`` checks the statistics against it.

:func:`miscalibrated_pose` is the extrinsic error: the pose a cell believes
its camera has, off by a fixed translation and rotation drawn once per camera
(a calibration a few millimetres and a fraction of a degree off).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DepthNoise:
    baseline_m: float = 0.050
    subpixel_sigma_px: float = 0.08
    subpixel_step_px: float = 0.125
    depth_unit_m: float = 0.001
    min_range_m: float = 0.105
    max_range_m: float = 6.0
    edge_jump_m: float = 0.03
    edge_hole_prob: float = 0.5
    flying_prob: float = 0.3
    dark_luminance: float = 25.0
    dark_hole_prob: float = 0.6
    random_hole_prob: float = 0.002

    def __post_init__(self) -> None:
        for name in ("baseline_m", "subpixel_step_px", "depth_unit_m", "max_range_m"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("edge_hole_prob", "flying_prob", "dark_hole_prob", "random_hole_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.subpixel_sigma_px < 0 or self.min_range_m < 0 or self.edge_jump_m <= 0:
            raise ValueError("subpixel_sigma_px and min_range_m >= 0, edge_jump_m > 0")

    def sigma_z(self, z: np.ndarray | float, focal_px: float) -> np.ndarray | float:
        """The axial error (RMS) [m] at depth ``z`` for a focal length in pixels:
        the matching noise and the disparity quantization (``step / sqrt(12)``)."""
        sigma_px = np.hypot(self.subpixel_sigma_px, self.subpixel_step_px / np.sqrt(12.0))
        return np.square(z) * sigma_px / (focal_px * self.baseline_m)

    def apply(
        self, depth: np.ndarray, focal_px: float, rng: np.random.Generator,
        rgb: np.ndarray | None = None,
    ) -> np.ndarray:  # fmt: skip
        """The noisy depth (float32, m, 0 = no depth) of a rendered one."""
        z = np.asarray(depth, dtype=np.float64)
        valid = np.isfinite(z) & (z > 0)
        fb = focal_px * self.baseline_m
        disparity = np.where(valid, fb / np.where(valid, z, 1.0), 0.0)
        edge, near, far = self._edges(np.where(valid, z, 0.0))
        disparity += rng.normal(0.0, self.subpixel_sigma_px, z.shape) * valid
        disparity = np.round(disparity / self.subpixel_step_px) * self.subpixel_step_px
        out = np.where(disparity > 0, fb / np.where(disparity > 0, disparity, 1.0), 0.0)
        flying = edge & valid & (rng.random(z.shape) < self.flying_prob)
        out = np.where(flying, near + rng.random(z.shape) * (far - near), out)
        holes = ~valid | (disparity <= 0)
        holes |= edge & (rng.random(z.shape) < self.edge_hole_prob)
        holes |= rng.random(z.shape) < self.random_hole_prob
        if rgb is not None:
            luminance = np.asarray(rgb, dtype=np.float64) @ np.array([0.299, 0.587, 0.114])
            holes |= (luminance < self.dark_luminance) & (rng.random(z.shape) < self.dark_hole_prob)
        out = np.round(out / self.depth_unit_m) * self.depth_unit_m
        holes |= (out < self.min_range_m) | (out > self.max_range_m)
        return np.where(holes, 0.0, out).astype(np.float32)

    def _edges(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pixels with a 4-neighbour more than ``edge_jump_m`` away (or without
        depth next to depth), and the nearest / furthest depth around them."""
        pad = np.pad(z, 1, mode="edge")
        around = np.stack([pad[:-2, 1:-1], pad[2:, 1:-1], pad[1:-1, :-2], pad[1:-1, 2:], z])
        known = np.where(around > 0, around, np.nan)
        with warnings.catch_warnings():  # a pixel with no depth around it: NaN, handled below
            warnings.simplefilter("ignore", RuntimeWarning)
            near, far = np.nanmin(known, axis=0), np.nanmax(known, axis=0)
        jump = np.nan_to_num(far - near, nan=0.0) > self.edge_jump_m
        mixed = (z > 0) & np.any(around <= 0, axis=0)
        return jump | mixed, np.nan_to_num(near, nan=0.0), np.nan_to_num(far, nan=0.0)


DEPTH_NOISE_MODELS = ("none", "realsense")


def depth_noise_named(name: str) -> DepthNoise | None:
    """The sim parameter ``depth_noise``: "none" (perfect depth) or "realsense"."""
    if name not in DEPTH_NOISE_MODELS:
        raise ValueError(f"depth_noise must be one of {list(DEPTH_NOISE_MODELS)}, got {name!r}")
    return None if name == "none" else DepthNoise()


def miscalibrated_pose(
    position: np.ndarray, rotation: np.ndarray, translation_m: float, rotation_deg: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(position, 3x3 rotation) off by a translation of ``translation_m`` in a
    random direction and a rotation of ``rotation_deg`` about a random axis."""
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = np.radians(rotation_deg)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    turn = np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)  # Rodrigues
    return np.asarray(position, float) + translation_m * direction, turn @ np.asarray(rotation)
