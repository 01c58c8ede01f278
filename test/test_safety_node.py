"""The safety node over DDS (in this process): good chunks reach the arm
controller retimed, stale and out-of-limit ones never do and are counted with
a reason, the watchdog holds once after chunks stop (and, in sim time, within
0.2 s of a late chunk or camera frame), an empty chunk ("stop now") holds at
once (in sim time, before the clock moves on) until the next valid chunk, the
e-stop holds and blocks until released, a spoofed joint state from another
publisher is refused. /safety/status is the typed SafetyStatus."""

from __future__ import annotations

import time

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.parameter import Parameter
from robot_memory_interfaces.msg import SafetyStatus
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, JointState
from std_msgs.msg import Bool, Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from robot_memory.nodes.conversions import from_time, to_duration, to_time
from robot_memory.nodes.qos import COMMAND, LATCHED, SENSOR
from robot_memory.nodes.safety_conversions import safety_status_from_msg
from robot_memory.nodes.safety_node import SafetyNode
from robot_memory.robot.panda import ARM_JOINTS, GRIPPER_WIDTH_JOINT, HOME_ARM
from ros_helpers import Probe, rejected, spin_for, spin_until

pytestmark = pytest.mark.ros
TRAJ, GRIP, STATUS = (
    "/arm_controller/joint_trajectory",
    "/gripper_controller/commands",
    "/safety/status",
)
WATCHDOG_S = 0.4


FRONT_INFO = "/camera/front/color/camera_info"


