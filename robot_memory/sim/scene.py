"""Build the simulated cell's MuJoCo model (ROS-free).

The MJCF lives in ``sim/``: ``sim/panda/panda.xml`` (kinematics, primitive
collision geometry, actuators) and ``sim/cell/<scene>.xml`` (table, objects,
places, static cameras). This module attaches the Panda at the scene's
``panda_base`` frame, adds the Panda's visual geometry and the ``home``
keyframe.

Visual geometry (``panda_visual``):

* ``"mesh"``: Franka's detailed visual meshes from the installed
  gymnasium-robotics package (~136k faces: nice pictures, slow rendering);
* ``"lowpoly"``: that package's low-poly collision meshes, drawn as visuals
  (fast, the right shape: the default for sensor cameras);
* ``"primitive"``: the collision primitives, drawn (works everywhere);
* ``"auto"``: ``lowpoly`` when the package is installed, else ``primitive``.

Collision geometry is always the primitives, so physics does not depend on the
option. Meshes are read from site-packages at load time, never copied or written.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import mujoco
import numpy as np

from robot_memory.paths import sim_path
from robot_memory.robot.panda import ARM_JOINTS, FINGER_JOINTS, HOME_ARM, HOME_GRIPPER_WIDTH
from robot_memory.sim.household import HOUSEHOLD_OBJECTS, add_to_spec

#: ``tabletop``: six coloured primitives (the easy setting); ``household``: the
#: same cell with 14 household objects (:mod:`robot_memory.sim.household`).
SCENES = ("tabletop", "household")
PANDA_VISUALS = ("auto", "mesh", "lowpoly", "primitive")
VISUAL_GROUP = 2  # the "visual" default class in sim/panda/panda.xml
PANDA_LINKS = tuple(f"panda_link{i}" for i in range(8)) + ("panda_hand",)
FINGERS = ("panda_leftfinger", "panda_rightfinger")


@dataclass(frozen=True)
class ItemInfo:
    """What the cell knows about an object or a place (ground truth metadata)."""

    id: str
    kind: str  # "object" or "place"
    shape: str
    color: str
    size: tuple[float, float, float]  # extent along the body axes [m]
    grasp_offset: tuple[float, float, float] = (0.0, 0.0, 0.0)  # grasp point, body frame [m]

    @property
    def label(self) -> str:
        return f"{self.color} {self.shape}".strip()


OBJECTS: tuple[ItemInfo, ...] = (
    ItemInfo("red_cube", "object", "cube", "red", (0.05, 0.05, 0.05)),
    ItemInfo("blue_cylinder", "object", "cylinder", "blue", (0.044, 0.044, 0.07)),
    ItemInfo("green_sphere", "object", "sphere", "green", (0.05, 0.05, 0.05)),
    ItemInfo("yellow_block", "object", "block", "yellow", (0.04, 0.08, 0.05)),
    ItemInfo("orange_capsule", "object", "capsule", "orange", (0.09, 0.04, 0.04)),
    ItemInfo("purple_prism", "object", "prism", "purple", (0.05, 0.0433, 0.05)),
)
PLACES: tuple[ItemInfo, ...] = (
    ItemInfo("bin", "place", "bin", "grey", (0.2, 0.2, 0.08)),
    ItemInfo("cover", "place", "cover", "white", (0.11, 0.11, 0.09)),
    ItemInfo("table", "place", "table", "brown", (1.2, 1.0, 0.04)),
)
CATALOGUE = {item.id: item for item in OBJECTS + PLACES}
HOUSEHOLD: tuple[ItemInfo, ...] = tuple(
    ItemInfo(o.id, "object", o.category, o.color, o.parts()[2], o.grasp_offset())
    for o in HOUSEHOLD_OBJECTS
)


#: Objects the cover (9 cm inside) fits over, per scene.
COVERABLE: dict[str, tuple[str, ...]] = {
    "tabletop": ("red_cube", "blue_cylinder", "green_sphere", "purple_prism"),
    "household": ("orange_box",),  # the bowls (7.2 cm) catch a wall on their rim
}


def scene_objects(scene: str) -> tuple[ItemInfo, ...]:
    """The graspable objects of ``scene``."""
    if scene == "household":
        return HOUSEHOLD
    if scene == "tabletop":
        return OBJECTS
    raise ValueError(f"unknown scene {scene!r}; scenes: {SCENES}")


def scene_catalogue(scene: str) -> dict[str, ItemInfo]:
    """Objects and places of ``scene`` by id."""
    return {item.id: item for item in scene_objects(scene) + PLACES}


def gymnasium_panda_meshes() -> Path | None:
    """Folder of Franka STL meshes shipped by gymnasium-robotics, if installed."""
    spec = importlib.util.find_spec("gymnasium_robotics")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations)))
    meshes = root / "envs/assets/kitchen_franka/franka_assets/meshes"
    return meshes if (meshes / "visual" / "link0.stl").is_file() else None


def resolve_panda_visual(option: str) -> str:
    if option not in PANDA_VISUALS:
        raise ValueError(f"panda_visual must be one of {PANDA_VISUALS}, got {option!r}")
    if option == "auto":
        return "lowpoly" if gymnasium_panda_meshes() is not None else "primitive"
    if option in ("mesh", "lowpoly") and gymnasium_panda_meshes() is None:
        raise ValueError(
            f"panda_visual={option!r} needs the gymnasium-robotics package (pip install "
            "gymnasium-robotics); use 'primitive' or 'auto' without it"
        )
    return option


def build_model(scene: str = "tabletop", panda_visual: str = "auto") -> mujoco.MjModel:
    """Compile ``scene`` with the Panda attached; raises ValueError on bad options."""
    return _build(scene, resolve_panda_visual(panda_visual))


@lru_cache(maxsize=8)
def _xml(scene: str) -> str:
    if scene not in SCENES:
        raise ValueError(f"unknown scene {scene!r}; scenes: {SCENES}")
    return sim_path("cell/tabletop.xml").read_text()


def _build(scene: str, visual: str) -> mujoco.MjModel:
    spec = mujoco.MjSpec.from_string(_xml(scene))
    if scene == "household":  # the same cell, the primitives swapped for household objects
        for item in OBJECTS:
            spec.delete(spec.body(item.id))
        add_to_spec(spec)
    panda = mujoco.MjSpec.from_file(str(sim_path("panda/panda.xml")))
    _add_visuals(panda, visual)
    spec.attach(panda, frame=spec.frame("panda_base"), prefix=ATTACH_PREFIX)
    _strip_prefix(spec)
    model = spec.compile()
    qpos = model.qpos0.copy()
    ctrl = np.zeros(model.nu)
    for name, q in zip(ARM_JOINTS, HOME_ARM, strict=True):
        qpos[model.jnt_qposadr[model.joint(name).id]] = q
        ctrl[model.actuator(name).id] = q
    for name in FINGER_JOINTS:
        qpos[model.jnt_qposadr[model.joint(name).id]] = HOME_GRIPPER_WIDTH / 2
        ctrl[model.actuator(name).id] = HOME_GRIPPER_WIDTH / 2
    spec.add_key(name="home", qpos=qpos.tolist(), ctrl=ctrl.tolist())
    return spec.compile()


ATTACH_PREFIX = "panda_attach/"


def _strip_prefix(spec: mujoco.MjSpec) -> None:
    """Give the attached Panda's elements their own names back (panda_joint1, ...)."""
    groups = (spec.bodies, spec.joints, spec.geoms, spec.sites, spec.cameras)
    for group in (*groups, spec.actuators, spec.meshes):
        for element in group:
            element.name = element.name.removeprefix(ATTACH_PREFIX)
    for actuator in spec.actuators:
        actuator.target = actuator.target.removeprefix(ATTACH_PREFIX)
    for geom in spec.geoms:
        geom.meshname = geom.meshname.removeprefix(ATTACH_PREFIX)
    for exclude in spec.excludes:
        exclude.bodyname1 = exclude.bodyname1.removeprefix(ATTACH_PREFIX)
        exclude.bodyname2 = exclude.bodyname2.removeprefix(ATTACH_PREFIX)


