"""Adversarial sequences through the safety core (no ROS): whatever joint
states, chunks, e-stops and stalls arrive, every command the filter emits is
within the position, velocity and acceleration limits from where the
controller really is and how it really moves.

The controller is modelled as the sim's (and ros2_control JTC's): it follows
the last command by linear interpolation from its setpoint at the moment the
command arrived; its first command starts where the arm is measured (JTC
starts an idle controller from the measured state). The real arm tracks that
setpoint and publishes it as the trusted publisher; a second publisher sends
lies (teleports, impossible positions), the same publisher is also made to
teleport. The real arm
publishes at every tick of the node (50 Hz), as a driver does; what happens
when the trusted publisher falls silent is tested on its own below.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_safety_core import assert_within_limits

from robot_memory.control.joint_state_guard import StateRejected
from robot_memory.control.safety import SafetyFilter
from robot_memory.control.safety_config import ChunkRejected, SafetyConfig
from robot_memory.robot.panda import ARM_JOINTS, GRIPPER_WIDTH_JOINT, HOME_ARM
from robot_memory.sim.scene import build_model

MODEL = build_model("tabletop", "primitive")
CONFIG = SafetyConfig(position_margin=0.01, velocity_scale=0.8, acceleration_scale=0.9)
REAL, LIAR = b"real-arm", b"liar"
CHECKED = {"commands": 0}


class Controller:
    """Where the arm's controller is: the polyline it was last sent."""

    def __init__(self, q: np.ndarray, t: float) -> None:
        self.times = np.array([t])
        self.rows = np.asarray(q, dtype=float).reshape(1, 7)
        self.commanded = False

    def setpoint(self, t: float) -> np.ndarray:
        return np.array([np.interp(t, self.times, self.rows[:, j]) for j in range(7)])

    def velocity(self, t: float) -> np.ndarray:
        k = int(np.searchsorted(self.times, t, side="right"))
        if k <= 0 or k >= len(self.times):
            return np.zeros(7)
        return (self.rows[k] - self.rows[k - 1]) / (self.times[k] - self.times[k - 1])

    def command(
        self, t: float, times: np.ndarray, positions: np.ndarray, measured: np.ndarray | None
    ) -> None:
        """Check the command against the limits from here, then follow it."""
        q0, v0 = self.setpoint(t), self.velocity(t)
        if not self.commanded and measured is not None:
            q0 = measured
        self.commanded = True
        assert_within_limits(q0, v0, times, positions)
        CHECKED["commands"] += 1
        self.times = np.concatenate([[t], t + np.asarray(times)])
        self.rows = np.vstack([q0, positions])


step = st.floats(-0.35, 0.35, allow_nan=False)
events = st.one_of(
    st.tuples(st.just("advance"), st.floats(0.001, 1.5)),
    st.tuples(st.just("real"), st.just(0.0)),
    st.tuples(st.just("lie"), st.floats(-3.5, 3.5, allow_nan=False)),
    st.tuples(st.just("teleport"), st.floats(-2.0, 2.0, allow_nan=False)),
    st.tuples(st.just("estop"), st.booleans()),
    st.tuples(st.just("frame"), st.just(0.0)),
    st.tuples(
        st.just("chunk"),
        st.tuples(
            st.lists(st.lists(step, min_size=7, max_size=7), min_size=1, max_size=16),
            st.floats(0.005, 0.2),  # dt: up to 0.35 rad in 5 ms asks for 70 rad/s
            st.floats(-0.3, 0.8),  # age of the observation
            st.integers(0, 6),  # joint pushed towards its limit
        ),
    ),
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(events, min_size=5, max_size=60))
def every_emitted_command_is_within_the_limits(sequence):
    safety = SafetyFilter(CONFIG, MODEL)
    now = 100.0
    arm = Controller(HOME_ARM, now)
    safety.observe_joints(HOME_ARM, now, REAL)
    rng = np.random.default_rng(len(sequence))
    for kind, value in sequence:
        if kind == "advance":
            for t in [*np.arange(now + 0.02, now + value, 0.02), now + value]:
                safety.observe_joints(arm.setpoint(t), t, REAL)  # the arm's driver
                _tick(safety, arm, t)  # the node's timer
            now += value
        elif kind == "real":
            safety.observe_joints(arm.setpoint(now), now, REAL)
        elif kind in ("lie", "teleport"):
            q = arm.setpoint(now) + rng.uniform(-1, 1, 7) * value
            try:
                safety.observe_joints(q, now, LIAR if kind == "lie" else REAL)
                event(f"{kind} believed")
            except StateRejected as err:
                event(f"{kind}: {err.kind}")
        elif kind == "estop":
            if safety.set_estop(bool(value), now):
                _hold(safety, arm, now)
        elif kind == "frame":
            safety.on_frame("front", now)
        else:
            _chunk(safety, arm, now, *value)
    event(f"holds: {min(safety.counters.holds, 3)}")


