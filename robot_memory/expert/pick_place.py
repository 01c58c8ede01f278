"""Plan a top-down pick-and-place as joint trajectories and gripper commands.

The plan is data (a list of steps); the expert node sends each step on the
controller topics and waits for it, and :func:`run_in_process` does the same
against a :class:`~robot_memory.sim.runner.SimulationRunner` directly (fast
tests, demonstration collection).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from robot_memory.control.profiles import min_jerk
from robot_memory.memory.grasp_point import ROUND_WORDS
from robot_memory.policy.grasp_clearance import GRASP_FREEDOM, Footprint, clear_grasp
from robot_memory.robot.ik import ArmIK, IKError, top_down_rotation
from robot_memory.robot.panda import (
    ARM_JOINTS,
    ARM_VELOCITY,
    GRIPPER_MAX_WIDTH,
    HOME_ARM,
)
from robot_memory.schemas import GroundTruthObject


@dataclass(frozen=True)
class PickPlaceConfig:
    approach_height: float = 0.10  # pre-grasp TCP height above the grasp point [m]
    lift_height: float = 0.18  # lift after grasping [m]
    release_clearance: float = 0.03  # object bottom above the place surface [m]
    joint_speed: float = 0.5  # fraction of the Panda's velocity limits
    cartesian_speed: float = 0.12  # straight-line moves [m/s]
    min_move_time: float = 0.6  # [s]
    waypoints: int = 10  # trajectory points per move
    grasp_width: float = 0.0  # commanded width when closing (grip force is limited)
    open_width: float = GRIPPER_MAX_WIDTH
    gripper_settle_s: float = 0.7
    min_grasp_height: float = 0.012  # TCP never lower than this above the table [m]

    def __post_init__(self) -> None:
        if not 0.0 < self.joint_speed <= 1.0:
            raise ValueError(f"joint_speed is a fraction in (0, 1], got {self.joint_speed}")
        if self.cartesian_speed <= 0 or self.waypoints < 2:
            raise ValueError("cartesian_speed must be > 0 and waypoints >= 2")


@dataclass(frozen=True)
class ArmMove:
    phase: str
    times: np.ndarray  # (n,) seconds from the start of the move, increasing, > 0
    positions: np.ndarray  # (n, 7) arm joints

    @property
    def duration(self) -> float:
        return float(self.times[-1])

    @property
    def final(self) -> np.ndarray:
        return self.positions[-1]


@dataclass(frozen=True)
class GripperMove:
    phase: str
    width: float
    settle_s: float


Step = ArmMove | GripperMove


def yaw_of(quat_wxyz: tuple[float, float, float, float], axis: int) -> float:
    """Heading of the object's body ``axis`` (0 = x, 1 = y) in the world."""
    w, x, y, z = quat_wxyz
    rot = np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )
    return float(np.arctan2(rot[1, axis], rot[0, axis]))


def _wrap(angle: float) -> float:
    return float((angle + np.pi) % (2 * np.pi) - np.pi)


#: A neighbour whose footprint comes this close to a round object's is in a finger's way [m].
FINGER_CLEARANCE = 0.03


def _nearest_blocking(
    obj: GroundTruthObject, neighbours: Sequence[GroundTruthObject]
) -> GroundTruthObject | None:
    """The nearest other object or the cover, whose footprint (its half
    diagonal) comes within ``FINGER_CLEARANCE`` of ``obj``'s, or None."""
    radius = lambda o: float(np.hypot(o.size[0], o.size[1])) / 2.0  # noqa: E731
    best, best_gap = None, FINGER_CLEARANCE
    for other in neighbours:
        if other.id == obj.id or other.shape in ("table", "bin"):
            continue  # the bin's walls are a place to reach into, not a neighbour
        gap = float(np.linalg.norm(np.subtract(other.position[:2], obj.position[:2])))
        gap -= max(obj.size[0], obj.size[1]) / 2.0 + radius(other)
        if gap < best_gap:
            best, best_gap = other, gap
    return best


def footprint_of(obj: GroundTruthObject) -> Footprint:
    """``obj``'s footprint on the table: a circle for round things, else its box."""
    if obj.shape in ROUND_WORDS:
        return Footprint(tuple(obj.position[:2]), radius=max(obj.size[0], obj.size[1]) / 2.0)
    half = (obj.size[0] / 2.0, obj.size[1] / 2.0)
    return Footprint(tuple(obj.position[:2]), half=half, yaw=yaw_of(obj.quaternion, 0))


