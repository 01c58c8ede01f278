"""The RealSense-class depth noise model against its documented parameters:
axial noise growing with z squared, quantization of disparity and of depth,
holes at edges, on dark surfaces, at random and out of range, flying pixels;
and the extrinsic calibration error."""

from __future__ import annotations

import numpy as np
import pytest

from robot_memory.sim.depth_noise import DepthNoise, miscalibrated_pose

F = 450.0  # px
WHITE = np.full((200, 200, 3), 200, np.uint8)


def plane(z: float, n: int = 200) -> np.ndarray:
    return np.full((n, n), z, np.float32)


@pytest.mark.parametrize("z", [0.5, 1.0, 2.0])
def test_axial_noise_grows_with_z_squared_as_documented(z):
    model = DepthNoise(random_hole_prob=0.0)
    out = model.apply(plane(z), F, np.random.default_rng(1), WHITE)
    got = out[out > 0]
    assert got.size > 0.99 * out.size
    assert abs(got.mean() - z) < 0.2 * model.sigma_z(z, F) + 0.001
    assert got.std() == pytest.approx(model.sigma_z(z, F), rel=0.12, abs=0.0006)


def test_depth_is_quantized_in_disparity_steps_and_millimetres():
    model = DepthNoise(subpixel_sigma_px=0.0, random_hole_prob=0.0)
    z = np.linspace(2.5, 3.5, 200, dtype=np.float32)[None, :].repeat(4, axis=0)
    out = model.apply(z, F, np.random.default_rng(0))
    levels = np.unique(out[out > 0])
    assert np.allclose(levels / 0.001, np.round(levels / 0.001), atol=1e-3)  # whole mm
    spacing = np.diff(levels).mean()
    assert spacing == pytest.approx(3.0**2 * 0.125 / (F * 0.05), rel=0.1)  # ~5 cm at 3 m
    assert np.abs(out - z)[out > 0].max() <= 3.5**2 * 0.125 / (F * 0.05) / 2 + 0.001


def test_holes_at_random_on_dark_surfaces_and_out_of_range():
    rng = np.random.default_rng(2)
    model = DepthNoise(random_hole_prob=0.05, dark_hole_prob=0.6)
    out = model.apply(plane(1.0), F, rng, WHITE)
    assert (out == 0).mean() == pytest.approx(0.05, abs=0.006)
    dark = WHITE.copy()
    dark[:, :100] = 10  # left half black: little IR texture
    out = DepthNoise(random_hole_prob=0.0).apply(plane(1.0), F, rng, dark)
    assert (out[:, :100] == 0).mean() == pytest.approx(0.6, abs=0.02)
    assert (out[:, 100:] == 0).mean() == 0.0
    near = plane(1.0)
    near[:50] = 0.08  # inside the minimum range
    near[50:60] = 0.0  # nothing rendered there
    out = DepthNoise(random_hole_prob=0.0, edge_hole_prob=0.0).apply(near, F, rng, WHITE)
    assert np.all(out[:60] == 0)


def test_edges_lose_depth_or_fly_between_the_two_sides():
    step = plane(1.0)
    step[:, 100:] = 0.6  # a box edge at column 100
    model = DepthNoise(random_hole_prob=0.0, subpixel_sigma_px=0.0, edge_hole_prob=0.5,
                       flying_prob=0.5)  # fmt: skip
    out = model.apply(step, F, np.random.default_rng(3), WHITE)
    edge = out[:, 99:101]
    assert (edge == 0).mean() == pytest.approx(0.5, abs=0.07)
    flying = (edge > 0.62) & (edge < 0.98)
    assert flying.mean() == pytest.approx(0.25, abs=0.07)  # survived (0.5) x flew (0.5)
    assert np.all(out[:, :98] > 0.98) and np.all(out[:, 102:] < 0.62)  # away from it: intact


def test_a_bad_parameter_is_refused():
    with pytest.raises(ValueError, match="edge_hole_prob"):
        DepthNoise(edge_hole_prob=1.5)
    with pytest.raises(ValueError, match="baseline_m"):
        DepthNoise(baseline_m=0.0)


def test_a_miscalibrated_pose_is_off_by_exactly_the_error_asked():
    rng = np.random.default_rng(4)
    position, rotation = np.array([0.5, 0.0, 1.0]), np.eye(3)
    for _ in range(10):
        p, r = miscalibrated_pose(position, rotation, 0.004, 0.5, rng)
        assert np.linalg.norm(p - position) == pytest.approx(0.004)
        angle = np.degrees(np.arccos(np.clip((np.trace(rotation.T @ r) - 1) / 2, -1, 1)))
        assert angle == pytest.approx(0.5, abs=1e-6)
        assert np.allclose(r @ r.T, np.eye(3), atol=1e-12)