def _tick(safety: SafetyFilter, arm: Controller, t: float) -> None:
    if safety.tick(t) is not None:
        _hold(safety, arm, t)


def _hold(safety: SafetyFilter, arm: Controller, t: float) -> None:
    hold = safety.hold_command(t, safety.trusted_state(t))
    if hold is not None:
        arm.command(t, hold.times, hold.positions, safety.trusted_state(t))


def _chunk(safety, arm, now, steps, dt, age, push) -> None:
    q = arm.setpoint(now) + np.cumsum(np.asarray(steps), axis=0)
    q[:, push] += np.linspace(0, 0.5, len(q))  # some chunks end past a limit
    times = [i * dt for i in range(len(q))]
    rows = [[*row, 0.04] for row in q]
    try:
        out = safety.check_chunk(
            now - age,
            [*ARM_JOINTS, GRIPPER_WIDTH_JOINT],
            times,
            rows,
            now,
            safety.trusted_state(now),
        )
    except ChunkRejected as err:
        event(f"chunk rejected: {err.kind}")
        return
    event("chunk retimed" if out.stretch > 1 + 1e-9 else "chunk as asked")
    arm.command(now, out.times, out.positions, safety.trusted_state(now))


def test_every_emitted_command_is_within_the_limits():
    """The property over 500 random sequences; and they really reach the
    controller (a run that emitted nothing would pass vacuously)."""
    before = CHECKED["commands"]
    every_emitted_command_is_within_the_limits()
    emitted = CHECKED["commands"] - before
    print(f"commands checked: {emitted}")
    assert emitted >= 300


def test_a_spoofed_joint_state_then_an_estop_does_not_jump():
    """The tester's attack: one plausible but false joint state 1.5 rad from the
    real arm, then the e-stop. The lie is refused (second publisher, or a
    teleport from the trusted one) and the hold stays where the arm is."""
    for liar in (LIAR, REAL, None):
        safety = SafetyFilter(CONFIG, MODEL)
        for k in range(10):
            safety.observe_joints(HOME_ARM, 10.0 + 0.01 * k, REAL if liar else None)
        spoof = HOME_ARM + np.array([1.5, 0, 0, 0, 0, 0, 0])
        try:
            safety.observe_joints(spoof, 10.1, liar)
            raise AssertionError("the spoofed state was believed")
        except StateRejected as err:
            assert err.kind == ("unexpected publisher" if liar == LIAR else "joint_states teleport")
        assert safety.set_estop(True, 10.15)
        hold = safety.hold_command(10.15, safety.trusted_state(10.15))
        assert hold is not None
        np.testing.assert_allclose(hold.positions[-1], HOME_ARM)
        assert_within_limits(HOME_ARM, np.zeros(7), hold.times, hold.positions)
    impossible = HOME_ARM.copy()
    impossible[3] = 3.0  # joint 4 is limited to [-3.07, -0.07]
    try:
        safety.observe_joints(impossible, 11.0, REAL)
        raise AssertionError("joint4 = +3.0 rad was believed")
    except StateRejected as err:
        assert err.kind == "joint_states beyond limits"
    assert safety.counters.rejected_joint_states["joint_states beyond limits"] == 1


def test_another_publisher_is_trusted_only_after_the_first_fell_silent():
    """A restarted driver comes back with a new publisher id: adopted once the
    old one was silent for joint_state_publisher_timeout_s, and only where the
    arm could have got to in the meantime."""
    safety = SafetyFilter(CONFIG, MODEL)
    safety.observe_joints(HOME_ARM, 0.0, REAL)
    try:
        safety.observe_joints(HOME_ARM, 0.1, LIAR)
        raise AssertionError("a second publisher was trusted while the first is live")
    except StateRejected as err:
        assert err.kind == "unexpected publisher"
    assert safety.trusted_state(0.6) is not None  # the first, still
    far = HOME_ARM + np.array([2.175 * 1.5 * 0.7 + 0.1, 0, 0, 0, 0, 0, 0])
    try:
        safety.observe_joints(far, 0.7, b"driver-2")
        raise AssertionError("an unreachable position was trusted")
    except StateRejected as err:
        assert err.kind == "joint_states teleport"
    near = HOME_ARM + 0.01
    np.testing.assert_allclose(safety.guard.accept(near, 0.7, b"driver-2"), near)
    assert safety.guard.publisher == b"driver-2"
