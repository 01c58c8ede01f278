"""Household objects for the realistic cell, authored here (ROS-free).

Every object is generated with trimesh from a few numbers (profiles of
revolution, boxes, a torus handle), so nothing is downloaded and the same
meshes come out on every machine. Each object has

* visual geometry: the detailed meshes (open mug and bowl interiors, a
  bottle's shoulder and cap, a can's rim and lid, a screwdriver's handle and
  shaft), several colours and textures per object, drawn by the cameras;
* collision geometry: a few primitives of the same outer size (physics does
  not depend on the meshes and stays as stable as the primitive cell).

The body origin is the centre of the object's bounding box at rest, like the
primitives of ``sim/cell/tabletop.xml``; ``size`` is that box's extent.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import mujoco
import numpy as np
import trimesh
from trimesh import creation

#: Categories of the household objects, the words a person and the labeller use.
CATEGORIES = ("mug", "bowl", "bottle", "can", "box", "screwdriver")

#: Object colours (rgba) by colour word; darker and lighter variants of one
#: word are what a real object set has.
PALETTE = {
    "red": (0.8, 0.12, 0.1, 1.0),
    "blue": (0.12, 0.3, 0.8, 1.0),
    "green": (0.15, 0.6, 0.2, 1.0),
    "yellow": (0.95, 0.8, 0.1, 1.0),
    "orange": (0.95, 0.36, 0.05, 1.0),  # hue 11 of 180: clear of yellow under warm light
    "white": (0.92, 0.92, 0.9, 1.0),
    "black": (0.06, 0.06, 0.07, 1.0),
}
METAL = (0.62, 0.63, 0.66, 1.0)
#: A mug's box centre lies this far from its cup axis, towards the handle [m].
MUG_HANDLE_SHIFT = 0.0125
#: A screwdriver's handle is this fraction of its length.
HANDLE_FRACTION = 0.55


def _screwdriver_length(variant: int) -> float:
    return 0.16 if variant == 0 else 0.15


@dataclass(frozen=True)
class HouseholdObject:
    """One object: its id (body and free joint name), category and colour word."""

    id: str
    category: str
    color: str
    variant: int = 0  # picks a size/texture variant where a category has several

    def parts(self) -> tuple[list[VisualPart], list[CollisionPart], tuple[float, float, float]]:
        return _object_parts(self.category, self.color, self.variant)

    def grasp_offset(self) -> tuple[float, float, float]:
        """Where a top-down grasp should close, in the body frame [m]: a mug's
        cup axis (not the box centre, 1.25 cm towards the handle), the middle of
        a screwdriver's handle (not the handle-shaft junction); the box centre
        for the others."""
        if self.category == "mug":
            return (-MUG_HANDLE_SHIFT, 0.0, 0.0)
        if self.category == "screwdriver":
            length = _screwdriver_length(self.variant)
            return (-length / 2 + HANDLE_FRACTION * length / 2, 0.0, 0.0)
        return (0.0, 0.0, 0.0)


@dataclass(frozen=True)
class VisualPart:
    name: str
    vertices: np.ndarray  # (V, 3) float in the body frame [m]
    faces: np.ndarray  # (F, 3) int
    rgba: tuple[float, float, float, float]
    texture: str = ""  # "" or "checker": a builtin texture instead of plain rgba


@dataclass(frozen=True)
class CollisionPart:
    kind: str  # "cylinder" or "box"
    size: tuple[float, ...]  # MuJoCo geom size
    pos: tuple[float, float, float]
    mass: float


#: The realistic cell's object set: 14 objects, six categories, several of the
#: same colour and kind (two red mugs, two yellow cans) and same-colour
#: distractors of other kinds (a red can beside the red mugs).
HOUSEHOLD_OBJECTS: tuple[HouseholdObject, ...] = (
    HouseholdObject("red_mug_1", "mug", "red"),
    HouseholdObject("red_mug_2", "mug", "red"),
    HouseholdObject("blue_mug", "mug", "blue"),
    HouseholdObject("white_bowl", "bowl", "white"),
    HouseholdObject("green_bowl", "bowl", "green"),
    HouseholdObject("green_bottle", "bottle", "green"),
    HouseholdObject("blue_bottle", "bottle", "blue", variant=1),
    HouseholdObject("red_can", "can", "red"),
    HouseholdObject("yellow_can_1", "can", "yellow"),
    HouseholdObject("yellow_can_2", "can", "yellow"),
    HouseholdObject("orange_box", "box", "orange"),
    HouseholdObject("blue_box", "box", "blue", variant=1),
    HouseholdObject("black_screwdriver", "screwdriver", "black"),
    HouseholdObject("red_screwdriver", "screwdriver", "red", variant=1),
)


# -- meshes -------------------------------------------------------------------
def _revolve(profile: list[tuple[float, float]], sections: int = 48) -> trimesh.Trimesh:
    """Surface of revolution about z of an (r, z) polyline."""
    return creation.revolve(np.asarray(profile, dtype=float), sections=sections)


def _arc_tube(major: float, minor: float, start: float, stop: float, n: int = 24, m: int = 12):
    """A tube of radius ``minor`` along an arc of radius ``major`` in the xz
    plane (angles from +x towards +z), open at its ends: a mug's handle."""
    phi = np.linspace(start, stop, n)
    theta = np.linspace(0.0, 2 * np.pi, m, endpoint=False)
    p, t = np.meshgrid(phi, theta, indexing="ij")
    ring = major + minor * np.cos(t)
    verts = np.stack([ring * np.cos(p), minor * np.sin(t), ring * np.sin(p)], axis=-1)
    i, j = np.meshgrid(np.arange(n - 1), np.arange(m), indexing="ij")
    a, b = i * m + j, i * m + (j + 1) % m
    c, d = a + m, b + m
    faces = np.concatenate([np.stack([a, c, b], -1), np.stack([b, c, d], -1)]).reshape(-1, 3)
    return trimesh.Trimesh(verts.reshape(-1, 3), faces, process=False)


