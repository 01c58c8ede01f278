"""Memory's grasp point: the thickest part of an object's footprint, from its
fused points (synthetic footprints), and the sim's own grasp points (the cell's
truth for the expert and the evaluation) on the household objects."""

from __future__ import annotations

import os

import numpy as np
import pytest

from robot_memory.memory.grasp_point import estimate_grasp_point, fit_circle
from robot_memory.memory.object_node import voxel_downsample

os.environ.setdefault("MUJOCO_GL", "egl")


def grid(xy_mask, extent: float, height: float = 0.04) -> np.ndarray:
    """Points where ``xy_mask(x, y)`` holds, top and bottom, sampled at 2 mm
    and fused on memory's 5 mm grid as memory does."""
    u = np.arange(-extent, extent + 1e-9, 0.002)
    x, y = np.meshgrid(u, u)
    keep = xy_mask(x, y)
    pts = [np.column_stack([x[keep], y[keep], np.full(keep.sum(), z)]) for z in (0.0, height)]
    return voxel_downsample(np.vstack(pts).astype(np.float32), 0.005, 4000)


def bbox(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return points.min(axis=0), points.max(axis=0)


def test_a_mug_is_grasped_at_its_cup_not_between_cup_and_handle():
    r = 0.032
    cup = lambda x, y: x**2 + y**2 <= r**2  # noqa: E731
    handle = lambda x, y: (x > r - 0.002) & (x < r + 0.025) & (np.abs(y) <= 0.006)  # noqa: E731
    pts = grid(lambda x, y: cup(x, y) | handle(x, y), 0.07)
    lo, hi = bbox(pts)
    point = estimate_grasp_point(pts, lo, hi)
    assert point is not None
    box_centre = (lo + hi) / 2
    assert abs(box_centre[0]) > 0.01  # the box centre is pulled towards the handle
    assert np.hypot(point[0], point[1]) < 0.004  # the grasp point is on the cup's axis
    assert point[2] == pytest.approx(box_centre[2])


def test_a_ring_seen_from_above_is_filled_and_grasped_at_its_centre():
    r = 0.035
    ring = lambda x, y: np.abs(np.hypot(x, y) - r) < 0.004  # noqa: E731
    pts = grid(ring, 0.05)
    point = estimate_grasp_point(pts, *bbox(pts))
    assert point is not None and np.hypot(point[0], point[1]) < 0.004


def test_a_screwdriver_is_grasped_in_the_middle_of_its_handle():
    length, handle_len, hr = 0.16, 0.088, 0.013
    x0 = -length / 2

    def shape(x, y):
        handle = (x >= x0) & (x <= x0 + handle_len) & (np.abs(y) <= hr)
        shaft = (x > x0 + handle_len) & (x <= length / 2) & (np.abs(y) <= 0.0035)
        return handle | shaft

    pts = grid(shape, 0.09, height=0.026)
    point = estimate_grasp_point(pts, *bbox(pts))
    assert point is not None
    assert point[0] == pytest.approx(x0 + handle_len / 2, abs=0.008)
    assert abs(point[1]) < 0.004


def test_a_thin_arc_from_one_side_gives_no_grasp_point():
    """A can seen from one side: its footprint is an arc, too thin to trust."""
    r = 0.03
    arc = lambda x, y: (np.abs(np.hypot(x, y) - r) < 0.003) & (x < -0.012)  # noqa: E731
    pts = grid(arc, 0.04)
    assert estimate_grasp_point(pts, *bbox(pts)) is None


def test_too_few_or_bad_points_give_none():
    assert estimate_grasp_point(np.zeros((3, 3)), np.zeros(3), np.ones(3)) is None
    pts = grid(lambda x, y: x**2 + y**2 < 0.02**2, 0.03)
    pts[0, 0] = np.nan
    assert estimate_grasp_point(pts, *bbox(np.nan_to_num(pts))) is None


def test_memory_objects_carry_their_grasp_point_into_the_scene_graph():
    from test_memory_core import frame, obs

    from robot_memory.memory import SceneMemory
    from robot_memory.payload_codec import dump_payload, parse_payload
    from robot_memory.schemas import SceneGraphMsg

    r = 0.032
    pts = grid(
        lambda x, y: (x**2 + y**2 <= r**2) | ((x > r) & (x < r + 0.025) & (np.abs(y) < 0.006)),
        0.07,
    ) + np.array([0.2, 0.1, 0.0], dtype=np.float32)
    lo, hi = bbox(pts)
    o = obs("red mug", (lo + hi) / 2, size=tuple(hi - lo))
    o.points, o.n_points = pts, len(pts)
    memory = SceneMemory()
    memory.update(frame(1.0, [o]))
    graph = memory.snapshot()
    (mug,) = graph.objects
    assert mug.grasp_point is not None
    assert np.hypot(mug.grasp_point[0] - 0.2, mug.grasp_point[1] - 0.1) < 0.005
    assert abs(mug.centroid[0] - 0.2) > 0.01
    back = parse_payload(SceneGraphMsg, dump_payload(graph))
    assert back.objects[0].grasp_point == pytest.approx(mug.grasp_point)


def test_the_sim_says_where_its_household_objects_are_grasped():
    from robot_memory.sim.runner import RunnerConfig, SimulationRunner

    runner = SimulationRunner(
        RunnerConfig(scene="household", seed=3, camera_rate=0.0, ground_truth_rate=0.0)
    )
    truth = runner.ground_truth()
    for o in truth.objects:
        if o.shape in ("mug", "screwdriver"):
            assert o.grasp_point is not None
            offset = np.subtract(o.grasp_point, o.position)
            want = 0.0125 if o.shape == "mug" else 0.036 if o.id == "black_screwdriver" else 0.033
            assert np.linalg.norm(offset) == pytest.approx(want, abs=0.0015)
            assert abs(offset[2]) < 0.003  # along the body's x, which lies flat
        else:
            assert o.grasp_point is None


@pytest.mark.parametrize("facing", [0.0, 1.2, -2.4])
def test_a_bottle_seen_from_one_side_is_grasped_on_its_axis(facing):
    """The near half of a bottle (body r 2.6 cm, neck 1.6 cm above it): thin,
    its box centre 1.3 cm towards the camera; the arc of the body fits the
    circle whose centre is the axis."""
    rng = np.random.default_rng(3)
    theta = facing + rng.uniform(-np.pi / 2, np.pi / 2, 1500)
    z = rng.uniform(0.0, 0.13, 1500)
    r = np.where(z < 0.08, 0.026, 0.016) + rng.normal(0.0, 0.001, 1500)  # 1 mm depth noise
    centre = np.array([0.2, -0.1])
    pts = np.column_stack([centre[0] + r * np.cos(theta), centre[1] + r * np.sin(theta), z])
    pts = voxel_downsample(pts.astype(np.float32), 0.005, 4000)
    lo, hi = bbox(pts)
    box_centre = (lo + hi) / 2
    assert np.linalg.norm(box_centre[:2] - centre) > 0.005  # the box centre is off the axis
    point = estimate_grasp_point(pts, lo, hi, round_shape=True)
    assert point is not None and np.linalg.norm(np.array(point[:2]) - centre) < 0.003
    assert estimate_grasp_point(pts, lo, hi) != point  # not said round: not a circle's centre


def test_only_points_on_a_circle_fit_one():
    """A line, a disc full of points, a circle too large or a short arc fit
    none (a round object's top seen from above falls back to its thickest
    part); half a 3 cm circle gives its centre and radius."""
    disc = grid(lambda x, y: np.hypot(x, y) <= 0.03, 0.04)
    assert fit_circle(disc[:, :2]) is None
    point = estimate_grasp_point(disc, *bbox(disc), round_shape=True)
    assert point is not None and np.hypot(point[0], point[1]) < 0.003
    assert fit_circle(np.column_stack([np.linspace(0, 0.1, 30), np.zeros(30)])) is None
    t = np.linspace(0.0, np.radians(40.0), 30)  # 40 degrees of a 3 cm circle
    assert fit_circle(0.03 * np.column_stack([np.cos(t), np.sin(t)])) is None
    t = np.linspace(0.0, np.pi, 30)
    fitted = fit_circle(0.03 * np.column_stack([np.cos(t), np.sin(t)]) + [0.5, 0.2])
    assert fitted is not None and np.allclose(fitted, (0.5, 0.2, 0.03), atol=1e-6)
