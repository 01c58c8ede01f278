"""The tabletop episode: randomized placements and ground truth (dm_control-style Task)."""

from __future__ import annotations

import mujoco
import numpy as np

from robot_memory.schemas import GroundTruth, GroundTruthObject
from robot_memory.sim.household_layout import HouseholdLayout
from robot_memory.sim.physics import CellPhysics
from robot_memory.sim.scene import CATALOGUE, PLACES, scene_catalogue, scene_objects

#: Where objects may be placed (world frame, on the table): this box, cut to
#: where top-down grasps are comfortably reachable from the Panda's base.
SPAWN_X = (-0.15, 0.3)
SPAWN_Y = (-0.32, 0.32)
REACH = (0.35, 0.77)  # distance of an object's centre from panda_link0 [m]
MIN_SEPARATION = 0.11  # between object centres [m]
COVER_CLEARANCE = 0.13  # between an object and the cover [m]
BIN_CLEARANCE = 0.06  # between an object's centre and the bin's outer walls [m]
BIN_XY_MARGIN = 0.015  # an object's centre this far inside the walls counts as in the bin
SETTLE_S = 0.3
YAW_SYMMETRIC = {"sphere"}


class TabletopTask:
    """Episodes of ``scene``: ``tabletop`` (six primitives, spread apart) or
    ``household`` (14 household objects, some touching, the lights varied;
    :class:`~robot_memory.sim.household_layout.HouseholdLayout`)."""

    def __init__(self, settle_s: float = SETTLE_S, scene: str = "tabletop") -> None:
        self.settle_s = settle_s
        self.scene = scene
        self.objects = scene_objects(scene)
        self.catalogue = scene_catalogue(scene)
        self._household = HouseholdLayout(self.objects) if scene == "household" else None
        self._lights: tuple[np.ndarray, np.ndarray] | None = None

    def initialize_episode(self, physics: CellPhysics, seed: int) -> None:
        """Arm at home; objects at random spots on the table; everything
        settled. The same seed always gives the same episode."""
        rng = np.random.default_rng(seed)
        physics.reset_to_keyframe("home")
        model, data = physics.model, physics.data
        keep_out = {
            name: physics.body_pose(name)[0][:2] for name in ("cover", "bin", "panda_link0")
        }
        if self._household is not None:
            poses = self._household.sample(rng, keep_out)
            self._vary_lights(model, rng)
        else:
            poses, placed = {}, []
            for item in self.objects:
                xy = self._sample_xy(rng, placed, keep_out)
                placed.append(xy)
                yaw = 0.0 if item.shape in YAW_SYMMETRIC else rng.uniform(-np.pi, np.pi)
                poses[item.id] = (xy, yaw)
        for object_id, (xy, yaw) in poses.items():
            adr = model.jnt_qposadr[model.joint(object_id).id]
            z0 = data.qpos[adr + 2]  # keep the default resting height
            data.qpos[adr : adr + 3] = [xy[0], xy[1], z0]
            rest = data.qpos[adr + 3 : adr + 7].copy()
            spin = np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])
            quat = np.zeros(4)
            mujoco.mju_mulQuat(quat, spin, rest)
            data.qpos[adr + 3 : adr + 7] = quat
        data.qvel[:] = 0.0
        physics.forward()
        physics.step(round(self.settle_s / physics.timestep))

    def _vary_lights(self, model: mujoco.MjModel, rng: np.random.Generator) -> None:
        """Each episode its own lighting: the lights' brightness scaled by
        0.55-1.2 and their positions moved up to 0.3 m sideways."""
        if self._lights is None:
            self._lights = (model.light_diffuse.copy(), model.light_pos.copy())
        diffuse, pos = self._lights
        model.light_diffuse[:] = diffuse * rng.uniform(0.55, 1.2, size=(len(diffuse), 1))
        model.light_pos[:] = pos + np.column_stack(
            [rng.uniform(-0.3, 0.3, size=(len(pos), 2)), np.zeros(len(pos))]
        )

    @staticmethod
    def _sample_xy(
        rng: np.random.Generator, placed: list[np.ndarray], keep_out: dict[str, np.ndarray]
    ) -> np.ndarray:
        bin_half = np.array(CATALOGUE["bin"].size[:2]) / 2.0 + BIN_CLEARANCE
        for _ in range(1000):
            xy = np.array([rng.uniform(*SPAWN_X), rng.uniform(*SPAWN_Y)])
            if not REACH[0] <= np.linalg.norm(xy - keep_out["panda_link0"]) <= REACH[1]:
                continue
            if np.all(np.abs(xy - keep_out["bin"]) < bin_half):
                continue
            if np.linalg.norm(xy - keep_out["cover"]) < COVER_CLEARANCE:
                continue
            if all(np.linalg.norm(xy - p) >= MIN_SEPARATION for p in placed):
                return xy
        raise RuntimeError("could not place objects without overlap; widen the spawn area")

    # -- ground truth ---------------------------------------------------------
    def in_bin(self, physics: CellPhysics, object_id: str) -> bool:
        pos = physics.body_pose(object_id)[0]
        bin_pos = physics.body_pose("bin")[0]
        half = np.array(CATALOGUE["bin"].size) / 2.0
        inside_xy = np.all(np.abs(pos[:2] - bin_pos[:2]) < half[:2] - BIN_XY_MARGIN)
        return bool(inside_xy and pos[2] < bin_pos[2] + half[2])

    def covered(self, physics: CellPhysics, object_id: str) -> bool:
        """``object_id`` is under the cover (inside its walls, below its top)."""
        pos = physics.body_pose(object_id)[0]
        cover_pos, cover_quat = physics.body_pose("cover")
        rot = np.zeros(9)
        mujoco.mju_quat2Mat(rot, cover_quat)
        local = rot.reshape(3, 3).T @ (pos - cover_pos)
        half = np.array(CATALOGUE["cover"].size) / 2.0
        return bool(np.all(np.abs(local) < half))

    def object_in_place(self, physics: CellPhysics, object_id: str, place_id: str) -> bool:
        """In the bin, under the cover, or resting on ``place_id`` (table or an object)."""
        if object_id == place_id:
            return False
        if place_id == "bin":
            return self.in_bin(physics, object_id)
        if place_id == "cover" and object_id != "cover":
            return self.covered(physics, object_id)
        return self._support(physics, object_id) == place_id

    def _contacts(self, physics: CellPhysics, body: int) -> set[int]:
        """Bodies in contact with ``body``."""
        model, data = physics.model, physics.data
        touching = set()
        for c in data.contact[: data.ncon]:
            b1, b2 = model.geom_bodyid[c.geom1], model.geom_bodyid[c.geom2]
            if b1 == body:
                touching.add(int(b2))
            elif b2 == body:
                touching.add(int(b1))
        return touching

    def _support(self, physics: CellPhysics, object_id: str) -> str | None:
        if object_id == "table":
            return None
        if object_id == "bin":
            return "table"  # fixed to the table top
        if object_id != "cover" and self.in_bin(physics, object_id):
            return "bin"
        model = physics.model
        body = model.body(object_id).id
        z = physics.data.xpos[body][2]
        below = []
        for other in self._contacts(physics, body):
            name = model.body(other).name
            if name == "table":
                return "table"
            if name in self.catalogue and physics.data.xpos[other][2] < z:
                below.append(name)
        return below[0] if below else None

    def _grasped(self, physics: CellPhysics, object_id: str) -> bool:
        touching = self._contacts(physics, physics.model.body(object_id).id)
        fingers = {physics.model.body(f).id for f in ("panda_leftfinger", "panda_rightfinger")}
        return fingers <= touching

    def ground_truth(self, physics: CellPhysics, episode: int, seed: int) -> GroundTruth:
        items = []
        for info in self.objects + PLACES:
            pos, quat = physics.body_pose(info.id)
            grasp = None
            if any(info.grasp_offset):
                rot = physics.data.xmat[physics.model.body(info.id).id].reshape(3, 3)
                grasp = tuple(float(v) for v in np.asarray(pos) + rot @ info.grasp_offset)
            items.append(
                GroundTruthObject(
                    id=info.id,
                    kind=info.kind,  # type: ignore[arg-type]
                    shape=info.shape,
                    color=info.color,
                    label=info.label,
                    position=tuple(float(v) for v in pos),
                    quaternion=tuple(float(v) for v in quat),
                    size=info.size,
                    grasp_point=grasp,
                    support=self._support(physics, info.id),
                    grasped=info.kind == "object" and self._grasped(physics, info.id),
                )
            )
        return GroundTruth(
            stamp=physics.time, episode=episode, seed=seed, scene=self.scene, objects=items
        )