def _mug(radius: float, height: float) -> tuple[trimesh.Trimesh, trimesh.Trimesh]:
    wall, floor = 0.004, 0.007
    h = height / 2
    cup = _revolve(
        [(0, -h), (radius, -h), (radius, h), (radius - wall, h), (radius - wall, -h + floor),
         (0, -h + floor)]
    )  # fmt: skip
    handle = _arc_tube(major=0.021, minor=0.0055, start=-np.pi / 2, stop=np.pi / 2)
    handle.apply_translation([radius - 0.004, 0.0, 0.004])
    return cup, handle


def _bowl(radius: float, height: float) -> trimesh.Trimesh:
    wall, h = 0.004, height / 2
    foot = 0.55 * radius
    angles = np.linspace(0.0, np.pi / 2, 10)
    outer = [(foot + (radius - foot) * np.sin(a), -h + height * (1 - np.cos(a))) for a in angles]
    inner = [(r - wall, z) for r, z in reversed(outer)]
    inner[-1] = (inner[-1][0], -h + 0.006)
    return _revolve([(0, -h), *outer, *inner, (0, -h + 0.006)])


def _bottle(radius: float, height: float) -> tuple[trimesh.Trimesh, trimesh.Trimesh]:
    h, neck, cap_h = height / 2, 0.012, 0.016
    shoulder = h - 0.05
    body = _revolve(
        [(0, -h), (radius, -h), (radius, shoulder), (neck + 0.002, shoulder + 0.03),
         (neck, h - cap_h), (0, h - cap_h)]
    )  # fmt: skip
    cap = creation.cylinder(radius=neck + 0.0015, height=cap_h, sections=24)
    cap.apply_translation([0, 0, h - cap_h / 2])
    return body, cap


def _can(radius: float, height: float) -> tuple[trimesh.Trimesh, trimesh.Trimesh]:
    """Body up to a metal lid (inset from the rim, as on a real can)."""
    lid_h = 0.002
    body = creation.cylinder(radius=radius, height=height - lid_h, sections=40)
    body.apply_translation([0, 0, -lid_h / 2])
    lid = creation.cylinder(radius=radius - 0.004, height=lid_h, sections=40)
    lid.apply_translation([0, 0, height / 2 - lid_h / 2])
    return body, lid


