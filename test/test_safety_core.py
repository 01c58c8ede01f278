"""The safety filter (pure core, no ROS): random chunks mixing good and bad
points are either passed on untouched and within every limit, or refused whole
with a reason; stale points are dropped; the watchdog and the e-stop latch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from robot_memory.control.joint_trajectory import LIMIT_TOLERANCE
from robot_memory.control.safety import ChunkRejected, SafetyConfig, SafetyFilter
from robot_memory.expert.ik import PandaIK
from robot_memory.robot.panda import (
    ARM_JOINTS,
    ARM_LOWER,
    ARM_UPPER,
    ARM_VELOCITY,
    GRIPPER_WIDTH_JOINT,
    HOME_ARM,
)
from robot_memory.sim.scene import build_model

MODEL = build_model("tabletop", "primitive")
ORACLE_FK = PandaIK(build_model("tabletop", "primitive"))  # mink, not the filter's MuJoCo FK
CONFIG = SafetyConfig(position_margin=0.01, velocity_scale=0.8)
LOWER, UPPER = ARM_LOWER + CONFIG.position_margin, ARM_UPPER - CONFIG.position_margin
VMAX = ARM_VELOCITY * CONFIG.velocity_scale
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
    if np.any(np.abs(np.diff(q, axis=0)) / np.diff(t)[:, None] > VMAX + LIMIT_TOLERANCE):
        found.add("velocity over limit")
    if any(np.any((tcp(row) < BOX_LO) | (tcp(row) > BOX_HI)) for row in q):
        found.add("outside workspace")
    lead = c["stamp"] + t - NOW
    future = np.flatnonzero(lead > 0)
    if len(future) == 0:
        found.add("stale")
        return found
    first = max(future[0], int(np.flatnonzero(lead <= CONFIG.min_lead_s).max(initial=-1)))
    if c["q_meas"] is None:
        found.add("no joint state")
        return found
    sent_t = np.concatenate([[0.0], np.maximum(lead[first:], CONFIG.min_lead_s)])
    sent_q = np.vstack([c["q_meas"], q[first:]])
    if np.any(np.abs(np.diff(sent_q, axis=0)) / np.diff(sent_t)[:, None] > VMAX + LIMIT_TOLERANCE):
        found.add("velocity over limit")
    return found


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
    np.testing.assert_allclose(out.times[1:], lead[1:])
    assert np.all((out.positions >= LOWER - 1e-6) & (out.positions <= UPPER + 1e-6))
    path_t = np.concatenate([[0.0], out.times])
    path_q = np.vstack([c["q_meas"], out.positions])
    assert np.all(np.abs(np.diff(path_q, axis=0)) / np.diff(path_t)[:, None] <= VMAX + 1e-6)
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
    np.testing.assert_allclose(out.times, [0.05, 0.15, 0.25])
    np.testing.assert_array_equal(out.positions, np.array(pts)[3:, :7])
    assert out.dropped == 3 and safety.counters.stale_points_dropped == 3
    # a point due in under min_lead_s is kept at min_lead_s; earlier ones go
    out = safety.check_chunk(NOW - 0.295, NAMES, times, pts, NOW, HOME_ARM + 0.03)
    np.testing.assert_allclose(out.times, [0.05, 0.105, 0.205])
    with pytest.raises(ChunkRejected, match="stale: every point is in the past"):
        safety.check_chunk(NOW - 0.6, NAMES, times, pts, NOW, HOME_ARM)
    with pytest.raises(ChunkRejected, match=r"stale: observation 5\.00 s old"):
        safety.check_chunk(NOW - 5.0, NAMES, times, pts, NOW, HOME_ARM)
    assert safety.counters.rejected == {"stale": 2} and safety.counters.accepted == 2


def test_velocities_are_checked_from_the_setpoint_the_controller_is_at():
    """The controller interpolates from its current setpoint, not from where the
    (lagging) arm is measured: a chunk continuing the last one is accepted even
    when the measurement lags; a jump away from the setpoint is refused; a
    measurement far from the setpoint (someone else moved the arm) is trusted."""
    safety = SafetyFilter(CONFIG, MODEL)
    times, pts = home_chunk(step=0.02)
    safety.check_chunk(NOW, NAMES, times, pts, NOW, HOME_ARM)
    np.testing.assert_allclose(safety.setpoint(NOW + 0.2), np.array(pts)[2, :7], atol=1e-9)
    # 0.25 s later the next chunk continues from where the last one is now;
    # the arm lags 0.06 rad behind (0.06 / 0.05 s would be 1.2 rad/s: fine, but
    # the next test makes the lag matter)
    later = NOW + 0.25
    cont = [[*(HOME_ARM + 0.02 * 2.5 + 0.02 * i), 0.04] for i in range(6)]
    lagging = HOME_ARM + 0.02 * 2.5 - 0.12
    out = safety.check_chunk(later - 0.04, NAMES, times, cont, later, lagging)
    assert out.positions.shape[0] >= 5
    # from the measured position this first point would be 0.12 rad in 0.06 s
    fresh = SafetyFilter(CONFIG, MODEL)
    with pytest.raises(ChunkRejected, match="velocity"):
        fresh.check_chunk(later - 0.04, NAMES, times, cont, later, lagging)
    # a chunk that jumps 0.2 rad from the setpoint is refused
    jump = [[*(HOME_ARM + 0.25 + 0.02 * i), 0.04] for i in range(6)]
    with pytest.raises(ChunkRejected, match="velocity"):
        safety.check_chunk(later, NAMES, times, jump, later + 0.01, HOME_ARM + 0.07)


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda p: p[2].__setitem__(3, -3.2), "joint panda_joint4 position -3.2 outside"),
        (
            lambda p: p[2].__setitem__(1, p[2][1] + 0.4),
            "velocity of panda_joint2 4.1 rad/s over limit 1.74",
        ),
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


def test_watchdog_holds_once_per_silence_and_never_before_a_chunk():
    safety = SafetyFilter(SafetyConfig(watchdog_timeout_s=1.5), MODEL)
    assert not any(safety.tick(t) for t in np.arange(0.0, 10.0, 0.05))
    assert safety.state == "ok" and safety.counters.holds == 0
    safety.on_chunk_accepted(10.0)
    assert not safety.tick(11.4)
    assert safety.tick(11.6) and safety.state == "holding"
    assert not any(safety.tick(t) for t in np.arange(11.6, 20.0, 0.05))
    safety.on_chunk_accepted(20.0)
    assert safety.state == "ok" and safety.tick(21.6) and safety.counters.holds == 2
    hold = safety.hold_command(HOME_ARM)
    np.testing.assert_array_equal(hold.positions, [HOME_ARM])
    assert hold.times.tolist() == [safety.config.hold_time_s]


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
        {"min_lead_s": -1.0},
    ],
)
def test_bad_configs_are_refused(kwargs):
    with pytest.raises(ValueError):
        SafetyConfig(**kwargs)
