"""The scripted expert's task runner without ROS: the real planner and the real
simulator, the runner ticked with sim time, measured joints and ground truth,
its moves sent to the simulator's command interface."""

from __future__ import annotations

import numpy as np

from robot_memory.expert.pick_place import ArmMove, PickPlaceConfig, PickPlacePlanner, Step
from robot_memory.expert.task_runner import ExpertTaskRunner
from robot_memory.robot.ik import ArmIK
from robot_memory.robot.panda import ARM_JOINTS
from robot_memory.schemas import ExpertStatus, ExpertTask
from robot_memory.sim.runner import RunnerConfig, SimulationRunner
from robot_memory.sim.scene import build_model


class SimulatorSink:
    def __init__(self, runner: SimulationRunner) -> None:
        self.runner, self.statuses, self.outcome = runner, [], None

    def send(self, step: Step) -> None:
        if isinstance(step, ArmMove):
            self.runner.command_trajectory(ARM_JOINTS, step.times.tolist(), step.positions.tolist())
        else:
            self.runner.command_gripper([step.width])

    def status(self, status: ExpertStatus) -> None:
        self.statuses.append(status)

    def finished(self, ok: bool, status: ExpertStatus) -> None:
        self.outcome = (ok, status)


def run_task(task: ExpertTask, limit_s: float = 40.0) -> SimulatorSink:
    runner = SimulationRunner(RunnerConfig(camera_rate=0.0, ground_truth_rate=0.0, seed=0))
    sink = SimulatorSink(runner)

    def planner_for(scene: str) -> PickPlacePlanner:
        return PickPlacePlanner(
            ArmIK(build_model(scene, panda_visual="primitive")), PickPlaceConfig()
        )

    expert = ExpertTaskRunner(planner_for, sink)
    expert.start(task, runner.time)
    while sink.outcome is None and runner.time < limit_s:
        runner.run_for(0.05)
        expert.tick(runner.time, runner.physics.arm_qpos().copy(), runner.ground_truth())
    return sink


def test_the_runner_puts_an_object_in_the_bin_through_the_command_interface() -> None:
    sink = run_task(ExpertTask(object_id="red_cube", place_id="bin"))
    assert sink.outcome is not None, "the task never ended"
    ok, status = sink.outcome
    assert ok and status.state == "succeeded", status
    phases = [s.phase for s in sink.statuses]
    assert phases[0] and len(set(phases)) >= 4, phases
    progress = [s.progress for s in sink.statuses]
    assert progress == sorted(progress) and np.isclose(status.progress, 1.0)


def test_an_unknown_object_ends_failed_with_the_reason() -> None:
    sink = run_task(ExpertTask(object_id="no_such_thing", place_id="bin"), limit_s=2.0)
    assert sink.outcome is not None
    ok, status = sink.outcome
    assert not ok and "no_such_thing" in status.reason, status
