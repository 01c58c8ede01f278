"""Scene set-up for the task suite: real physics, a scripted person, looks (ROS-free).

:class:`TaskScenes` resets the simulator to a seed, lets a scripted person
(``SimulationRunner.move_object``, a teleport) arrange what the task needs,
drives the arm over the table with the ``look`` skill
(:mod:`robot_memory.policy.look_skill`) calling ``observe()`` at every look
pose (the in-process memory renders and perceives there), and returns the arm
home. Each ``setup_<task>`` returns the instruction and the roles of the
objects; the ground-truth checks are in :mod:`robot_memory.tasks.suite`.

"Out of view at home": no point of an object's 4 cm circle (bottom and top)
projects into either camera's image at the home pose (occlusion ignored, so
"hidden" is safe). At home the wrist camera sees x < ~0.17 m and the front
camera y < ~0.05 m, so a hidden object stands in the far-left strip; the
person moves one there when the seed has none.

Objects the robot must pick are from ``GRASPABLE`` (per scene): on the
tabletop the four that fit the gripper at any yaw (the 8 cm block and the 9 cm
capsule only across their narrow side; docs/policy.md, Limits); in the
household cell every object whose words name it alone (the twins, two red mugs
and two yellow cans, stay in the scene as distractors; "the red mug" would not
say which). ``COLOUR_PAIRS``: household objects whose colour word only one
other object shares (``bin_colour`` there uses the cell's own colours; the
tabletop repaints one object instead).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import mujoco
import numpy as np

from robot_memory.expert.pick_place import PickPlacePlanner, place_point_for
from robot_memory.learning.skill_tasks import EXPERT_CONFIG, execute_steps
from robot_memory.policy.look_skill import LOOK_POINTS, look_target, look_trajectory
from robot_memory.policy.skill_goal import TABLE_PLACE_X, TABLE_PLACE_Y
from robot_memory.robot.ik import ArmIK
from robot_memory.robot.panda import ARM_JOINTS, HOME_ARM
from robot_memory.schemas import GroundTruth
from robot_memory.sim.cameras import MJ_TO_OPTICAL, mj_camera_name
from robot_memory.sim.runner import SimulationRunner
from robot_memory.sim.scene import CATALOGUE, COVERABLE, scene_objects
from robot_memory.sim.task import COVER_CLEARANCE, REACH

#: The household cell's same-colour, same-kind twins (their words name neither alone).
HOUSEHOLD_TWINS = ("red_mug_1", "red_mug_2", "yellow_can_1", "yellow_can_2")
#: Objects a task may ask the robot to pick, per scene (see module doc).
GRASPABLE: dict[str, tuple[str, ...]] = {
    "tabletop": ("red_cube", "blue_cylinder", "green_sphere", "purple_prism"),
    "household": tuple(o.id for o in scene_objects("household") if o.id not in HOUSEHOLD_TWINS),
}
#: Where the planner's table regions put things (goal_grounding.place_point).
REGION_POINTS = {"left": (0.0, 0.2), "right": (0.0, -0.3)}
#: Free room kept around a spot something will be put on [m].
SPOT_CLEARANCE = 0.12
#: Around the cover's footprint (corners 7.8 cm out + 4.5 cm of a neighbour) [m].
COVER_ROOM = 0.15
MAX_TAKEN_AWAY = 4  # objects a person may take out of a crowded cell per episode
HOLD_S = 0.3  # the arm settles this long at a look pose before observing


@dataclass(frozen=True)
class SpareObject:
    """An object on the table a person may take away, and where it stands."""

    id: str
    xy: np.ndarray


class SceneError(RuntimeError):
    """The scripted set-up could not make the scene its task needs."""


class TaskScenes:
    def __init__(
        self,
        runner: SimulationRunner,
        observe: Callable[[], object] | None = None,
        width: int = 320,
        height: int = 240,
        cameras: Sequence[str] = ("front", "wrist"),
    ) -> None:
        self.runner = runner
        self.observe = observe or (lambda: None)
        self.width, self.height, self.cameras = width, height, tuple(cameras)
        self.ik = ArmIK(runner.physics.model)
        self.expert = PickPlacePlanner(self.ik, EXPERT_CONFIG)
        self._saved_rgba: dict[int, np.ndarray] = {}
        self.rng = np.random.default_rng(0)
        self.scene = runner.task.scene
        self.make_room = self.scene != "tabletop"  # a crowded cell: take objects away
        self.taken_away: list[str] = []
        self.graspable = GRASPABLE[self.scene]
        self.coverable = COVERABLE[self.scene]

    # -- the arm ------------------------------------------------------------------
    def move_arm(self, q: np.ndarray, hold_s: float = HOLD_S) -> None:
        times, positions = look_trajectory(self.runner.physics.arm_qpos(), q)
        self.runner.command_trajectory(ARM_JOINTS, times.tolist(), positions.tolist())
        self.runner.run_for(float(times[-1]) + hold_s)

    def look_at(self, xy: Sequence[float], observe: bool = True) -> None:
        q = look_target(self.ik, self.runner.physics.arm_qpos(), xy)
        self.move_arm(q)
        if observe:
            self.observe()

    def look_over_table(self, points: Sequence[Sequence[float]] = LOOK_POINTS) -> None:
        for xy in points:
            self.look_at(xy)

    def go_home(self, observe: bool = True) -> None:
        self.move_arm(np.asarray(HOME_ARM))
        if observe:
            self.observe()

    # -- what the cameras see at home -------------------------------------------------
    def _home_views(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(position, rotation optical->world, K) of each camera with the arm at home."""
        model = self.runner.physics.model
        data = mujoco.MjData(model)
        data.qpos[:] = self.runner.physics.data.qpos
        for i, name in enumerate(ARM_JOINTS):
            data.qpos[model.jnt_qposadr[model.joint(name).id]] = HOME_ARM[i]
        mujoco.mj_kinematics(model, data)
        mujoco.mj_comPos(model, data)
        mujoco.mj_camlight(model, data)  # camera poses (mj_kinematics leaves them)
        views = []
        for cam in self.cameras:
            cid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, mj_camera_name(cam))
            rot = data.cam_xmat[cid].reshape(3, 3) @ MJ_TO_OPTICAL
            f = 0.5 * self.height / np.tan(np.radians(model.cam_fovy[cid]) / 2.0)
            k = np.array([[f, 0, (self.width - 1) / 2], [0, f, (self.height - 1) / 2], [0, 0, 1]])
            views.append((data.cam_xpos[cid].copy(), rot, k))
        return views

    def hidden_at_home(self, xy: Sequence[float], radius: float = 0.04) -> bool:
        """No camera at the home pose sees any point of the object at ``xy``."""
        angles = np.linspace(0, 2 * np.pi, 8, endpoint=False)
        ring = np.stack([np.cos(angles), np.sin(angles)], axis=1) * radius + np.asarray(xy)[:2]
        pts = [np.array([x, y, z]) for x, y in [*ring, np.asarray(xy)[:2]] for z in (0.0, 0.06)]
        for pos, rot, k in self._home_views():
            for p in pts:
                c = rot.T @ (p - pos)
                if c[2] <= 1e-6:
                    continue
                u, v = (k @ c)[:2] / c[2]
                if 0 <= u < self.width and 0 <= v < self.height:
                    return False
        return True

    # -- the scripted person ----------------------------------------------------------
    def truth(self) -> GroundTruth:
        return self.runner.ground_truth()

    def xy(self, object_id: str) -> np.ndarray:
        return np.array(self.truth().get(object_id).position[:2])

    def free_spots(
        self,
        ignore: Sequence[str] = (),
        clearance: float = SPOT_CLEARANCE,
        box: tuple[tuple[float, float], tuple[float, float]] = (TABLE_PLACE_X, TABLE_PLACE_Y),
        accept: Callable[[np.ndarray], bool] = lambda xy: True,
        avoid: Sequence[Sequence[float]] = (),
        step: float = 0.02,
    ) -> list[np.ndarray]:
        """Table spots in ``box`` within reach, off the bin and the cover (unless
        ignored), ``clearance`` from every object not in ``ignore`` and from the
        points in ``avoid``."""
        gt = self.truth()
        base = np.array(self.runner.physics.body_pose("panda_link0")[0][:2])
        bin_xy = np.array(gt.get("bin").position[:2])
        bin_half = np.array(CATALOGUE["bin"].size[:2]) / 2 + 0.06
        keep = [np.array(o.position[:2]) for o in gt.objects if o.kind == "object"]
        keep = [
            p
            for o, p in zip([o for o in gt.objects if o.kind == "object"], keep, strict=True)
            if o.id not in ignore
        ] + [np.asarray(a, dtype=float)[:2] for a in avoid]
        cover = None if "cover" in ignore else np.array(gt.get("cover").position[:2])
        out = []
        for x in np.arange(box[0][0], box[0][1] + 1e-9, step):
            for y in np.arange(box[1][0], box[1][1] + 1e-9, step):
                p = np.array([x, y])
                if not REACH[0] <= np.linalg.norm(p - base) <= REACH[1] - 0.03:
                    continue
                if np.all(np.abs(p - bin_xy) < bin_half):
                    continue
                if cover is not None and np.linalg.norm(p - cover) < COVER_CLEARANCE:
                    continue
                if any(np.linalg.norm(p - q) < clearance for q in keep):
                    continue
                if accept(p):
                    out.append(p)
        return out

    def move_to_free_spot(self, object_id: str, keep: Sequence[str] = (), **kw) -> np.ndarray:
        """Move ``object_id`` to a random free spot (``free_spots``' options). A
        crowded cell (``make_room``): while there is none, the person takes away
        the object nearest the middle of the search box that is not ``keep``,
        ignored or moved itself (at most ``MAX_TAKEN_AWAY`` per episode)."""
        ignore = (object_id, *kw.pop("ignore", ()))
        spots = self.free_spots(ignore=ignore, **kw)
        while not spots and self.make_room and len(self.taken_away) < MAX_TAKEN_AWAY:
            box = kw.get("box", (TABLE_PLACE_X, TABLE_PLACE_Y))
            middle = np.array([np.mean(box[0]), np.mean(box[1])])
            spare = self._spare(keep=(*ignore, *keep))
            if not spare:
                break
            self._take_away(min(spare, key=lambda o: float(np.linalg.norm(o.xy - middle))))
            spots = self.free_spots(ignore=ignore, **kw)
        if not spots:
            raise SceneError(f"no free spot for {object_id}")
        xy = spots[int(self.rng.integers(len(spots)))]
        self.runner.move_object(object_id, xy)
        return xy

    # -- making room on a crowded table ------------------------------------------------
    def _object_ids(self) -> tuple[str, ...]:
        return tuple(o.id for o in self.truth().objects if o.kind == "object")

    def _spare(self, keep: Sequence[str]) -> list[SpareObject]:
        """Objects on the table a person may take away: not ``keep``, not taken."""
        return [
            SpareObject(o.id, np.array(o.position[:2]))
            for o in self.truth().objects
            if o.kind == "object"
            and o.id not in keep
            and o.id not in self.taken_away
            and o.support == "table"
        ]

    def _take_away(self, spare: SpareObject) -> None:
        self.runner.take_away(spare.id, slot=len(self.taken_away))
        self.taken_away.append(spare.id)

    def clear_around(self, point: Sequence[float], radius: float, keep: Sequence[str] = ()) -> None:
        """Move every object (but ``keep``) within ``radius`` of ``point`` elsewhere."""
        for o in self.truth().objects:
            if o.kind != "object" or o.id in keep:
                continue
            if np.linalg.norm(np.subtract(o.position[:2], point[:2])) < radius:
                self.move_to_free_spot(
                    o.id, keep=keep, avoid=[point], clearance=max(radius, SPOT_CLEARANCE)
                )

    def ensure_hidden(self, candidates: Sequence[str] = ()) -> str:
        """An object of ``candidates`` (default: the graspable ones) no camera
        sees at home: one already there (chosen by the seed), else one the
        person moves to a hidden free spot."""
        candidates = tuple(candidates) or self.graspable
        hidden = [c for c in candidates if self.hidden_at_home(self.xy(c))]
        if hidden:
            return str(hidden[int(self.rng.integers(len(hidden)))])
        target = str(candidates[int(self.rng.integers(len(candidates)))])
        spots = self.free_spots(ignore=(target,), clearance=0.11, accept=self.hidden_at_home)
        if not spots:  # the hidden strip is taken by objects the robot need not pick
            for o in self.truth().objects:
                if o.kind == "object" and o.id != target and self.hidden_at_home(o.position[:2]):
                    self.move_to_free_spot(o.id, accept=lambda p: not self.hidden_at_home(p))
            spots = self.free_spots(ignore=(target,), clearance=0.11, accept=self.hidden_at_home)
        if not spots and self.make_room:  # a crowded cell: clear the hidden strip
            strip = self.free_spots(
                ignore=self._object_ids(), clearance=0.0, accept=self.hidden_at_home
            )
            while not spots and strip and len(self.taken_away) < MAX_TAKEN_AWAY:
                spare = self._spare(keep=(target,))
                if not spare:
                    break
                self._take_away(
                    min(spare, key=lambda o: min(np.linalg.norm(o.xy - p) for p in strip))
                )
                spots = self.free_spots(
                    ignore=(target,), clearance=0.11, accept=self.hidden_at_home
                )
        if not spots:
            raise SceneError("no free spot out of view at home")
        self.runner.move_object(target, spots[int(self.rng.integers(len(spots)))])
        return target

    def recolour(self, object_id: str, rgba: Sequence[float]) -> None:
        """Paint ``object_id``'s geoms ``rgba`` until :meth:`restore_colours`."""
        model = self.runner.physics.model
        body = model.body(object_id).id
        for g in np.flatnonzero(model.geom_bodyid == body):
            if model.geom_group[g] < 3:
                self._saved_rgba.setdefault(int(g), model.geom_rgba[g].copy())
                model.geom_rgba[g] = rgba

    def rgba(self, object_id: str) -> np.ndarray:
        model = self.runner.physics.model
        body = model.body(object_id).id
        return model.geom_rgba[np.flatnonzero(model.geom_bodyid == body)[0]].copy()

    def restore_colours(self) -> None:
        model = self.runner.physics.model
        for g, rgba in self._saved_rgba.items():
            model.geom_rgba[g] = rgba
        self._saved_rgba.clear()

    def expert_to_bin(self, object_id: str) -> bool:
        """The scripted expert puts ``object_id`` in the bin (no observing)."""
        gt = self.truth()
        steps = self.expert.plan(
            self.runner.physics.arm_qpos(), gt.get(object_id), place_point_for(gt.get("bin"))
        )
        execute_steps(self.runner, steps, settle_s=0.1)
        self.runner.run_for(0.3)
        return self.runner.task.in_bin(self.runner.physics, object_id)

    def reset(self, seed: int, salt: int) -> None:
        """New scene for ``seed``; ``salt`` separates the tasks' random choices."""
        self.restore_colours()
        self.runner.reset(seed, restart_clock=True)
        self.taken_away = []
        self.rng = np.random.default_rng([seed, salt])


__all__ = ["GRASPABLE", "REGION_POINTS", "SceneError", "TaskScenes"]
