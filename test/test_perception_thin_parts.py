"""Thin parts cut from their body (perception/thin_parts.py), on voxel grids of
the household screwdriver's sizes: a shaft that clustering cut from its handle
is the handle's appendage (in its box, not in its points or colour); a stick
beside a box, a lone stick, a standing wall and a can stay what they are; and
a rendered screwdriver with depth lost at the junction is one black
screwdriver."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from robot_memory.perception.config import PerceptionConfig
from robot_memory.perception.thin_parts import is_stick, join_sticks

CFG = PerceptionConfig()
V = CFG.cluster_voxel


def grid(x: tuple[float, float], y: tuple[float, float], z: tuple[float, float]) -> np.ndarray:
    """Voxel centres filling a box (5 mm voxels)."""
    axes = [np.arange(a, b + 1e-9, V) for a, b in (x, y, z)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)


def handle() -> np.ndarray:
    """The handle's upper surface, as the cameras see it (8.5 x 2 cm, 2.5 cm high)."""
    return grid((0.0, 0.085), (-0.01, 0.01), (0.025, 0.025))


def shaft(start: float = 0.095, length: float = 0.065) -> np.ndarray:
    """A 7 mm shaft leaving the handle's end on its axis, sloping to the table."""
    x = np.arange(start, start + length + 1e-9, V)
    z = np.linspace(0.014, 0.006, len(x))
    return np.concatenate([np.column_stack([x, np.full(len(x), dy), z]) for dy in (0.0, V)])


