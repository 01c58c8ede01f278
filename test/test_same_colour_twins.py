"""Two red mugs of one make (the household cell's twins), swapped while the
camera looks away: real MuJoCo rendering with RealSense depth noise, the real
perception pipeline with the shipped labeller, and the memory core. Memory
must keep exactly two red mugs, under the ids it gave them, where the mugs
are, through the look-away (permanence) and after it (no duplicate, no merge)."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from robot_memory.memory import SceneMemory
from robot_memory.perception.pipeline import PerceptionPipeline
from robot_memory.robot.ik import ArmIK, top_down_rotation
from robot_memory.robot.panda import ARM_JOINTS, HOME_ARM
from robot_memory.sim.cameras import CameraRig
from robot_memory.sim.depth_noise import DepthNoise
from robot_memory.sim.runner import RunnerConfig, SimulationRunner

TWINS = ("red_mug_1", "red_mug_2")
LOOK = np.array([0.1, 0.0, 0.42])  # wrist camera over the table: sees ~0.55 x 0.7 m
LOOK_AWAY = np.array([2.6, *HOME_ARM[1:]])  # the wrist camera faces the floor behind the base


class Cell:
    def __init__(self, seed: int):
        self.runner = SimulationRunner(
            RunnerConfig(scene="household", seed=seed, panda_visual="primitive")
        )
        self.model, self.data = self.runner.physics.model, self.runner.physics.data
        self.rig = CameraRig(self.model, 640, 480, ("wrist",), DepthNoise(), seed)
        self.addr = [self.model.jnt_qposadr[self.model.joint(n).id] for n in ARM_JOINTS]
        self.look_q = ArmIK(self.model).solve(HOME_ARM, LOOK, top_down_rotation(0.0)).q
        self.pipeline = PerceptionPipeline()
        self.stamp = 0.0

    def pose(self, q: np.ndarray) -> None:
        self.data.qpos[self.addr] = q
        mujoco.mj_forward(self.model, self.data)

    def frame(self):
        rgb, depth = self.rig.render(self.runner.physics, "wrist")
        pos, quat = self.rig.optical_pose(self.runner.physics, "wrist")
        joints = {n: float(self.data.qpos[a]) for n, a in zip(ARM_JOINTS, self.addr, strict=True)}
        self.stamp += 0.1
        k = self.rig.intrinsics("wrist")
        return self.pipeline.process(rgb, depth, k, pos, quat, self.stamp, "wrist", joints)

    def twin_positions(self) -> np.ndarray:
        truth = self.runner.ground_truth()
        return np.array([truth.get(t).position for t in TWINS])


def twins_in_view_seed() -> int:
    """The first layout whose twins both stand in the look's view, apart."""
    for seed in range(40):
        cell = Cell(seed)
        cell.pose(cell.look_q)
        xy = cell.twin_positions()[:, :2]
        seen = [o for o in cell.frame().objects if o.label == "red mug"]
        near = [min(np.linalg.norm(o.centroid[:2] - p) for o in seen) if seen else 1.0 for p in xy]
        if np.linalg.norm(xy[0] - xy[1]) > 0.12 and max(near) < 0.03:
            return seed
    pytest.fail("no layout in seeds 0-39 shows both red mugs to the wrist camera")


def red_mugs(memory: SceneMemory):
    return [o for o in memory.objects() if o.label == "red mug"]


def test_twins_keep_their_identities_through_a_swap_out_of_view():
    cell = Cell(twins_in_view_seed())
    memory = SceneMemory()
    cell.pose(cell.look_q)
    for _ in range(6):
        memory.update(cell.frame())
    before = red_mugs(memory)
    assert len(before) == 2, [(o.id, o.label) for o in memory.objects()]
    start = cell.twin_positions()
    id_at = {}  # which memory id stands on each twin's starting spot
    for obj in before:
        d = np.linalg.norm(start[:, :2] - obj.centroid[:2], axis=1)
        assert d.min() < 0.02, f"#{obj.id} is {d.min():.3f} m from the nearest red mug"
        id_at[int(np.argmin(d))] = obj.id
    assert len(id_at) == 2

    cell.pose(LOOK_AWAY)
    for _ in range(10):  # frames of the floor: the mugs are out of view, not gone
        memory.update(cell.frame())
    assert {o.id for o in red_mugs(memory)} == set(id_at.values())
    # the swap, while nothing sees the table (through a spot at the table corner)
    runner = cell.runner
    runner.move_object(TWINS[0], np.array([0.55, -0.45]), settle_s=0.0)
    runner.move_object(TWINS[1], start[0, :2], settle_s=0.0)
    runner.move_object(TWINS[0], start[1, :2], settle_s=0.3)
    swapped = cell.twin_positions()
    np.testing.assert_allclose(swapped[:, :2], start[::-1, :2], atol=0.01)

    cell.pose(cell.look_q)
    for _ in range(6):
        memory.update(cell.frame())
    after = red_mugs(memory)
    assert len(after) == 2, [(o.id, o.label, o.centroid.round(3)) for o in memory.objects()]
    assert {o.id for o in after} == set(id_at.values())  # kept apart: no merge, no new id
    for k, spot in enumerate(start):  # each spot still holds one remembered red mug
        (here,) = [o for o in after if np.linalg.norm(o.centroid[:2] - spot[:2]) < 0.02]
        assert here.id == id_at[k]  # identical twins: memory cannot see the swap
    memory.close()
