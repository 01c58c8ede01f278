"""The ``look`` skill without ROS: point the wrist camera down at a table point.

Not the diffusion policy: a scripted IK motion. The TCP goes ``LOOK_HEIGHT``
above the point, pointing straight down with the home hand yaw; from there the
wrist camera sees about 0.55 x 0.7 m of table around it (the spawn area from
``LOOK_POINTS``). Two calls make the skill:

    q_goal = look_target(ik, q_now, point)          # IK, raises IKError
    times, positions = look_trajectory(q_now, q_goal)  # minimum-jerk, safe speed

``times`` are seconds from now (strictly increasing, first > 0) and
``positions`` one row of the 7 arm joints per time: what
``SimulationRunner.command_trajectory`` and a ``JointTrajectory`` take.

As a skill of the :class:`~robot_memory.policy.skill_executor.SkillExecutor`
(the policy node's and the in-process suite's), :class:`LookDriver` adds:

* the look point of a goal over the latest scene graph (:func:`look_point`):
  ``target_position``; else ``target`` a place id -> the top centre of its
  box, or an object id (text) -> its centroid; else ``object_id``;
* the motion on the executor's clock from the observation it was planned
  from (:class:`LookMotion`); a hand that closed on nothing is opened (a pick
  after a missed grasp then starts open, as every demonstrated pick did);
  a holding hand is left as it is;
* its points still ahead, sent again every ``resend_period_s`` while the
  motion lasts (the safety node's watchdog holds the arm 1.5 s after the last
  accepted chunk);
* the outcome: succeeded once the trajectory has ended and the measured joints
  stay within ``tolerance`` of the target, nearly still, for ``settle_s``;
  failed "timeout" when that has not happened ``timeout_s`` after its end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from robot_memory.control.profiles import min_jerk
from robot_memory.policy.goal_grounding import (
    GroundingError,
    check_target,
    find_object,
    find_place,
    top_centre,
)
from robot_memory.policy.skill_monitor import FAILED, RUNNING, SUCCEEDED, MonitorConfig
from robot_memory.robot.ik import ArmIK, IKError, top_down_rotation
from robot_memory.robot.panda import (
    ARM_LOWER,
    ARM_UPPER,
    ARM_VELOCITY,
    HOME_ARM,
    HOME_GRIPPER_WIDTH,
)
from robot_memory.schemas import PolicyGoalMsg, SceneGraphMsg

#: TCP height above the table while looking [m] (the table top is z = 0).
LOOK_HEIGHT = 0.42
#: The sweep over the table (TCP x, y) that sees the whole spawn area [m]; the
#: fourth looks at the far-left corner neither camera sees at home: from the
#: first three an object there (x 0.3) is cut by the image's edge (household
#: cell, 10 layouts: 90 % of objects remembered within 3 cm after three
#: looks, 94 % after four).
LOOK_POINTS: tuple[tuple[float, float], ...] = (
    (0.08, -0.2),
    (0.08, 0.2),
    (0.1, 0.0),
    (0.25, 0.15),
)
#: Where an unreachable look point is pulled towards (the table's middle) [m].
FALLBACK_POINT = (0.08, 0.0)
#: Fraction of Franka's joint velocity limits a look moves at (the expert's
#: joint moves use 0.5; the safety node allows 1.0).
LOOK_JOINT_SPEED = 0.4


def home_yaw(ik: ArmIK) -> float:
    """The hand yaw at the home pose [rad]: looks keep it (no wrist twist)."""
    rot = ik.forward(HOME_ARM)[1]
    return float(np.arctan2(rot[1, 0], rot[0, 0]))


def look_target(
    ik: ArmIK,
    q_now: Sequence[float],
    point: Sequence[float],
    height: float = LOOK_HEIGHT,
    yaw: float | None = None,
    tries: int = 4,
) -> np.ndarray:
    """Arm joints that put the TCP ``height`` above table point ``point`` (x, y
    or x, y, z; z is ignored: the height is above the table top), pointing down
    with hand ``yaw`` (default: the home yaw). The IK is seeded at ``q_now``.

    A point out of reach is pulled towards ``FALLBACK_POINT`` in ``tries``
    steps (the camera still sees it from nearer the middle); raises
    :class:`IKError` when even the last step fails."""
    xy = np.asarray(point, dtype=float).reshape(-1)[:2]
    if xy.shape != (2,) or not np.all(np.isfinite(xy)):
        raise ValueError(f"look point must be finite x, y, got {point!r}")
    if not np.isfinite(height) or height <= 0:
        raise ValueError(f"height must be > 0, got {height}")
    rot = top_down_rotation(home_yaw(ik) if yaw is None else yaw)
    q0 = np.asarray(q_now, dtype=float)
    last: IKError | None = None
    for k in range(max(1, tries)):
        s = k / max(1, tries - 1) * 0.6  # up to 60% of the way to the fallback
        target = np.array([*((1 - s) * xy + s * np.asarray(FALLBACK_POINT)), height])
        try:
            return ik.solve(q0, target, rot).q
        except IKError as err:
            last = err
    raise IKError(f"no look pose above {xy.round(3).tolist()}: {last}")


def look_trajectory(
    q_now: Sequence[float],
    q_goal: Sequence[float],
    speed: float = LOOK_JOINT_SPEED,
    waypoints: int = 10,
    min_duration: float = 0.6,
) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-jerk joint move from ``q_now`` to ``q_goal``: (times (n,),
    positions (n, 7)). The duration keeps every joint's peak speed at or below
    ``speed`` times its velocity limit (min-jerk peaks at 1.875x the mean)."""
    q0, q1 = np.asarray(q_now, dtype=float), np.asarray(q_goal, dtype=float)
    if q0.shape != (7,) or q1.shape != (7,):
        raise ValueError("q_now and q_goal must be 7 arm joints")
    if not 0.0 < speed <= 1.0:
        raise ValueError(f"speed is a fraction of the limits in (0, 1], got {speed}")
    if np.any(q1 < ARM_LOWER) or np.any(q1 > ARM_UPPER):
        raise ValueError("q_goal is outside the joint limits")
    peak = float(np.max(np.abs(q1 - q0) / (speed * ARM_VELOCITY)))
    duration = max(min_duration, 1.875 * peak)
    tau = np.linspace(0.0, 1.0, max(2, waypoints) + 1)[1:]
    return tau * duration, q0 + np.outer(min_jerk(tau), q1 - q0)


