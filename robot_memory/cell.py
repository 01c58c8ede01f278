"""The work cell as perception and memory see it: table, workspace, robot
base, fixtures to ignore and named places (ROS-free).

Loaded from a JSON file such as ``config/cell_tabletop.json``; on hardware,
write one for your cell (docs/memory.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robot_memory.paths import config_path


class CellConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Box:
    """Axis-aligned box in the world frame."""

    id: str
    bbox_min: np.ndarray
    bbox_max: np.ndarray

    def contains(self, points: np.ndarray, margin: float = 0.0) -> np.ndarray:
        pts = np.atleast_2d(points)
        return np.all((pts >= self.bbox_min - margin) & (pts <= self.bbox_max + margin), axis=1)

    @property
    def center(self) -> np.ndarray:
        return (self.bbox_min + self.bbox_max) / 2.0


@dataclass(frozen=True)
class Place(Box):
    kind: str = "region"  # "container", "table_region", ...
    label: str = ""


@dataclass(frozen=True)
class CellConfig:
    name: str
    table_height: float
    table: Box
    workspace: Box
    robot_base_position: np.ndarray
    robot_base_quaternion: np.ndarray  # w, x, y, z
    fixtures: tuple[Box, ...]
    places: tuple[Place, ...]

    def place(self, place_id: str) -> Place:
        for p in self.places:
            if p.id == place_id:
                return p
        raise KeyError(f"no place {place_id!r}; the cell has {[p.id for p in self.places]}")


def _box(d: dict, what: str, cls: type[Box] = Box, **extra: object) -> Box:
    try:
        lo = np.asarray(d["bbox_min"], dtype=float)
        hi = np.asarray(d["bbox_max"], dtype=float)
    except (KeyError, TypeError, ValueError) as exc:
        raise CellConfigError(f"{what}: needs bbox_min and bbox_max as 3 numbers") from exc
    if lo.shape != (3,) or hi.shape != (3,) or np.any(hi < lo) or not np.all(np.isfinite(lo)):
        raise CellConfigError(f"{what}: bbox_min must be 3 finite numbers <= bbox_max")
    return cls(id=str(d.get("id", what)), bbox_min=lo, bbox_max=hi, **extra)  # type: ignore[arg-type]


def load_cell(path: str | Path | None = None) -> CellConfig:
    """Load a cell file; ``None`` means the shipped tabletop cell."""
    path = Path(path) if path else config_path("cell_tabletop.json")
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CellConfigError(f"cannot read cell file {path}: {exc}") from exc
    try:
        base = data["robot_base"]
        places = tuple(
            _box(p, f"places[{i}]", Place, kind=p.get("kind", "region"), label=p.get("label", ""))
            for i, p in enumerate(data.get("places", []))
        )
        return CellConfig(
            name=str(data.get("name", path.stem)),
            table_height=float(data["table"]["height"]),
            table=_box(data["table"], "table"),
            workspace=_box(data["workspace"], "workspace"),
            robot_base_position=np.asarray(base["position"], dtype=float),
            robot_base_quaternion=np.asarray(base.get("quaternion", [1, 0, 0, 0]), dtype=float),
            fixtures=tuple(
                _box(f, f"fixtures[{i}]") for i, f in enumerate(data.get("fixtures", []))
            ),
            places=places,  # type: ignore[arg-type]
        )
    except KeyError as exc:
        raise CellConfigError(f"cell file {path} lacks {exc}") from exc