class Rig:
    def __init__(self, *parameters: Parameter) -> None:
        self.safety = SafetyNode([Parameter("watchdog_timeout_s", value=WATCHDOG_S), *parameters])
        rclpy.get_global_executor().add_node(self.safety)  # spun with the probe
        self.probe = Probe("safety_test")
        self.probe.listen(JointTrajectory, TRAJ, COMMAND)
        self.probe.listen(Float64MultiArray, GRIP, COMMAND)
        self.probe.listen(SafetyStatus, STATUS, LATCHED)
        self.probe.listen(DiagnosticArray, "/diagnostics")
        self.joints = self.probe.create_publisher(JointState, "/joint_states", COMMAND)
        self.chunks = self.probe.create_publisher(JointTrajectory, "/policy/action_chunk", COMMAND)
        self.estop = self.probe.create_publisher(Bool, "/robot_memory/estop", LATCHED)
        self.clock = self.probe.create_publisher(Clock, "/clock", 10)
        self.frames = self.probe.create_publisher(CameraInfo, FRONT_INFO, SENSOR)
        out = self.safety.outputs
        pubs = [out.traj_pub, out.grip_pub, self.joints, self.chunks, self.estop]
        if self.safety.get_parameter("watched_cameras").value == [FRONT_INFO]:
            pubs.append(self.frames)
        spin_until(
            self.probe,
            lambda: all(p.get_subscription_count() > 0 for p in pubs) and self.status(),
            timeout_s=10,
            what="discovery",
        )

    def status(self) -> dict | None:
        msg = self.probe.last(STATUS)
        return None if msg is None else safety_status_from_msg(msg)

    def measure(self, q: np.ndarray) -> None:
        """Publish the arm at ``q`` and wait until the safety node has it."""
        msg = JointState(name=list(ARM_JOINTS), position=[float(v) for v in q])
        self.joints.publish(msg)
        spin_until(
            self.probe,
            lambda: (
                self.safety.filter.guard.q is not None
                and np.allclose(self.safety.filter.guard.q, q)
            ),
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


def test_watchdog_holds_once_where_the_controller_is_after_chunks_stop(rig):
    rig.measure(HOME_ARM)
    rig.send(time.time(), path())
    spin_until(rig.probe, lambda: count(rig, TRAJ) == 1, 5, what="chunk")
    rig.measure(HOME_ARM + 0.03)  # the arm lags its setpoint a little
    spin_until(rig.probe, lambda: count(rig, TRAJ) == 2, 5, what="hold")
    hold = rig.probe.last(TRAJ)  # the chunk ended at rest: stay at its end
    assert len(hold.points) == 1
    np.testing.assert_allclose(hold.points[0].positions, path()[-1])
    spin_until(rig.probe, lambda: "no chunk for" in rig.status()["hold_reason"], 3, what="why")
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


def test_a_spoofed_joint_state_from_another_publisher_is_refused(rig):
    """The tester's attack over DDS: a second publisher claims joint1 is 1.5 rad
    away, then the e-stop is pressed: the hold stays where the arm is."""
    rig.measure(HOME_ARM)
    liar = rclpy.create_node("liar")
    try:
        lie = liar.create_publisher(JointState, "/joint_states", COMMAND)
        spin_until(rig.probe, lambda: lie.get_subscription_count() > 0, 10, what="discovery")
        spoof = HOME_ARM + np.array([1.5, 0, 0, 0, 0, 0, 0])
        message = JointState(name=list(ARM_JOINTS), position=[float(v) for v in spoof])

        def lie_refused() -> bool:
            # told again until refused: the liar seeing the safety node's reader
            # does not mean the reader has matched the liar yet (a loaded
            # machine lost the one message a single publish sent)
            lie.publish(message)
            return rig.status()["rejected_joint_states"].get("unexpected publisher", 0) >= 1

        spin_until(rig.probe, lie_refused, 15, what="the lie refused")
    finally:
        liar.destroy_node()
    rig.estop.publish(Bool(data=True))
    spin_until(rig.probe, lambda: count(rig, TRAJ) == 1, 5, what="e-stop hold")
    hold = rig.probe.last(TRAJ)
    np.testing.assert_allclose(hold.points[-1].positions, HOME_ARM)


def test_watchdog_in_sim_time_holds_within_200_ms_of_a_late_chunk_or_frame():
    """With use_sim_time, the clock advanced in 10 ms steps (each waited for):
    chunks every 0.5 s and camera frames at 10 Hz; then either the chunks or
    the frames stop. The hold comes at most 0.2 s after the input was due."""
    rclpy.init()
    try:
        rig = Rig(
            Parameter("use_sim_time", value=True),
            Parameter("watchdog_timeout_s", value=0.15),
            Parameter("expected_chunk_interval_s", value=0.5),
            Parameter("watched_cameras", value=[FRONT_INFO]),
        )
        sim = {"t": 100.0}

        def advance(dt: float) -> None:
            sim["t"] = round(sim["t"] + dt, 6)
            rig.clock.publish(Clock(clock=to_time(sim["t"])))
            spin_until(
                rig.probe,
                lambda: abs(rig.safety.now() - sim["t"]) < 1e-6,
                5,
                what="the node at the new sim time",
            )
            for _ in range(6):  # what arrived with it, and the timer if now due
                rclpy.spin_once(rig.probe, timeout_sec=0)

        latencies: dict[str, list[float]] = {"chunk": [], "camera": []}
        for trial in range(6):
            stall = "chunk" if trial % 2 else "camera"
            holds = count(rig, TRAJ)
            advance(0.01)
            rig.measure(HOME_ARM)
            last_chunk = last_frame = sim["t"]
            for k in range(300):
                if k % 10 == 5:
                    rig.joints.publish(JointState(name=list(ARM_JOINTS), position=list(HOME_ARM)))
                if k % 10 == 0 and (stall == "chunk" or k < 100):
                    rig.frames.publish(CameraInfo())
                    last_frame = sim["t"]
                if k % 50 == 0 and (stall == "camera" or k == 0):
                    rig.send(sim["t"], [HOME_ARM] * 6)
                    last_chunk = sim["t"]
                advance(0.01)
                if count(rig, TRAJ) > holds and rig.safety.filter.state == "holding":
                    break
            due = last_chunk + 0.5 if stall == "chunk" else last_frame + 0.1
            latencies[stall].append(sim["t"] - due)
            assert stall in rig.safety.filter.hold_reason
        for stall, values in latencies.items():
            p50, p99 = np.percentile(values, [50, 99])
            print(f"watchdog ({stall} stall, sim time): p50 {p50:.3f} s, p99 {p99:.3f} s")
            assert max(values) <= 0.2 + 0.011, values
        rig.close()
    finally:
        rclpy.shutdown()


def stop_now(rig: Rig, stamp: float) -> None:
    """The policy's "stop now": a JointTrajectory with no points."""
    msg = JointTrajectory(joint_names=list(ARM_JOINTS))
    msg.header.stamp = to_time(stamp)
    rig.chunks.publish(msg)


def test_an_empty_chunk_holds_at_once_until_the_next_valid_chunk(rig):
    rig.measure(HOME_ARM)
    stop_now(rig, time.time())  # nothing commanded yet: nothing to stop
    spin_for(rig.probe, 0.5)
    assert count(rig, TRAJ) == 0 and rig.status()["holds"] == 0
    rig.measure(HOME_ARM + 0.001)
    rig.send(time.time(), path(8, 0.05), dt=0.5)  # 3.5 s of motion
    spin_until(rig.probe, lambda: count(rig, TRAJ) == 1, 5, what="chunk")
    stop_now(rig, time.time())
    spin_until(rig.probe, lambda: count(rig, TRAJ) == 2, 5, what="the stop's hold")
    hold = rig.probe.last(TRAJ)  # a smooth stop short of the chunk's end
    end = np.array(hold.points[-1].positions)
    assert np.all(end < path(8, 0.05)[-1] - 0.01) and np.all(end >= HOME_ARM - 1e-9)
    spin_until(rig.probe, lambda: rig.status()["hold_reason"] == "stop requested", 3)
    assert rig.status()["state"] == "holding" and rig.status()["holds"] == 1
    assert rig.status()["rejected_total"] == 0  # a stop is no rejection
    spin_for(rig.probe, 2 * WATCHDOG_S)
    assert count(rig, TRAJ) == 2  # held: no watchdog hold on top
    stop_now(rig, time.time())  # already held: nothing more
    rig.measure(HOME_ARM)
    rig.send(time.time(), path(), dt=0.5)
    spin_until(rig.probe, lambda: count(rig, TRAJ) == 3, 5, what="the next chunk")
    spin_until(rig.probe, lambda: rig.status()["state"] == "ok", 3, what="ok again")
    assert rig.status()["accepted"] == 2 and rig.status()["holds"] == 1


def test_a_stop_in_sim_time_holds_before_the_clock_moves_on():
    """With use_sim_time and the clock advanced in 10 ms steps, a stop sent at
    sim time t is held at t (the status stamp), well within 0.2 s."""
    rclpy.init()
    try:
        rig = Rig(Parameter("use_sim_time", value=True), Parameter("watchdog_timeout_s", value=5.0))
        sim = {"t": 50.0}

        def advance(dt: float) -> None:
            sim["t"] = round(sim["t"] + dt, 6)
            rig.clock.publish(Clock(clock=to_time(sim["t"])))
            spin_until(rig.probe, lambda: abs(rig.safety.now() - sim["t"]) < 1e-6, 5, what="clock")

        latencies = []
        for _ in range(3):
            advance(0.01)
            rig.measure(HOME_ARM)
            n = count(rig, TRAJ)
            rig.send(sim["t"], path(8, 0.05), dt=0.5)
            spin_until(rig.probe, lambda n=n: count(rig, TRAJ) == n + 1, 5, what="chunk")
            for _ in range(30):  # 0.3 s into the motion
                advance(0.01)
            t_stop = sim["t"]
            stop_now(rig, t_stop)
            spin_until(rig.probe, lambda n=n: count(rig, TRAJ) == n + 2, 5, what="hold")
            spin_until(
                rig.probe, lambda: rig.status()["hold_reason"] == "stop requested", 5, what="why"
            )
            latencies.append(rig.status()["stamp"] - t_stop)
        print(f"stop -> hold (sim time): max {max(latencies):.3f} s")
        assert max(latencies) <= 0.2, latencies
        rig.close()
    finally:
        rclpy.shutdown()