@dataclass(frozen=True)
class LookConfig:
    tolerance: float = 0.02  # [rad] every arm joint this close to the target
    still_speed: float = 0.05  # [rad/s] "nearly still": no joint faster
    settle_s: float = 0.3  # both for this long
    timeout_s: float = 5.0  # after the trajectory's end
    # < the safety watchdog's expected chunk interval (0.7 s): a look is never
    # mistaken for a stalled policy
    resend_period_s: float = 0.5
    #: [m] a measured gripper width below this is a hand closed on nothing:
    #: the look opens it (the pick monitor's empty-grasp width)
    empty_hand_m: float = MonitorConfig.empty_grasp_m


@dataclass
class LookMotion:
    goal: PolicyGoalMsg
    point: np.ndarray  # the table point looked at [m]
    q_goal: np.ndarray
    times: np.ndarray  # absolute times of the points [s]
    positions: np.ndarray  # (n, 7)
    last_sent: float = -np.inf
    settled_since: float | None = None
    q_prev: np.ndarray | None = None
    t_prev: float = -np.inf
    chunks: int = 0
    gripper_width: float | None = None  # command the gripper to this width too [m]

    @property
    def end(self) -> float:
        return float(self.times[-1])

    def ahead(self, t_stamp: float) -> tuple[np.ndarray, np.ndarray]:
        """(seconds from ``t_stamp``, arm joints) of the points after ``t_stamp``."""
        keep = self.times > t_stamp
        return self.times[keep] - t_stamp, self.positions[keep]


def look_point(goal: PolicyGoalMsg, graph: SceneGraphMsg | None) -> np.ndarray:
    """Where ``goal`` wants the wrist camera to look, inside the cell's
    workspace (raises GroundingError)."""
    return check_target(_look_point(goal, graph), "look target")


