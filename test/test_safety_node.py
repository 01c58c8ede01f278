"""The safety node over DDS (in this process): good chunks reach the arm
controller retimed, stale and out-of-limit ones never do and are counted with
a reason, the watchdog holds once after chunks stop, the e-stop holds and
blocks until released."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float64MultiArray, String
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from robot_memory.nodes.conversions import from_time, to_time
from robot_memory.nodes.qos import COMMAND, LATCHED
from robot_memory.nodes.safety_node import SafetyNode, to_duration
from robot_memory.robot.panda import ARM_JOINTS, GRIPPER_WIDTH_JOINT, HOME_ARM
from ros_helpers import Probe, rejected, spin_for, spin_until

pytestmark = pytest.mark.ros
TRAJ, GRIP, STATUS = (
    "/arm_controller/joint_trajectory",
    "/gripper_controller/commands",
    "/safety/status",
)
WATCHDOG_S = 0.4


class Rig:
    def __init__(self) -> None:
        self.safety = SafetyNode([Parameter("watchdog_timeout_s", value=WATCHDOG_S)])
        rclpy.get_global_executor().add_node(self.safety)  # spun with the probe
        self.probe = Probe("safety_test")
        self.probe.listen(JointTrajectory, TRAJ, COMMAND)
        self.probe.listen(Float64MultiArray, GRIP, COMMAND)
        self.probe.listen(String, STATUS, LATCHED)
        self.probe.listen(DiagnosticArray, "/diagnostics")
        self.joints = self.probe.create_publisher(JointState, "/joint_states", COMMAND)
        self.chunks = self.probe.create_publisher(JointTrajectory, "/policy/action_chunk", COMMAND)
        self.estop = self.probe.create_publisher(Bool, "/robot_memory/estop", LATCHED)
        pubs = (self.safety.traj_pub, self.safety.grip_pub, self.joints, self.chunks, self.estop)
        spin_until(
            self.probe,
            lambda: all(p.get_subscription_count() > 0 for p in pubs) and self.status(),
            timeout_s=10,
            what="discovery",
        )

    def status(self) -> dict | None:
        msg = self.probe.last(STATUS)
        return None if msg is None else json.loads(msg.data)

    def measure(self, q: np.ndarray) -> None:
        """Publish the arm at ``q`` and wait until the safety node has it."""
        msg = JointState(name=list(ARM_JOINTS), position=[float(v) for v in q])
        self.joints.publish(msg)
        spin_until(
            self.probe,
            lambda: self.safety.q is not None and np.allclose(self.safety.q, q),
            timeout_s=5,
            what="joint state",
        )

    def send(self, stamp: float, points: list, dt: float = 0.1, gripper: float | None = None):
        names = list(ARM_JOINTS) + ([GRIPPER_WIDTH_JOINT] if gripper is not None else [])
        msg = JointTrajectory(joint_names=names)
        msg.header.stamp = to_time(stamp)
        extra = [gripper] if gripper is not None else []
        msg.points = [
            JointTrajectoryPoint(
                positions=[*map(float, q), *extra], time_from_start=to_duration(i * dt)
            )
            for i, q in enumerate(points)
        ]
        self.chunks.publish(msg)

    def close(self) -> None:
        self.safety.destroy_node()
        self.probe.destroy_node()


@pytest.fixture
def rig():
    rclpy.init()
    try:
        rig = Rig()
        yield rig
        rig.close()
    finally:
        rclpy.shutdown()


def path(n: int = 8, step: float = 0.01) -> list[np.ndarray]:
    return [HOME_ARM + i * step for i in range(n)]


def count(rig: Rig, topic: str) -> int:
    return len(rig.probe.messages[topic])


def test_a_valid_chunk_reaches_the_controller_retimed(rig):
    rig.measure(HOME_ARM)
    points = path()
    rig.send(time.time(), points, dt=0.5, gripper=0.04)  # dt: slack for a slow machine
    spin_until(rig.probe, lambda: count(rig, TRAJ) and count(rig, GRIP), 5, what="commands")
    traj = rig.probe.last(TRAJ)
    assert from_time(traj.header.stamp) == 0.0 and list(traj.joint_names) == list(ARM_JOINTS)
    # the point at the observation time is past: dropped; the rest untouched
    assert len(traj.points) == 7
    np.testing.assert_array_equal([p.positions for p in traj.points], points[1:])
    times = [from_time(p.time_from_start) for p in traj.points]
    assert 0.02 <= times[0] <= 0.5 and np.allclose(np.diff(times), 0.5, atol=1e-6)
    assert list(rig.probe.last(GRIP).data) == [0.04]
    spin_until(rig.probe, lambda: rig.status()["accepted"] == 1, 3, what="status")
    assert rig.status()["state"] == "ok" and rig.status()["stale_points_dropped"] == 1


def test_stale_and_out_of_limit_chunks_never_reach_the_controller(rig):
    rig.measure(HOME_ARM)
    rig.send(time.time() - 5.0, path())
    bad = path()
    bad[3] = bad[3].copy()
    bad[3][3] = -3.2
    rig.send(time.time(), bad)
    want = {"stale": 1, "position out of limits": 1}
    spin_until(rig.probe, lambda: rig.status()["rejected"] == want, 5, what="rejections")
    assert "panda_joint4 position -3.2 outside" in rig.status()["last_reject"]
    spin_until(rig.probe, lambda: rejected(rig.probe, "safety") == want, 5, what="diagnostics")
    # and no hold either: nothing was ever accepted
    spin_for(rig.probe, WATCHDOG_S + 0.3)
    assert count(rig, TRAJ) == 0 and count(rig, GRIP) == 0
    assert rig.status()["state"] == "ok" and rig.status()["holds"] == 0


def test_watchdog_holds_once_at_the_measured_position_after_chunks_stop(rig):
    rig.measure(HOME_ARM)
    rig.send(time.time(), path())
    spin_until(rig.probe, lambda: count(rig, TRAJ) == 1, 5, what="chunk")
    q_now = HOME_ARM + 0.03
    rig.measure(q_now)
    spin_until(rig.probe, lambda: count(rig, TRAJ) == 2, 5, what="hold")
    hold = rig.probe.last(TRAJ)
    assert len(hold.points) == 1
    np.testing.assert_allclose(hold.points[0].positions, q_now)
    spin_for(rig.probe, 2 * WATCHDOG_S)
    assert count(rig, TRAJ) == 2  # once per silence
    assert rig.status()["state"] == "holding" and rig.status()["holds"] == 1


def test_estop_holds_and_blocks_chunks_until_released(rig):
    rig.measure(HOME_ARM)
    rig.estop.publish(Bool(data=True))
    spin_until(rig.probe, lambda: count(rig, TRAJ) == 1, 5, what="e-stop hold")
    np.testing.assert_allclose(rig.probe.last(TRAJ).points[0].positions, HOME_ARM)
    rig.send(time.time(), path())
    spin_until(rig.probe, lambda: rig.status()["rejected"] == {"estop active": 1}, 5)
    assert rig.status()["state"] == "estop" and count(rig, TRAJ) == 1
    rig.estop.publish(Bool(data=False))
    spin_until(rig.probe, lambda: rig.status()["state"] != "estop", 5, what="release")
    rig.measure(HOME_ARM + 0.001)
    rig.send(time.time(), path(), dt=0.5)
    spin_until(rig.probe, lambda: count(rig, TRAJ) == 2, 5, what="chunk after release")
    assert len(rig.probe.last(TRAJ).points) == 7
    spin_until(rig.probe, lambda: rig.status()["accepted"] == 1, 3, what="status")
    assert rig.status()["state"] == "ok"
