"""The policy's goal from real rendering + perception: memory keeps the target
when the cameras no longer show it, the current frame does not."""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")

from robot_memory.learning.memory_ablation import run_ablation
from robot_memory.learning.perceived_goals import PerceivedGoalProvider, TargetLostError
from robot_memory.learning.skill_tasks import SkillScenes, move_arm_to
from robot_memory.policy.runtime import ActionChunk
from robot_memory.policy.skill_monitor import MonitorConfig
from robot_memory.sim.runner import RunnerConfig, SimulationRunner

#: Seed 8's pick: the red cube, in the wrist camera's view from the start pose.
SEED = 8
CAMERAS = ("wrist",)


@pytest.fixture(scope="module")
def scene():
    runner = SimulationRunner(RunnerConfig(camera_rate=0.0, ground_truth_rate=0.0))
    scenes = SkillScenes(runner)
    goal, _ = scenes.setup(SEED, "pick")
    memory = PerceivedGoalProvider(runner, "memory", CAMERAS)
    current = PerceivedGoalProvider(runner, "current_frame", CAMERAS, on_unknown="keep_last")
    yield runner, goal, memory, current
    memory.close()
    current.close()


def error_cm(goal, truth) -> float:
    return float(np.linalg.norm(goal.target_position - truth) * 100)


def test_memory_keeps_the_target_the_current_frame_loses(scene):
    runner, goal, memory, current = scene
    truth = goal.target_position.copy()
    assert goal.object_id == "red_cube"
    bound = memory(goal, runner)
    seen = current(goal, runner)
    assert bound is not None and seen is not None, (memory.bind_failure, current.bind_failure)
    assert error_cm(bound, truth) < 3.0 and error_cm(seen, truth) < 3.0
    # skill, yaw and ids are kept; only the position is perceived
    assert (bound.skill, bound.goal_yaw, bound.object_id) == ("pick", goal.goal_yaw, "red_cube")
    assert memory.bound_id is not None
    again = memory(goal, runner)
    assert memory.visible and error_cm(again, truth) < 3.0
    # turn the arm away: the wrist camera looks past the table's edge
    q = runner.physics.arm_qpos()
    q[0] += 1.6
    move_arm_to(runner, q, duration=1.5)
    later = memory(goal, runner)
    assert not memory.visible, "the target should be out of view now"
    assert later is not None and error_cm(later, truth) < 3.0
    assert memory.memory.get(memory.bound_id).status == "remembered"
    kept = current(goal, runner)  # unknown now: keep_last returns the last position seen
    assert kept is not None and not current.visible
    assert np.allclose(kept.target_position, current.estimate)
    assert not current.visible
    current.on_unknown = "fail"
    with pytest.raises(TargetLostError, match="not in the current frame"):
        current(goal, runner)
    assert memory.counters.as_dict() == {
        "calls": 3,
        "target_visible_in_current_frame": 2,
        "target_unknown": 0,
    }
    assert current.counters.as_dict() == {
        "calls": 3,
        "target_visible_in_current_frame": 1,
        "target_unknown": 2,
    }


def test_binding_fails_cleanly_when_nothing_is_near_the_true_position(scene):
    runner, goal, memory, _ = scene
    nowhere = replace(goal, target_position=np.array([-0.05, -0.45, 0.025]))  # bare table
    with pytest.raises(TargetLostError, match="target not known: no memory object within 6 cm"):
        memory(nowhere, runner)
    assert memory.estimate is None and memory.bound_id is None
    memory.on_unknown = "keep_last"  # returning None would make the rollout use the truth
    with pytest.raises(TargetLostError, match="target not known"):
        memory(nowhere, runner)  # stays unknown for the episode
    frame_only = PerceivedGoalProvider(runner, "current_frame", CAMERAS)
    try:
        assert frame_only.start(nowhere) is None
        assert frame_only.bind_failure.startswith("no detection within 6 cm of the target")
    finally:
        frame_only.close()
    with pytest.raises(ValueError, match="mode"):
        PerceivedGoalProvider(runner, "oracle")


class HoldStill:
    """A stand-in runtime: every chunk holds the measured joints (no model)."""

    dt = 0.1
    n_action_steps = 4

    def __init__(self) -> None:
        import torch

        from robot_memory.policy.configuration_diffusion import DiffusionConfig
        from robot_memory.policy.kinematics import ArmKinematics

        self.generator = torch.Generator().manual_seed(0)
        self.config = DiffusionConfig()  # the executor reads n_obs_steps
        self.kinematics = ArmKinematics()

    def predict(self, states, goal) -> ActionChunk:
        n = self.n_action_steps
        q = np.repeat(states[-1].q[None], n, axis=0)
        return ActionChunk(
            states[-1].stamp, np.arange(n) * self.dt, np.zeros((n, 3)), np.zeros(n),
            np.full(n, 0.08), q, 0.0, 0.0,
        )  # fmt: skip


def test_ablation_runs_both_modes_on_the_same_out_of_view_pick(tmp_path):
    result = run_ablation(
        HoldStill(),
        episodes=1,
        seed_start=2,
        out_dir=tmp_path,
        variants=("memory", "current_frame"),
        monitor_config=MonitorConfig(timeout_s=1.0),
    )
    assert result["jobs"] == [{"seed": 2, "object_id": "yellow_block"}]
    memory, current = result["variants"]["memory"], result["variants"]["current_frame"]
    assert (memory["n"], current["n"]) == (1, 1)
    # memory has a goal all along (the arm holds still: it times out)
    assert list(memory["failure_reasons"]) == ["timed out after 1 s"]
    assert memory["episodes"][0]["n_target_unknown"] == 0
    # the target is out of view at the start: no goal from the current frame
    assert current["failure_reasons"] == {"target not in the current frame": 1}
    assert current["visible_fraction"] == 0.0
    assert (tmp_path / "ablation.json").is_file()