def _look_point(goal: PolicyGoalMsg, graph: SceneGraphMsg | None) -> np.ndarray:
    if goal.target_position is not None:
        return np.asarray(goal.target_position, dtype=float)
    if not goal.target and goal.object_id is None:
        raise GroundingError("no target", "look needs target, object_id or target_position")
    if graph is None:
        raise GroundingError("no scene graph", "no scene graph received yet")
    if goal.target:
        place = find_place(graph, goal.target)
        if place is not None:
            return top_centre(place.bbox_min, place.bbox_max)
        if not goal.target.lstrip("-").isdecimal():
            raise GroundingError("unknown target", f"{goal.target!r} is no place nor object id")
        return np.asarray(find_object(graph, int(goal.target)).centroid, dtype=float)
    return np.asarray(find_object(graph, int(goal.object_id)).centroid, dtype=float)  # type: ignore[arg-type]


class LookDriver:
    """Plans a look and judges it (no clock of its own: every call gets ``now``)."""

    def __init__(self, ik: ArmIK | None, config: LookConfig | None = None) -> None:
        self.ik = ik  # None: a driver that only follows given motions (no planning)
        self.config = config or LookConfig()

    def start(
        self,
        goal: PolicyGoalMsg,
        graph: SceneGraphMsg | None,
        q_now: np.ndarray,
        gripper_width: float,
        t_obs: float,
    ) -> LookMotion:
        """Plan the look from the arm joints ``q_now`` and ``gripper_width``
        observed at ``t_obs``; a hand closed on nothing is opened (raises
        GroundingError, reason "IK" when no look pose is reachable)."""
        if self.ik is None:
            raise RuntimeError("this LookDriver has no IK: it cannot plan looks")
        point = look_point(goal, graph)
        try:
            q_goal = look_target(self.ik, q_now, point)
            times, positions = look_trajectory(q_now, q_goal)
        except (IKError, ValueError) as err:
            raise GroundingError("IK", f"look at {np.round(point, 3).tolist()}: {err}") from err
        motion = LookMotion(goal, point, q_goal, t_obs + times, positions)
        if gripper_width < self.config.empty_hand_m:
            motion.gripper_width = HOME_GRIPPER_WIDTH
        return motion

    def due(self, motion: LookMotion, now: float) -> bool:
        """Send (again) now? First at once, then every resend period while points remain."""
        return now < motion.end and now - motion.last_sent >= self.config.resend_period_s

    def sent(self, motion: LookMotion, now: float) -> None:
        motion.last_sent = now
        motion.chunks += 1

    def update(self, motion: LookMotion, now: float, q: np.ndarray, t_q: float) -> tuple[str, str]:
        """The skill's state after the measurement ``q`` at time ``t_q``."""
        cfg = self.config
        speed = 0.0
        if motion.q_prev is not None and t_q > motion.t_prev:
            speed = float(np.max(np.abs(q - motion.q_prev)) / (t_q - motion.t_prev))
        if t_q > motion.t_prev:
            motion.q_prev, motion.t_prev = q.copy(), t_q
        close = float(np.max(np.abs(q - motion.q_goal))) <= cfg.tolerance
        if now >= motion.end and close and speed <= cfg.still_speed:
            if motion.settled_since is None:
                motion.settled_since = now
            if now - motion.settled_since >= cfg.settle_s:
                return SUCCEEDED, "at the look pose"
        else:
            motion.settled_since = None
        if now > motion.end + cfg.timeout_s:
            error = float(np.max(np.abs(q - motion.q_goal)))
            return FAILED, f"timeout: look pose not reached ({error:.3f} rad off)"
        return RUNNING, ""


__all__ = [
    "FALLBACK_POINT",
    "LOOK_HEIGHT",
    "LOOK_JOINT_SPEED",
    "LOOK_POINTS",
    "LookConfig",
    "LookDriver",
    "LookMotion",
    "home_yaw",
    "look_point",
    "look_target",
    "look_trajectory",
]