def clusters(*parts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    points = np.concatenate(parts)
    labels = np.concatenate([np.full(len(p), k) for k, p in enumerate(parts)])
    return points, labels


def test_a_shaft_cut_from_its_handle_joins_it_as_an_appendage():
    body, stick = handle(), shaft()
    assert is_stick(stick, CFG) and not is_stick(body, CFG)
    points, labels = clusters(body, stick)
    out, appendage = join_sticks(points, labels, CFG)
    assert set(out.tolist()) == {0}
    assert np.array_equal(appendage, labels == 1)


def test_a_shaft_cut_3_cm_from_its_handle_joins_it():
    """The wrist camera at home loses 3 cm of depth where the shaft leaves the
    handle (measured on the realistic scenario bags, seed 1)."""
    points, labels = clusters(handle(), shaft(start=0.085 + 0.03))
    out, appendage = join_sticks(points, labels, CFG)
    assert set(out.tolist()) == {0} and np.array_equal(appendage, labels == 1)


def test_a_shaft_pointing_at_a_bowl_does_not_join_it():
    """A body on the axis within the gap but round (a bowl's rim, 7 cm across)
    or lying across the stick is not its handle; with the shape check off
    (``stick_host_min_elongation`` 0) the shaft would stretch the bowl."""
    stick = shaft(start=0.0)  # x 0 .. 6.5 cm
    ring = grid((0.085, 0.155), (-0.035, 0.035), (0.01, 0.01))  # 2 cm beyond its tip
    across = grid((0.085, 0.105), (-0.045, 0.045), (0.025, 0.025))  # a handle lying across
    for body in (ring, across):
        points, labels = clusters(body, stick)
        out, appendage = join_sticks(points, labels, CFG)
        assert np.array_equal(out, labels) and not appendage.any()
    points, labels = clusters(ring, stick)
    out, appendage = join_sticks(points, labels, replace(CFG, stick_host_min_elongation=0.0))
    assert set(out.tolist()) == {0} and appendage.any()


def test_a_face_seen_edge_on_is_no_handle():
    """A cube's face seen edge-on over the bin's wall: a sliver along the stick's
    axis, elongated but no wider than the stick, is not a handle to join."""
    stick = shaft(start=0.0)
    sliver = grid((0.085, 0.11), (0.0, 0.0), (0.0, 0.02))
    assert not is_stick(sliver, CFG)
    points, labels = clusters(sliver, stick)
    out, appendage = join_sticks(points, labels, CFG)
    assert np.array_equal(out, labels) and not appendage.any()


def test_a_shaft_farther_than_the_gap_or_with_joining_off_stays_apart():
    points, labels = clusters(handle(), shaft(start=0.085 + CFG.stick_join_gap + 2 * V))
    out, appendage = join_sticks(points, labels, CFG)
    assert np.array_equal(out, labels) and not appendage.any()
    points, labels = clusters(handle(), shaft())
    out, appendage = join_sticks(points, labels, replace(CFG, stick_join_gap=0.0))
    assert np.array_equal(out, labels) and not appendage.any()


def test_a_stick_lying_alongside_a_box_is_not_its_part():
    box = grid((0.0, 0.09), (0.0, 0.06), (0.005, 0.03))
    x = np.arange(0.01, 0.08 + 1e-9, V)
    beside = np.column_stack([x, np.full(len(x), -0.01), np.full(len(x), 0.008)])  # 1 cm off
    assert is_stick(beside, CFG)
    points, labels = clusters(box, beside)
    out, appendage = join_sticks(points, labels, CFG)
    assert np.array_equal(out, labels) and not appendage.any()


def test_walls_cans_and_short_bits_are_not_sticks():
    wall = grid((0.0, 0.0), (0.0, 0.1), (0.0, 0.09))  # the cover's side, edge-on: tall
    can = grid((0.0, 0.06), (0.0, 0.06), (0.08, 0.08))  # its lid seen from above: wide
    short = shaft(length=0.02)
    assert not any(is_stick(p, CFG) for p in (wall, can, short))
    points, labels = clusters(handle(), short)
    out, appendage = join_sticks(points, labels, CFG)
    assert np.array_equal(out, labels) and not appendage.any()


def test_noise_and_a_lone_stick_keep_their_labels():
    stick = shaft()
    out, appendage = join_sticks(stick, np.zeros(len(stick), dtype=int), CFG)
    assert set(out.tolist()) == {0} and not appendage.any()
    points, labels = clusters(handle(), shaft())
    labels[:5] = -1  # noise stays noise
    out, _ = join_sticks(points, labels, CFG)
    assert (out[:5] == -1).all() and set(out[5:].tolist()) == {0}


def test_a_black_handle_with_a_steel_shaft_is_black_and_a_shaded_white_stays_white():
    """Colour words of achromatic clusters (perception/appearance.py): 65 % of
    the pixels a dark handle, 35 % bright steel: black (the 75th percentile of
    the brightness alone said grey or white); a white cover with half its
    pixels in shade stays white; a white bowl is white."""
    from robot_memory.perception.appearance import color_name

    def pixels(**parts: tuple[int, int]) -> np.ndarray:
        """(value, count) per part, all unsaturated."""
        return np.concatenate([np.full((n, 3), v, np.uint8) for v, n in parts.values()])

    assert color_name(pixels(handle=(30, 65), shaft=(190, 35)), CFG)[0] == "black"
    assert color_name(pixels(side=(40, 50), top=(230, 50)), CFG)[0] == "white"
    assert color_name(pixels(rim=(235, 70), inside=(120, 30)), CFG)[0] == "white"
    assert color_name(pixels(handle=(30, 40), shaft=(190, 60)), CFG)[0] == "white"  # mostly steel


def test_a_rendered_screwdriver_with_depth_lost_at_its_shaft_is_one_object():
    """The household cell (seed 3) through the real pipeline, the wrist camera
    at home: depth dropped on the shaft's pixels next to the handle (MuJoCo's
    segmentation finds them), as a RealSense loses it at the junction. The
    shaft joins the handle: one black screwdriver, its box centred on the
    whole tool, its points on the handle (its grasp point); with joining off,
    the shaft is a second object."""
    import cv2
    import mujoco

    from robot_memory.perception.pipeline import PerceptionPipeline
    from robot_memory.sim.cameras import CameraRig, mj_camera_name
    from robot_memory.sim.runner import RunnerConfig, SimulationRunner

    runner = SimulationRunner(
        RunnerConfig(scene="household", seed=3, panda_visual="primitive", camera_rate=0)
    )
    model, data = runner.physics.model, runner.physics.data
    rig = CameraRig(model, 640, 480, ("wrist",))
    rgb, depth = rig.render(runner.physics, "wrist")
    segmentation = mujoco.Renderer(model, 480, 640)
    segmentation.enable_segmentation_rendering()
    segmentation.update_scene(data, camera=mj_camera_name("wrist"))
    geom = segmentation.render()[..., 0]
    segmentation.close()
    body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "black_screwdriver")
    handle_geom, shaft_geom = [g for g in range(model.ngeom) if model.geom_bodyid[g] == body][:2]
    handle, shaft = geom == handle_geom, geom == shaft_geom
    assert handle.sum() > 500 and shaft.sum() > 100, "the screwdriver is not in view"
    off_handle = cv2.distanceTransform((~handle).astype(np.uint8), cv2.DIST_L2, 5)
    depth = depth.copy()
    depth[shaft & (off_handle < 14)] = 0.0  # 14 px next to the handle: a 2 cm hole
    names, q, _, _ = runner.physics.joint_state()
    joints = {str(n): float(v) for n, v in zip(names, q, strict=True)}
    position, quaternion = rig.optical_pose(runner.physics, "wrist")
    truth = runner.ground_truth().get("black_screwdriver")
    rig_k = rig.intrinsics("wrist")
    rig.close()

    def near_the_screwdriver(config: PerceptionConfig) -> list:
        frame = PerceptionPipeline(config).process(
            rgb, depth, rig_k, position, quaternion, 0.0, "wrist", joints
        )
        xy = np.asarray(truth.position[:2])
        return [o for o in frame.objects if np.linalg.norm(o.centroid[:2] - xy) < 0.1]

    (tool,) = near_the_screwdriver(CFG)
    assert tool.label == "black screwdriver"
    assert np.linalg.norm(tool.centroid[:2] - np.asarray(truth.position[:2])) < 0.01
    grasp = np.asarray(truth.grasp_point[:2])
    assert np.linalg.norm(tool.points[:, :2].mean(axis=0) - grasp) < 0.01
    apart = near_the_screwdriver(replace(CFG, stick_join_gap=0.0))
    assert len(apart) == 2