class PickPlacePlanner:
    def __init__(self, ik: ArmIK, config: PickPlaceConfig | None = None) -> None:
        self.ik = ik
        self.config = config or PickPlaceConfig()
        _, home_rot = ik.forward(HOME_ARM)
        self.nominal_yaw = float(np.arctan2(home_rot[1, 0], home_rot[0, 0]))

    def grasp_yaw(
        self, obj: GroundTruthObject, neighbours: Sequence[GroundTruthObject] = ()
    ) -> float:
        """Hand yaw that closes the fingers across the object's narrower side,
        choosing among the symmetric options the one nearest the home yaw. A
        round object (a can, a mug's body) with a neighbour within a finger's
        reach is grasped with the fingers closing across the line to it, so no
        finger comes down on the neighbour (two cans side by side)."""
        sx, sy, _ = obj.size
        closing_axis = 0 if sx <= sy else 1
        closing_yaw = yaw_of(obj.quaternion, closing_axis)
        square = abs(sx - sy) <= 0.1 * max(sx, sy)
        blocking = _nearest_blocking(obj, neighbours) if square else None
        if blocking is not None:
            away = np.subtract(blocking.position[:2], obj.position[:2])
            across = float(np.arctan2(away[1], away[0])) + np.pi / 2
            if obj.shape in ROUND_WORDS:  # any direction closes across it
                closing_yaw = across
            else:  # a square footprint: the face pair more across the neighbour
                closing_yaw = max(
                    (closing_yaw, closing_yaw + np.pi / 2),
                    key=lambda y: abs(np.cos(y - across)),
                )
        base = closing_yaw - np.pi / 2  # fingers close along hand yaw + pi/2
        options = [base + k * np.pi for k in range(-2, 3)]
        return min(options, key=lambda y: abs(_wrap(y - self.nominal_yaw)))

    def grasp(
        self, obj: GroundTruthObject, neighbours: Sequence[GroundTruthObject] = ()
    ) -> tuple[np.ndarray, float]:
        """Where the hand closes on ``obj`` and its yaw: the grasp point (the
        centre unless the cell says otherwise) at :meth:`grasp_yaw`, slid along
        a handle or a box and turned where a neighbour stands where a finger
        would come down (:func:`~robot_memory.policy.grasp_clearance.clear_grasp`)."""
        yaw = self.grasp_yaw(obj, neighbours)
        centre = np.array(obj.grasp_point or obj.position, dtype=float)
        slide, turn = GRASP_FREEDOM.get(obj.shape, (0.0, 0.0))
        others = [
            footprint_of(o)
            for o in neighbours
            if o.id != obj.id and o.shape not in ("table", "bin")
        ]
        if (slide > 0 or turn > 0) and others:
            chosen = clear_grasp(centre, yaw, others, self.config.open_width, slide, turn)
            centre[:2] = chosen.point
            yaw = chosen.yaw
        return centre, yaw

    def joint_move(self, phase: str, q0: np.ndarray, q1: np.ndarray) -> ArmMove:
        c = self.config
        peak = np.max(np.abs(q1 - q0) / (c.joint_speed * ARM_VELOCITY))
        duration = max(c.min_move_time, 1.875 * float(peak))
        tau = np.linspace(0.0, 1.0, c.waypoints + 1)[1:]
        positions = q0 + np.outer(min_jerk(tau), q1 - q0)
        return ArmMove(phase, tau * duration, positions)

    def line_move(
        self, phase: str, q0: np.ndarray, p0: np.ndarray, p1: np.ndarray, rot: np.ndarray
    ) -> ArmMove:
        """Straight TCP line from ``p0`` to ``p1`` at fixed orientation."""
        c = self.config
        dist = float(np.linalg.norm(p1 - p0))
        duration = max(c.min_move_time, 1.875 * dist / c.cartesian_speed)
        tau = np.linspace(0.0, 1.0, c.waypoints + 1)[1:]
        q, positions = q0, []
        for s in min_jerk(tau):
            q = self.ik.solve(q, p0 + s * (p1 - p0), rot).q
            positions.append(q)
        return ArmMove(phase, tau * duration, np.array(positions))

    def plan(
        self,
        q_start: np.ndarray,
        obj: GroundTruthObject,
        place_point: np.ndarray,
        *,
        hold_height: float | None = None,
        release_clearance: float | None = None,
        neighbours: Sequence[GroundTruthObject] = (),
    ) -> list[Step]:
        """Steps that move ``obj`` so its bottom centre lands on ``place_point``.

        The hand grasps ``obj``'s grasp point (its centre unless the cell
        says otherwise: a mug's cup, a screwdriver's handle). ``hold_height`` is how far the grasp
        point sits above the bottom of what is carried (default: half the
        object's height); ``release_clearance`` overrides the config's drop
        height; ``neighbours`` (the other objects) steer a round object's grasp
        clear of them. Raises IKError when a pose on the way is out of reach.
        """
        c = self.config
        center, yaw = self.grasp(obj, neighbours)
        rot = top_down_rotation(yaw)
        half_h = obj.size[2] / 2.0 if hold_height is None else float(hold_height)
        clearance = c.release_clearance if release_clearance is None else release_clearance
        grasp = center.copy()
        grasp[2] = max(center[2], c.min_grasp_height)
        above = grasp + [0, 0, c.approach_height]
        lifted = grasp + [0, 0, c.lift_height]
        release = np.array(place_point, dtype=float) + [0, 0, clearance + half_h]
        over_place = release.copy()
        over_place[2] = max(release[2] + 0.08, lifted[2])

        q_above = self.ik.solve(q_start, above, rot).q
        steps: list[Step] = [
            GripperMove("open", c.open_width, 0.3),
            self.joint_move("approach", q_start, q_above),
        ]
        descend = self.line_move("descend", q_above, above, grasp, rot)
        lift = self.line_move("lift", descend.final, grasp, lifted, rot)
        q_over = self.ik.solve(lift.final, over_place, rot).q
        lower = self.line_move("lower", q_over, over_place, release, rot)
        retreat = self.line_move("retreat", lower.final, release, over_place, rot)
        steps += [
            descend,
            GripperMove("grasp", c.grasp_width, c.gripper_settle_s),
            lift,
            self.joint_move("transport", lift.final, q_over),
            lower,
            GripperMove("release", c.open_width, c.gripper_settle_s),
            retreat,
            self.joint_move("home", retreat.final, np.asarray(HOME_ARM)),
        ]
        return steps

    def plan_cover(
        self,
        q_start: np.ndarray,
        cover: GroundTruthObject,
        target: GroundTruthObject,
        release_clearance: float = 0.01,
    ) -> list[Step]:
        """Steps that pick the cover by its knob and put it centred over ``target``.

        The cover's body origin is the centre of its box; the knob is a 3 cm
        cube ``COVER_KNOB_OFFSET`` above it. The hand grasps the knob's centre
        (its fingertips stay above the cover's top plate) and lowers the cover
        until its rim is ``release_clearance`` above the table under ``target``.
        """
        knob = knob_of(cover)
        place = np.array([target.position[0], target.position[1], _table_z(target)])
        hold = cover.size[2] / 2.0 + COVER_KNOB_OFFSET
        return self.plan(
            q_start, knob, place, hold_height=hold, release_clearance=release_clearance
        )


