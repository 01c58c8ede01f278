"""The skill executor's robot-state history when the clock goes back (a
simulator restarted under a running policy): without care every new joint
state is "older" than the old timeline's newest and the policy refuses goals
("no recent /joint_states") until the new clock catches up. ROS-free."""

from __future__ import annotations

from typing import Any

import pytest

from robot_memory.health.counters import HealthCounters
from robot_memory.policy.kinematics import ArmKinematics
from robot_memory.policy.look_skill import LookDriver
from robot_memory.policy.runtime import RobotState
from robot_memory.policy.skill_executor import ExecutorConfig, SkillExecutor
from robot_memory.robot.panda import HOME_ARM


class RecordingSinkTestDouble:
    """Records what the executor decides; plans and sends nothing."""

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.reports: list[Any] = []

    def submit(self, request) -> None: ...
    def send_chunk(self, chunk, token) -> None: ...
    def send_look(self, motion, token, t_stamp) -> None: ...
    def feedback(self, handle, phase, chunks) -> None: ...

    def report(self, handle, report, done) -> None:
        self.reports.append(report)

    def warn(self, text: str) -> None:
        self.warnings.append(text)


@pytest.fixture(scope="module")
def kinematics():
    return ArmKinematics()


@pytest.fixture
def executor(kinematics):
    sink = RecordingSinkTestDouble()
    health = HealthCounters("test")
    run = SkillExecutor(ExecutorConfig(), kinematics, LookDriver(kinematics.ik), sink, health)
    return run, sink, health


def state(t: float) -> RobotState:
    return RobotState(HOME_ARM.copy(), 0.04, t)


def test_a_restarted_clock_starts_the_history_over(executor):
    run, sink, health = executor
    for k in range(6):
        assert run.observe(state(100.0 + 0.1 * k), None, 100.0 + 0.1 * k) is None
    assert run.observe(state(2.0), None, 2.0) is None  # the sim restarted: its clock too
    assert run.newest.stamp == 2.0 and len(run.history) == 1
    assert health.increment("clock_jumps_back", 0) == 1
    assert sink.warnings and "went back" in sink.warnings[0]
    assert run.observe(state(2.1), None, 2.1) is None  # and the new timeline goes on


def test_an_old_message_is_still_refused_when_the_clock_did_not_go_back(executor):
    run, _, health = executor
    for k in range(6):
        run.observe(state(100.0 + 0.1 * k), None, 100.0 + 0.1 * k)
    assert run.observe(state(100.2), None, 100.6)[0] == "old joint_states"
    assert run.observe(state(2.0), None, 100.6)[0] == "old joint_states"  # a late old one
    assert run.newest.stamp == pytest.approx(100.5)
    assert health.increment("clock_jumps_back", 0) == 0
