"""The safety filter (pure core, no ROS): random chunks mixing good and bad
points are either passed on with their positions untouched, retimed to every
limit, or refused whole with a reason; stale points are dropped; the watchdog
and the e-stop latch. The adversarial sequences are in test_safety_property.py."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from robot_memory.control.joint_trajectory import LIMIT_TOLERANCE
from robot_memory.control.safety import SafetyFilter
from robot_memory.control.safety_config import ChunkRejected, SafetyConfig
from robot_memory.robot.ik import ArmIK
from robot_memory.robot.panda import (
    ARM_ACCELERATION,
    ARM_JOINTS,
    ARM_LOWER,
    ARM_UPPER,
    ARM_VELOCITY,
    GRIPPER_WIDTH_JOINT,
    HOME_ARM,
)
from robot_memory.sim.scene import build_model

MODEL = build_model("tabletop", "primitive")
ORACLE_FK = ArmIK(build_model("tabletop", "primitive"))  # mink, not the filter's MuJoCo FK
CONFIG = SafetyConfig(position_margin=0.01, velocity_scale=0.8)
LOWER, UPPER = ARM_LOWER + CONFIG.position_margin, ARM_UPPER - CONFIG.position_margin
VMAX = ARM_VELOCITY * CONFIG.velocity_scale
AMAX = ARM_ACCELERATION * CONFIG.acceleration_scale
BOX_LO, BOX_HI = np.array(CONFIG.workspace_min), np.array(CONFIG.workspace_max)
NOW = 1000.0
#: Arm poses inside the joint limits with the TCP outside the workspace box:
#: under the table, above the box, beside it (y), behind the robot (x).
OUTSIDE = (
    (0.0, 1.2, 0.0, -1.2, 0.0, 1.9, 0.785),
    (0.0, 0.2, 0.0, -0.3, 0.0, 0.8, 0.785),
    (1.5, 0.5, 0.0, -1.2, 0.0, 1.9, 0.785),
    (0.0, -1.5, 0.0, -0.5, 0.0, 1.9, 0.785),
)
FAULTS = (
    "nan", "position", "velocity", "gripper", "workspace", "all stale", "old", "future",
    "unknown", "duplicate", "missing", "times", "far measurement", "no measurement",
)  # fmt: skip


def tcp(q: np.ndarray) -> np.ndarray:
    return ORACLE_FK.forward(np.asarray(q))[0]


def flt(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False)


@st.composite
def chunks(draw: st.DrawFn) -> dict:
    faults = draw(
        st.one_of(
            st.just(frozenset()), st.frozensets(st.sampled_from(FAULTS), min_size=1, max_size=2)
        )
    )
    n = draw(st.integers(2, 10))
    dt = draw(st.sampled_from([0.05, 0.1, 0.2]))
    if "workspace" in faults:
        q0 = np.array(draw(st.sampled_from(OUTSIDE)))
    else:
        q0 = HOME_ARM + np.array(draw(st.lists(flt(-0.3, 0.3), min_size=7, max_size=7)))
    row = st.lists(flt(-0.9, 0.9), min_size=7, max_size=7)
    frac = draw(st.lists(row, min_size=n - 1, max_size=n - 1))
    q = np.vstack([q0, q0 + np.cumsum(np.array(frac) * VMAX * dt, axis=0)])
    t = np.arange(n) * dt
    grip = np.array(draw(st.lists(flt(0.0, 0.08), min_size=n, max_size=n)))
    age = draw(flt(0.0, 0.15))
    p, j = draw(st.integers(0, n - 1)), draw(st.integers(0, 6))
    if "nan" in faults:
        q[p, j] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    if "position" in faults:
        over = draw(flt(0.002, 0.5))
        q[p, j] = UPPER[j] + over if draw(st.booleans()) else LOWER[j] - over
    if "velocity" in faults:
        q[max(p, 1), j] += draw(st.sampled_from([-1, 1])) * draw(flt(1.2, 3.0)) * VMAX[j] * dt
    if "gripper" in faults:
        grip[p] = draw(st.one_of(flt(-0.05, -0.001), flt(0.0815, 0.2)))
    if "all stale" in faults:
        age = t[-1] + draw(flt(0.0, 0.3))
    if "old" in faults:
        age = CONFIG.max_chunk_age_s + draw(flt(0.01, 5.0))
    if "future" in faults:
        age = -CONFIG.max_chunk_age_s - draw(flt(0.01, 5.0))
    if "times" in faults:
        k = draw(st.integers(1, n - 1))
        t[k] = t[k - 1] - draw(flt(0.0, 0.05))
    # where the arm is now, had it followed the chunk so far
    knots = t if np.all(np.diff(t) > 0) else np.arange(n)
    q_meas = np.array([np.interp(age, knots, col) for col in q.T])
    q_meas = q_meas + np.array(draw(st.lists(flt(-0.002, 0.002), min_size=7, max_size=7)))
    if "far measurement" in faults:
        q_meas[j] += 0.5
    with_gripper = "gripper" in faults or draw(st.booleans())
    names = list(ARM_JOINTS) + ([GRIPPER_WIDTH_JOINT] if with_gripper else [])
    cols = [*q.T, grip] if with_gripper else list(q.T)
    order = draw(st.permutations(range(len(names))))
    names, cols = [names[i] for i in order], [cols[i] for i in order]
    if "missing" in faults:
        k = names.index(ARM_JOINTS[j])
        del names[k], cols[k]
    if "unknown" in faults:
        names[draw(st.integers(0, len(names) - 1))] = draw(
            st.sampled_from(["panda_finger_joint1", "elbow", "gripper"])
        )
    if "duplicate" in faults:
        names[1] = names[0]
    return {
        "stamp": NOW - age,
        "names": names,
        "times": t.tolist(),
        "positions": np.array(cols).T.tolist(),
        "q_meas": None if "no measurement" in faults else q_meas,
    }


def violations(c: dict) -> set[str]:
    """Every rule ``c`` breaks, worked out independently of the filter."""
    names, t = c["names"], np.array(c["times"])
    unknown = set(names) - {*ARM_JOINTS, GRIPPER_WIDTH_JOINT}
    if unknown or len(set(names)) < len(names) or not set(ARM_JOINTS) <= set(names):
        return {"unknown joint", "duplicate joint", "missing arm joints"}
    pos = np.array(c["positions"])
    if not np.all(np.isfinite(pos)):
        return {"non-finite value"}
    if t[0] < 0 or np.any(np.diff(t) <= 0):
        return {"times not increasing"}
    found = set()
    age = NOW - c["stamp"]
    if age > CONFIG.max_chunk_age_s:
        found.add("stale")
    if -age > CONFIG.max_chunk_age_s:
        found.add("stamp in the future")
    q = pos[:, [names.index(n) for n in ARM_JOINTS]]
    if np.any((q < LOWER - LIMIT_TOLERANCE) | (q > UPPER + LIMIT_TOLERANCE)):
        found.add("position out of limits")
    if GRIPPER_WIDTH_JOINT in names:
        g = pos[:, names.index(GRIPPER_WIDTH_JOINT)]
        if np.any((g < -LIMIT_TOLERANCE) | (g > 0.08 + LIMIT_TOLERANCE)):
            found.add("gripper out of limits")
    if any(np.any((tcp(row) < BOX_LO) | (tcp(row) > BOX_HI)) for row in q):
        found.add("outside workspace")
    lead = c["stamp"] + t - NOW
    future = np.flatnonzero(lead > 0)
    if len(future) == 0:
        found.add("stale")
        return found
    first = max(future[0], int(np.flatnonzero(lead <= CONFIG.min_lead_s).max(initial=-1)))
    del first
    if c["q_meas"] is None:
        found.add("no joint state")
    return found


def assert_within_limits(q0: np.ndarray, v0: np.ndarray, times, positions) -> None:
    """Oracle, written out point by point: positions, velocities, accelerations
    (finite differences, see control/retiming.py) and coming to rest."""
    t_prev, q_prev, v_prev, dt_prev = 0.0, np.asarray(q0, float), np.asarray(v0, float), None
    for t, q in zip(times, positions, strict=True):
        dt = t - t_prev
        assert dt > 0
        assert np.all((q >= LOWER - 1e-6) & (q <= UPPER + 1e-6))
        v = (q - q_prev) / dt
        assert np.all(np.abs(v) <= VMAX * (1 + 1e-6) + 1e-6), v / VMAX
        span = dt if dt_prev is None else (dt_prev + dt) / 2
        assert np.all(np.abs(v - v_prev) / span <= AMAX * (1 + 1e-6) + 1e-6)
        t_prev, q_prev, v_prev, dt_prev = t, q, v, dt
    assert np.all(np.abs(v_prev) / dt_prev <= AMAX * (1 + 1e-6) + 1e-6)  # to rest


@settings(max_examples=300, deadline=None)
@given(chunks())
def test_chunks_pass_untouched_within_limits_or_are_refused_with_a_reason(c):
    safety = SafetyFilter(CONFIG, MODEL)
    expected = violations(c)
    args = (c["stamp"], c["names"], c["times"], c["positions"], NOW, c["q_meas"])
    if expected:
        with pytest.raises(ChunkRejected) as err:
            safety.check_chunk(*args)
        event(f"rejected: {err.value.kind}")
        assert err.value.kind in expected and err.value.reason
        assert safety.counters.rejected[err.value.kind] == 1 and safety.counters.accepted == 0
        return
    out = safety.check_chunk(*args)
    event("accepted")
    names, pos = c["names"], np.array(c["positions"])
    q_in = pos[:, [names.index(n) for n in ARM_JOINTS]]
    k = len(out.times)
    assert out.joint_names == ARM_JOINTS and out.dropped == len(q_in) - k >= 0
    assert np.array_equal(out.positions, q_in[len(q_in) - k :])  # never edited, a suffix
    assert out.times[0] >= CONFIG.min_lead_s and np.all(np.diff(out.times) > 0)
    lead = c["stamp"] + np.array(c["times"])[len(q_in) - k :] - NOW
    # time is only ever stretched: every segment at least as long as asked
    asked = np.diff(np.concatenate([[0.0], np.maximum(lead, CONFIG.min_lead_s)]))
    assert np.all(np.diff(np.concatenate([[0.0], out.times])) >= asked - 1e-6)
    event("retimed" if out.stretch > 1 + 1e-9 else "as asked")
    assert_within_limits(np.asarray(c["q_meas"]), np.zeros(7), out.times, out.positions)
    for row in out.positions:
        assert np.all((tcp(row) >= BOX_LO) & (tcp(row) <= BOX_HI))
    if out.gripper is not None:
        assert np.all((out.gripper >= -1e-6) & (out.gripper <= 0.08 + 1e-6))
        g_in = pos[len(q_in) - k :, names.index(GRIPPER_WIDTH_JOINT)]
        assert np.array_equal(out.gripper, g_in)


def home_chunk(n: int = 6, dt: float = 0.1, step: float = 0.01) -> tuple[list, list]:
    q = [HOME_ARM + i * step for i in range(n)]
    return [i * dt for i in range(n)], [[*row, 0.04] for row in q]


NAMES = [*ARM_JOINTS, GRIPPER_WIDTH_JOINT]


def test_past_points_are_dropped_and_the_rest_retimed_to_now():
    safety = SafetyFilter(CONFIG, MODEL)
    times, pts = home_chunk()
    out = safety.check_chunk(NOW - 0.25, NAMES, times, pts, NOW, HOME_ARM + 0.02)
    np.testing.assert_allclose(out.times, [0.05, 0.15, 0.25])  # slow enough: as asked
    np.testing.assert_array_equal(out.positions, np.array(pts)[3:, :7])
    assert out.dropped == 3 and safety.counters.stale_points_dropped == 3
    # a point due in under min_lead_s is kept at min_lead_s; earlier ones go
    out = safety.check_chunk(NOW - 0.295, NAMES, times, pts, NOW, HOME_ARM + 0.03)
    assert out.times[0] >= 0.05 and np.all(np.diff(out.times) >= [0.055, 0.1])
    with pytest.raises(ChunkRejected, match="stale: every point is in the past"):
        safety.check_chunk(NOW - 0.6, NAMES, times, pts, NOW, HOME_ARM)
    with pytest.raises(ChunkRejected, match=r"stale: observation 5\.00 s old"):
        safety.check_chunk(NOW - 5.0, NAMES, times, pts, NOW, HOME_ARM)
    assert safety.counters.rejected == {"stale": 2} and safety.counters.accepted == 2


def test_velocities_are_checked_from_the_setpoint_the_controller_is_at():
    """The controller interpolates from its current setpoint, not from where the
    (lagging) arm is measured: a chunk continuing the last one goes as asked
    even when the measurement lags; from the measurement alone (nothing sent
    yet) the same chunk is slowed down; a jump away from the setpoint is
    retimed, not refused, and still within every limit."""
    safety = SafetyFilter(CONFIG, MODEL)
    times, pts = home_chunk(step=0.02)
    safety.check_chunk(NOW, NAMES, times, pts, NOW, HOME_ARM)
    np.testing.assert_allclose(safety.setpoint(NOW + 0.2), np.array(pts)[2, :7], atol=1e-9)
    later = NOW + 0.25
    cont = [[*(HOME_ARM + 0.02 * 2.5 + 0.02 * i), 0.04] for i in range(6)]
    lagging = HOME_ARM + 0.02 * 2.5 - 0.12
    out = safety.check_chunk(later - 0.04, NAMES, times, cont, later, lagging)
    assert out.positions.shape[0] >= 5 and out.stretch == pytest.approx(1.0)
    fresh = SafetyFilter(CONFIG, MODEL)  # from the measurement 0.12 rad away: slowed
    slow = fresh.check_chunk(later - 0.04, NAMES, times, cont, later, lagging)
    assert slow.stretch > 1.2 and fresh.counters.retimed == 1
    assert_within_limits(lagging, np.zeros(7), slow.times, slow.positions)
    v0 = (np.array(cont[1][:7]) - np.array(cont[0][:7])) / 0.1
    jump = [[*(HOME_ARM + 0.25 + 0.02 * i), 0.04] for i in range(6)]
    set_at = safety.setpoint(later + 0.01)
    out = safety.check_chunk(later, NAMES, times, jump, later + 0.01, HOME_ARM + 0.07)
    assert out.stretch > 1.2 and safety.counters.rejected == {}
    np.testing.assert_array_equal(out.positions, np.array(jump)[1:, :7])
    assert_within_limits(set_at, v0, out.times, out.positions)


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda p: p[2].__setitem__(3, -3.2), "joint panda_joint4 position -3.2 outside"),
        (lambda p: p[4].__setitem__(7, 0.2), "gripper width 0.2 outside [0, 0.08]"),
        (lambda p: p[1].__setitem__(0, float("nan")), "non-finite value"),
    ],
)
def test_reasons_name_the_joint_and_value(edit, reason):
    times, pts = home_chunk()
    edit(pts)
    with pytest.raises(ChunkRejected, match=reason.replace("[", r"\[").replace("]", r"\]")):
        SafetyFilter(CONFIG, MODEL).check_chunk(NOW, NAMES, times, pts, NOW, HOME_ARM)


def test_tcp_under_the_table_is_refused():
    times, pts = home_chunk(step=0.0)
    pts = [[*OUTSIDE[0], 0.04] for _ in pts]
    with pytest.raises(ChunkRejected, match=r"tcp z -0\.084 below workspace"):
        SafetyFilter(CONFIG, MODEL).check_chunk(NOW, NAMES, times, pts, NOW, OUTSIDE[0])


def test_watchdog_holds_once_per_stall_and_never_before_a_chunk():
    safety = SafetyFilter(SafetyConfig(watchdog_timeout_s=0.2), MODEL)
    safety.observe_joints(HOME_ARM, 0.0)
    assert not any(safety.tick(t) for t in np.arange(0.0, 10.0, 0.05))
    assert safety.state == "ok" and safety.counters.holds == 0
    # long, slow chunks every 0.5 s: due at the configured 0.7 s at the latest
    times, pts = home_chunk(n=21, step=0.0005)  # 2 s long
    for k in range(5):
        t0 = 10.0 + 0.5 * k
        safety.check_chunk(t0, NAMES, times, pts, t0, HOME_ARM)
        assert not any(safety.tick(t0 + dt) for dt in np.arange(0.0, 0.5, 0.01))
    last = 12.0
    assert safety.tick(last + 0.89) is None  # 0.7 expected + 0.2 grace
    reason = safety.tick(last + 0.91)
    assert reason == "no chunk for 0.91 s (expected every 0.70 s)"
    assert safety.state == "holding" and safety.status()["hold_reason"] == reason
    assert not any(safety.tick(t) for t in np.arange(12.95, 20.0, 0.05))  # once
    # a short chunk that runs out: held 0.2 s after its end
    short_t, short = home_chunk(n=4, step=0.0005)  # 0.3 s long
    safety.check_chunk(20.0, NAMES, short_t, short, 20.0, HOME_ARM)
    assert safety.state == "ok" and safety.status()["hold_reason"] == ""
    assert safety.tick(20.0 + 0.3 + 0.19) is None
    assert safety.tick(20.0 + 0.3 + 0.21) == "no chunk for 0.51 s (the last one ended 0.21 s ago)"
    # a watched camera that stops: held 0.2 s after its next frame was due
    safety.check_chunk(21.0, NAMES, times, pts, 21.0, HOME_ARM)
    for t in np.arange(21.0, 21.35, 0.1):
        safety.on_frame("front", t)
    assert safety.tick(21.3 + 0.29) is None
    assert "no camera front frame for 0.31 s" in safety.tick(21.3 + 0.31)
    assert safety.counters.holds == 3
    hold = safety.hold_command(21.61, HOME_ARM)
    assert hold is not None
    assert_within_limits(safety.setpoint(21.61), np.zeros(7), hold.times, hold.positions)


def test_a_hold_is_a_smooth_stop_from_the_current_motion():
    """Moving fast along a path, an e-stop stops along the same direction at the
    acceleration limit: no jump back to a measured position, no overshoot past
    the stopping distance."""
    safety = SafetyFilter(CONFIG, MODEL)
    direction = np.array([1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    times = [i * 0.1 for i in range(8)]
    pts = [[*(HOME_ARM + 0.12 * i * direction), 0.04] for i in range(8)]  # 1.2 rad/s
    out = safety.check_chunk(NOW, NAMES, times, pts, NOW, HOME_ARM)
    t_stop = NOW + out.times[3] + 0.01
    q_set = safety.setpoint(t_stop)
    v_set = (out.positions[3] - out.positions[2]) / (out.times[3] - out.times[2])
    assert v_set[0] > 0.5
    assert safety.set_estop(True, t_stop)
    hold = safety.hold_command(t_stop, q_set)
    assert hold is not None and len(hold.times) > 1
    assert_within_limits(q_set, v_set, hold.times, hold.positions)
    travel = hold.positions[-1] - q_set
    assert 0 < travel[0] <= v_set[0] ** 2 / (2 * AMAX[0]) + 1e-6
    assert np.all(np.diff(hold.positions[:, 0]) >= -1e-12)  # no reversal


def test_estop_holds_at_once_blocks_chunks_until_released():
    safety = SafetyFilter(CONFIG, MODEL)
    times, pts = home_chunk()
    assert not safety.set_estop(False, NOW)
    assert safety.set_estop(True, NOW) and safety.state == "estop"
    assert not safety.set_estop(True, NOW + 0.1)  # latched: one hold
    with pytest.raises(ChunkRejected, match="estop active"):
        safety.check_chunk(NOW, NAMES, times, pts, NOW, HOME_ARM)
    assert not any(safety.tick(NOW + t) for t in range(10))
    assert not safety.set_estop(False, NOW + 10) and safety.state == "holding"
    safety.check_chunk(NOW + 10, NAMES, times, pts, NOW + 10, HOME_ARM)
    assert safety.state == "ok" and safety.counters.holds == 1
    assert safety.status()["rejected"] == {"estop active": 1}


def test_gripper_follows_the_chunk_with_a_deadband():
    safety = SafetyFilter(CONFIG, MODEL)
    times, pts = home_chunk(step=0.0)
    for row, width in zip(pts, [0.08, 0.08, 0.078, 0.05, 0.0, 0.0], strict=True):
        row[7] = width
    safety.check_chunk(NOW, NAMES, times, pts, NOW, HOME_ARM)
    sent = [safety.gripper_due(NOW + t) for t in np.arange(0.0, 0.7, 0.05)]
    assert [w for w in sent if w is not None] == [0.08, 0.05, 0.0]
    assert safety.gripper_due(NOW + 1.0) is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"velocity_scale": 0.0},
        {"velocity_scale": 1.5},
        {"position_margin": -0.1},
        {"workspace_min": (0.0, 0.0, 1.0)},
        {"workspace_max": (1.0, 1.0)},
        {"watchdog_timeout_s": 0.0},
        {"acceleration_scale": 0.0},
        {"expected_chunk_interval_s": float("nan")},
        {"min_lead_s": -1.0},
    ],
)
def test_bad_configs_are_refused(kwargs):
    with pytest.raises(ValueError):
        SafetyConfig(**kwargs)


def test_a_stop_request_holds_at_once_with_the_smooth_stop_until_the_next_chunk():
    """The policy's empty chunk: nothing to stop before a command was sent;
    while moving, a hold at once (no watchdog wait) that stops along the path
    within the limits; once per stop; the next accepted chunk releases it."""
    safety = SafetyFilter(CONFIG, MODEL)
    assert not safety.request_stop() and safety.state == "ok"  # nothing sent yet
    direction = np.array([1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    times = [i * 0.1 for i in range(8)]
    pts = [[*(HOME_ARM + 0.12 * i * direction), 0.04] for i in range(8)]  # 1.2 rad/s
    out = safety.check_chunk(NOW, NAMES, times, pts, NOW, HOME_ARM)
    t_stop = NOW + out.times[3] + 0.01
    q_set = safety.setpoint(t_stop)
    v_set = (out.positions[3] - out.positions[2]) / (out.times[3] - out.times[2])
    assert safety.request_stop()
    assert safety.state == "holding" and safety.status()["hold_reason"] == "stop requested"
    hold = safety.hold_command(t_stop, q_set)
    assert hold is not None and len(hold.times) > 1
    assert_within_limits(q_set, v_set, hold.times, hold.positions)
    assert 0 < hold.positions[-1][0] - q_set[0] <= v_set[0] ** 2 / (2 * AMAX[0]) + 1e-6
    assert not safety.request_stop()  # held already: once
    assert not any(safety.tick(t_stop + t) for t in np.arange(0.0, 5.0, 0.05))  # stays held
    assert safety.counters.holds == 1 and safety.status()["rejected_total"] == 0
    end = hold.positions[-1]
    later = t_stop + 5.0
    times2, pts2 = [0.0, 0.5, 1.0], [[*(end + 0.01 * i * direction), 0.04] for i in range(3)]
    safety.check_chunk(later, NAMES, times2, pts2, later, end)
    assert safety.state == "ok" and safety.status()["hold_reason"] == ""
    assert safety.set_estop(True, later + 0.1)
    assert not safety.request_stop()  # the e-stop holds already