#: The cover's knob: a cube of this edge, its centre this far above the cover's origin.
COVER_KNOB_SIZE = 0.03
COVER_KNOB_OFFSET = 0.06


def knob_of(cover: GroundTruthObject) -> GroundTruthObject:
    """The cover's knob as a graspable pseudo-object (same yaw as the cover)."""
    w, x, y, z = cover.quaternion
    up = np.array([2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)])
    pos = np.array(cover.position) + COVER_KNOB_OFFSET * up
    return cover.model_copy(
        update={
            "id": f"{cover.id}_knob",
            "position": tuple(float(v) for v in pos),
            "size": (COVER_KNOB_SIZE,) * 3,
        }
    )


def _table_z(obj: GroundTruthObject) -> float:
    """Height of the surface ``obj`` rests on (its bottom; 0 for the table top)."""
    return max(0.0, float(obj.position[2]) - obj.size[2] / 2.0)


def place_point_for(place: GroundTruthObject) -> np.ndarray:
    """Where an object dropped into/onto ``place`` should rest: its top centre
    (for the bin: the floor is lower, so a drop from the rim height is fine)."""
    pos = np.array(place.position, dtype=float)
    pos[2] += place.size[2] / 2.0
    return pos


def run_in_process(
    runner: object,
    steps: list[Step],
    settle_s: float = 0.25,
    on_step: Callable[[int, Step], None] | None = None,
) -> None:
    """Execute ``steps`` on a SimulationRunner through its command interface
    (the same validation the topics go through)."""
    for i, step in enumerate(steps):
        if on_step is not None:
            on_step(i, step)
        if isinstance(step, ArmMove):
            runner.command_trajectory(ARM_JOINTS, step.times.tolist(), step.positions.tolist())
            runner.run_for(step.duration + settle_s)
        else:
            runner.command_gripper([step.width])
            runner.run_for(step.settle_s)


__all__ = [
    "ArmMove",
    "GripperMove",
    "IKError",
    "PickPlaceConfig",
    "PickPlacePlanner",
    "Step",
    "knob_of",
    "place_point_for",
    "run_in_process",
]