def _screwdriver(length: float, handle_r: float) -> tuple[trimesh.Trimesh, trimesh.Trimesh]:
    handle_len = HANDLE_FRACTION * length
    handle = creation.capsule(height=handle_len - 2 * handle_r, radius=handle_r, count=[16, 16])
    shaft = creation.cylinder(radius=0.0035, height=length - handle_len, sections=16)
    down = trimesh.transformations.rotation_matrix(np.pi / 2, [0, 1, 0])
    handle.apply_transform(down)
    x0 = -length / 2
    handle.apply_translation([x0 + handle_len / 2, 0, 0])
    # The shaft leaves the handle on its axis and slopes down to the tip, which
    # rests on the table (a screwdriver lying down touches it at handle and tip).
    shaft_len, shaft_r = length - handle_len, 0.0035
    slope = np.arcsin((handle_r - shaft_r) / shaft_len)
    shaft.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2 - slope, [0, 1, 0]))
    shaft.apply_translation(
        [x0 + handle_len + np.cos(slope) * shaft_len / 2, 0, -np.sin(slope) * shaft_len / 2]
    )
    return handle, shaft


def _part(name: str, mesh: trimesh.Trimesh, rgba, texture: str = "") -> VisualPart:
    return VisualPart(
        name, np.asarray(mesh.vertices, float), np.asarray(mesh.faces, int), tuple(rgba), texture
    )


@lru_cache(maxsize=32)
def _object_parts(category: str, color: str, variant: int):
    rgba = PALETTE[color]
    if category == "mug":
        r, hgt = 0.032, 0.082
        cup, handle = _mug(r, hgt)
        visual = [_part("body", cup, rgba), _part("handle", handle, rgba)]
        collision = [
            CollisionPart("cylinder", (r, hgt / 2), (0, 0, 0), 0.12),
            CollisionPart("box", (0.011, 0.0055, 0.02), (r + 0.011, 0, 0.004), 0.02),
        ]
        size = (2 * r + 0.025, 2 * r, hgt)
        # the bbox centre lies between the cup's axis and the handle's tip
        return _shift(visual, collision, size, MUG_HANDLE_SHIFT)
    if category == "bowl":
        r, hgt = 0.036, 0.04
        visual = [_part("body", _bowl(r, hgt), rgba)]
        collision = [CollisionPart("cylinder", (r, hgt / 2), (0, 0, 0), 0.08)]
        return visual, collision, (2 * r, 2 * r, hgt)
    if category == "bottle":
        r, hgt = (0.026, 0.13) if variant == 0 else (0.024, 0.12)
        body, cap = _bottle(r, hgt)
        visual = [_part("body", body, rgba), _part("cap", cap, PALETTE["white"])]
        collision = [
            CollisionPart("cylinder", (r, 0.04), (0, 0, -hgt / 2 + 0.04), 0.12),
            CollisionPart("cylinder", (0.6 * r, hgt / 2 - 0.04), (0, 0, 0.04), 0.03),
        ]
        return visual, collision, (2 * r, 2 * r, hgt)
    if category == "can":
        r, hgt = 0.03, 0.085
        body, top = _can(r, hgt)
        band = creation.cylinder(radius=r + 0.0006, height=0.022, sections=40)
        band.apply_translation([0, 0, -0.006])
        label = PALETTE["white"] if color != "white" else PALETTE["blue"]
        visual = [_part("body", body, rgba), _part("label", band, label), _part("lid", top, METAL)]
        collision = [CollisionPart("cylinder", (r, hgt / 2), (0, 0, 0), 0.12)]
        return visual, collision, (2 * r, 2 * r, hgt)
    if category == "box":
        ext = (0.05, 0.075, 0.045) if variant == 0 else (0.058, 0.09, 0.06)
        box = creation.box(extents=ext)
        visual = [_part("body", box, rgba, "checker" if variant else "")]
        half = tuple(e / 2 for e in ext)
        collision = [CollisionPart("box", half, (0, 0, 0), 0.1)]
        return visual, collision, ext
    if category == "screwdriver":
        length, hr = _screwdriver_length(variant), (0.013 if variant == 0 else 0.012)
        handle, shaft = _screwdriver(length, hr)
        visual = [_part("handle", handle, rgba), _part("shaft", shaft, METAL)]
        handle_len = HANDLE_FRACTION * length
        collision = [
            CollisionPart(
                "box", (handle_len / 2, hr, hr), (-length / 2 + handle_len / 2, 0, 0), 0.05
            ),
            CollisionPart(
                "box",
                ((length - handle_len) / 2, 0.0035, 0.0035),
                (length / 2 - (length - handle_len) / 2, 0, -hr + 0.0035),
                0.01,
            ),
        ]
        return visual, collision, (length, 2 * hr, 2 * hr)
    raise ValueError(f"unknown category {category!r}; categories: {CATEGORIES}")