def _add_visuals(panda: mujoco.MjSpec, visual: str) -> None:
    white, dark = [0.93, 0.93, 0.93, 1.0], [0.22, 0.22, 0.24, 1.0]
    if visual == "primitive":
        for body_name in PANDA_LINKS + FINGERS:
            body = panda.body(body_name)
            rgba = dark if body_name in FINGERS + ("panda_hand", "panda_link7") else white
            for geom in list(body.geoms):
                g = body.add_geom(panda.find_default("visual"))
                g.type, g.size, g.pos, g.quat = geom.type, geom.size, geom.pos, geom.quat
                if geom.fromto is not None and not np.any(np.isnan(geom.fromto)):
                    g.fromto = geom.fromto
                g.rgba = rgba
        return
    folder = gymnasium_panda_meshes()
    assert folder is not None
    sub = "visual" if visual == "mesh" else "collision"
    for name in [f"link{i}" for i in range(8)] + ["hand", "finger"]:
        panda.add_mesh(name=f"panda_{name}_{sub}", file=str(folder / sub / f"{name}.stl"))
    meshes = {f"panda_link{i}": f"panda_link{i}_{sub}" for i in range(8)}
    meshes["panda_hand"] = f"panda_hand_{sub}"
    meshes.update({finger: f"panda_finger_{sub}" for finger in FINGERS})
    for body_name, mesh in meshes.items():
        g = panda.body(body_name).add_geom(panda.find_default("visual"))
        g.type, g.meshname = mujoco.mjtGeom.mjGEOM_MESH, mesh
        g.rgba = dark if body_name in FINGERS else white
