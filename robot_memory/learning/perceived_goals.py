"""The policy's goal from perception: from memory, or from the current frame only.

The memory ablation (issue 4): the same policy, scenes, seeds and sampling
noise; only the source of the pick's target position, read before every chunk
(``rollout.run_episode``'s ``goal_provider``), differs. Every call renders the
cameras and runs the real perception pipeline; then

* ``memory``: the frames feed a :class:`SceneMemory`; the goal is the bound
  memory object's centroid, kept while it is out of view or hidden;
* ``current_frame``: only the last estimate is kept; the goal is the current
  frames' detection nearest it (within ``track_radius``), else it is unknown.

Binding (first call of an episode, or ``start``): the perceived object nearest
the true goal position within ``bind_radius``: the only use of ground truth
(which object the instruction means). ``skill``, ``goal_yaw`` (still the
expert's grasp yaw: memory stores no orientation) and the ids are kept.

Never bound: ``start`` returns None, ``bind_failure`` says why and a call
raises :class:`TargetLostError` ("target not known: ..."): returning None would
not do, ``run_episode`` starts from the *true* goal and keeps it then. Target
lost after binding, either mode (``on_unknown``): ``"fail"`` raises (no goal
exists from a frame that does not show the target; holding still would not
bring it back); ``"keep_last"`` returns the goal at the last position seen, so
``current_frame`` becomes a one-entry memory. Once the hand closes on
something (proprioception), a lost target is in the hand: the last goal is kept.

The ablation's task is :class:`OutOfViewPicks` (chosen by measuring, see there);
its runner is :mod:`robot_memory.learning.memory_ablation`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from robot_memory.learning.skill_tasks import SkillScenes, move_arm_to, object_truth
from robot_memory.memory.config import MemoryConfig
from robot_memory.memory.scene_graph import SceneMemory
from robot_memory.perception.config import PerceptionConfig
from robot_memory.perception.observations import ObservationFrame
from robot_memory.perception.pipeline import PerceptionPipeline
from robot_memory.policy.skill_goal import SkillGoal
from robot_memory.robot.ik import top_down_rotation
from robot_memory.sim.cameras import CameraRig
from robot_memory.sim.runner import SimulationRunner
from robot_memory.sim.scene import OBJECTS

MODES = ("memory", "current_frame")
ON_UNKNOWN = ("fail", "keep_last")
#: A perceived object this close to the true goal position is the one meant [m].
BIND_RADIUS_M = 0.06
#: A detection this close to the last estimate is the target again [m].
TRACK_RADIUS_M = 0.06
#: Gripper commanded closed below this, holding something above this [m].
CLOSED_COMMAND_M, EMPTY_GRASP_M = 0.04, 0.004
#: The look before an OutOfViewPicks episode: TCP over this table point, this
#: high, pointing down (the wrist camera sees the spawn area from there) [m].
LOOK_POINT, LOOK_HEIGHT = (0.08, 0.0), 0.42
#: The ablation's variants: name -> (mode, on_unknown).
VARIANTS = {
    "memory": ("memory", "fail"),
    "current_frame": ("current_frame", "fail"),
    "current_frame_keep_last": ("current_frame", "keep_last"),
}


class TargetLostError(RuntimeError):
    """``on_unknown="fail"``: the target is unknown before the hand holds it."""


@dataclass
class ProviderCounters:
    calls: int = 0  # goal reads by the rollout (one per chunk)
    target_visible_in_current_frame: int = 0  # a detection near the target in the frames
    target_unknown: int = 0  # no position to give

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def nearest(points: Sequence[np.ndarray], to: np.ndarray, radius: float) -> tuple[int, float]:
    """Index of the point nearest ``to`` if within ``radius`` (else -1), and that
    nearest distance (inf when there are no points)."""
    if not len(points):
        return -1, float("inf")
    d = np.linalg.norm(np.asarray(points, dtype=float).reshape(-1, 3) - to, axis=1)
    k = int(np.argmin(d))
    return (k if d[k] <= radius else -1), float(d[k])


class PerceivedGoalProvider:
    """A ``GoalProvider`` fed by real rendering and perception of ``runner``'s cameras."""

    def __init__(
        self,
        runner: SimulationRunner,
        mode: str,
        cameras: Sequence[str] = ("front", "wrist"),
        width: int = 320,
        height: int = 240,
        on_unknown: str = "fail",
        bind_radius: float = BIND_RADIUS_M,
        track_radius: float = TRACK_RADIUS_M,
        perception_config: PerceptionConfig | None = None,
        memory_config: MemoryConfig | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if on_unknown not in ON_UNKNOWN:
            raise ValueError(f"on_unknown must be one of {ON_UNKNOWN}, got {on_unknown!r}")
        if not cameras:
            raise ValueError("at least one camera is needed")
        self.runner, self.mode, self.on_unknown = runner, mode, on_unknown
        self.cameras = tuple(cameras)
        self.bind_radius, self.track_radius = bind_radius, track_radius
        self.rig = CameraRig(runner.physics.model, width, height, self.cameras)
        self.perception = PerceptionPipeline(perception_config)
        self.memory = SceneMemory(memory_config) if mode == "memory" else None
        self.counters = ProviderCounters()
        self.goal: SkillGoal | None = None
        self.episode: int | None = None
        self.bound_id: int | None = None  # memory object id (memory mode)
        self.estimate: np.ndarray | None = None  # the last target position given
        self.bind_failure = ""
        self.frames: list[ObservationFrame] = []
        self.visible = False  # the last frames showed the target

    # -- perception -------------------------------------------------------------
    def observe(self, update_memory: bool = True) -> list[ObservationFrame]:
        """Render every camera now, perceive, and (memory mode, ``update_memory``)
        update memory; without it the frames are only looked at (choosing a target
        before the episode's memory starts)."""
        physics = self.runner.physics
        names, q, _, _ = physics.joint_state()
        joints = {str(n): float(v) for n, v in zip(names, q, strict=True)}
        stamp = float(self.runner.time)
        self.frames = []
        for cam in self.cameras:
            rgb, depth = self.rig.render(physics, cam)
            pos, quat = self.rig.optical_pose(physics, cam)
            k = self.rig.intrinsics(cam)
            frame = self.perception.process(rgb, depth, k, pos, quat, stamp, cam, joints)
            if self.memory is not None and update_memory:
                self.memory.update(frame)
            self.frames.append(frame)
        return self.frames

    def seen_near(self, point: np.ndarray, radius: float) -> tuple[np.ndarray | None, float]:
        """The last frames' detection nearest ``point`` if within ``radius``, and its distance."""
        found = [np.asarray(o.centroid, dtype=float) for f in self.frames for o in f.objects]
        k, d = nearest(found, point, radius)
        return (None if k < 0 else found[k]), d

    # -- episodes ---------------------------------------------------------------
    def start(self, goal: SkillGoal) -> SkillGoal | None:
        """New episode: forget, look now, bind the object meant by ``goal`` (its
        true position). Returns the perceived goal, or None (see ``bind_failure``)."""
        self.goal, self.episode = goal, self.runner.episode
        self.bound_id, self.estimate, self.bind_failure = None, None, ""
        truth = np.asarray(goal.target_position, dtype=float)
        if self.memory is not None:
            self.memory.reset(as_new=True)  # the clock restarted with the episode
        self.observe()
        if self.memory is not None:
            objects = self.memory.objects()
            k, d = nearest([o.centroid for o in objects], truth, self.bind_radius)
            if k >= 0:
                self.bound_id = objects[k].id
                self.estimate = np.asarray(objects[k].centroid, dtype=float).copy()
        else:
            self.estimate, d = self.seen_near(truth, self.bind_radius)
        self.visible = self.estimate is not None
        if self.estimate is None:
            what = "memory object" if self.memory is not None else "detection"
            near = f"nearest {d * 100:.1f} cm" if np.isfinite(d) else "nothing perceived"
            self.bind_failure = (
                f"no {what} within {self.bind_radius * 100:.0f} cm of the target ({near})"
            )
            return None
        return replace(goal, target_position=self.estimate.copy())

    def __call__(self, goal: SkillGoal, runner: object = None) -> SkillGoal | None:
        self.counters.calls += 1
        if self.goal is not goal or self.episode != self.runner.episode:
            out = self.start(goal)
            self.counters.target_visible_in_current_frame += int(out is not None)
        elif self.estimate is not None:
            return self._track(goal)
        else:
            out = None  # never bound: unknown all episode
        if out is None:  # raise even for keep_last: the rollout would use the true goal
            self.counters.target_unknown += 1
            raise TargetLostError(f"target not known: {self.bind_failure}")
        return out

    def _track(self, goal: SkillGoal) -> SkillGoal | None:
        self.observe()
        position = self._memory_position() if self.memory is not None else None
        reference = self.estimate if position is None else position
        seen, _ = self.seen_near(reference, self.track_radius)
        self.visible = seen is not None
        self.counters.target_visible_in_current_frame += int(self.visible)
        if self.memory is None:
            position = seen
        if position is None:
            self.counters.target_unknown += 1
            if self.on_unknown == "fail" and not self.holding():
                where = "in memory" if self.memory is not None else "in the current frame"
                raise TargetLostError(f"target not {where}")
            # keep_last (or the target is in the hand): the last estimate stands
            return replace(goal, target_position=self.estimate.copy())
        self.estimate = np.asarray(position, dtype=float).copy()
        return replace(goal, target_position=self.estimate.copy())

    def holding(self) -> bool:
        """The gripper was told to close and has not closed on nothing: the hand
        is closing on or holding the target (proprioception only). Measured: the
        current frames lose the target right there, between the closing fingers."""
        closed = getattr(self.runner, "gripper_command", 1.0) < CLOSED_COMMAND_M
        return bool(closed and self.runner.physics.gripper_width() > EMPTY_GRASP_M)

    def _memory_position(self) -> np.ndarray | None:
        """The bound object's centroid (followed through merges); None when memory
        no longer holds it or holds it as absent."""
        assert self.memory is not None and self.bound_id is not None
        oid, chain = self.bound_id, set()
        while oid not in chain:
            chain.add(oid)
            try:
                obj = self.memory.get(oid)
            except KeyError:
                return None
            if obj.merged_into is None:
                self.bound_id = oid
                return None if obj.status == "absent" else np.asarray(obj.centroid, dtype=float)
            oid = obj.merged_into
        return None

    def close(self) -> None:
        self.rig.close()
        if self.memory is not None:
            self.memory.close()


class OutOfViewPicks(SkillScenes):
    """Pick an object that was seen, but is out of view when the policy starts.

    Measured on the plain pick (expert trajectories, front + wrist, 320x240):
    the cameras show the target in every chunk until the grasp (the wrist
    camera keeps it between the fingers) and, from the policy's start poses,
    show almost every object; the front camera alone loses it only at the grasp.
    So the task makes it leave the view: after the usual set-up (scene, random
    start pose) the arm looks over the table (TCP ``LOOK_HEIGHT`` over
    ``LOOK_POINT``), ``provider.start(goal)`` binds the target there, and the
    arm returns to the start pose. :meth:`choose_target` picks an object that no
    camera shows from the start pose (no detection within ``BIND_RADIUS_M``)
    but the look shows clearly (a detection with the confidence memory needs to
    create an object: one criterion for every variant), the seed's own object
    first; seeds without one are skipped (about 3 in 4).
    """

    def __init__(self, runner: SimulationRunner, eyes: PerceivedGoalProvider, **kwargs):
        super().__init__(runner, **kwargs)
        self.eyes = eyes  # perception used to choose targets (any mode; not bound)
        self.min_confidence = MemoryConfig().min_create_confidence
        self.provider: PerceivedGoalProvider | None = None

    def look(self) -> np.ndarray:
        """Move to the look pose; returns the joints it left."""
        q0 = self.runner.physics.arm_qpos()
        target = np.array([*LOOK_POINT, LOOK_HEIGHT])
        q = self.planner.ik.solve(q0, target, top_down_rotation(self.planner.nominal_yaw)).q
        move_arm_to(self.runner, q, duration=1.5)
        return q0

    def choose_target(self, seed: int) -> str | None:
        goal, _ = super().setup(seed, "pick")
        truth = self.runner.ground_truth()
        points = {o.id: np.array(object_truth(truth, o.id).position) for o in OBJECTS}
        order = [goal.object_id] + [o.id for o in OBJECTS if o.id != goal.object_id]
        self.eyes.observe(update_memory=False)
        hidden = [i for i in order if self.eyes.seen_near(points[i], BIND_RADIUS_M)[0] is None]
        self.look()
        self.eyes.observe(update_memory=False)
        clear = [
            np.asarray(o.centroid, dtype=float)
            for f in self.eyes.frames
            for o in f.objects
            if o.confidence >= self.min_confidence
        ]
        seen = [i for i in hidden if nearest(clear, points[i], BIND_RADIUS_M)[0] >= 0]
        return seen[0] if seen else None

    def setup(self, seed, skill, object_id=None, place_target=None, expert_optional=False):
        goal, steps = super().setup(seed, skill, object_id, place_target, expert_optional)
        q0 = self.look()
        if self.provider is not None:
            self.provider.start(goal)
        move_arm_to(self.runner, q0, duration=1.5)
        return goal, steps


__all__ = [
    "MODES",
    "VARIANTS",
    "OutOfViewPicks",
    "PerceivedGoalProvider",
    "ProviderCounters",
    "TargetLostError",
]