def _shift(visual, collision, size, dx: float):
    """Move every part by -dx along x so the body origin is the bbox centre."""
    moved = [
        VisualPart(p.name, p.vertices - [dx, 0, 0], p.faces, p.rgba, p.texture) for p in visual
    ]
    cols = [
        CollisionPart(c.kind, c.size, (c.pos[0] - dx, c.pos[1], c.pos[2]), c.mass)
        for c in collision
    ]
    return moved, cols, size


# -- MjSpec -------------------------------------------------------------------
def add_to_spec(spec: mujoco.MjSpec, objects: tuple[HouseholdObject, ...] = HOUSEHOLD_OBJECTS):
    """Add ``objects`` as free bodies to ``spec`` (parked in a row off to the side
    of the table; the task places them)."""
    textures: set[str] = set()
    for i, obj in enumerate(objects):
        visual, collision, size = obj.parts()
        body = spec.worldbody.add_body(name=obj.id, pos=[-0.5 + 0.08 * i, -0.6, size[2] / 2])
        body.add_freejoint(name=obj.id)
        for part in visual:
            mesh_name = f"{obj.id}_{part.name}"
            spec.add_mesh(
                name=mesh_name,
                uservert=part.vertices.reshape(-1).tolist(),
                userface=part.faces.reshape(-1).tolist(),
            )
            geom = body.add_geom(
                type=mujoco.mjtGeom.mjGEOM_MESH,
                meshname=mesh_name,
                contype=0,
                conaffinity=0,
                group=1,
                density=0,
                rgba=list(part.rgba),
            )
            if part.texture:
                geom.material = _material(spec, textures, part.texture, part.rgba)
                geom.rgba = [1, 1, 1, 1]
        for col in collision:
            kind = (
                mujoco.mjtGeom.mjGEOM_CYLINDER
                if col.kind == "cylinder"
                else mujoco.mjtGeom.mjGEOM_BOX
            )
            body.add_geom(
                type=kind,
                size=list(col.size) + [0.0] * (3 - len(col.size)),
                pos=list(col.pos),
                mass=col.mass,
                condim=4,
                friction=[1.0, 0.02, 0.001],
                solref=[0.005, 1],
                group=3,  # collision only: hidden in renders
                rgba=[0, 0, 0, 0],
            )


def _material(spec: mujoco.MjSpec, done: set[str], texture: str, rgba) -> str:
    """A textured material: ``checker``, squares of the rgba and a lighter tone
    (a cube texture: it needs no texture coordinates on the mesh)."""
    name = f"{texture}_{'_'.join(f'{c:.2f}' for c in rgba[:3])}"
    if name in done:
        return name
    done.add(name)
    base = np.array(rgba[:3])
    if texture != "checker":
        raise ValueError(f"unknown texture {texture!r}")
    other = np.clip(base * 0.55 + 0.4, 0, 1)
    tex = spec.add_texture(
        name=name,
        type=mujoco.mjtTexture.mjTEXTURE_CUBE,
        builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER,
        rgb1=base.tolist(),
        rgb2=other.tolist(),
        width=64,
        height=64,
    )
    mat = spec.add_material(name=name, texrepeat=[3, 3])
    mat.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = tex.name
    return name
