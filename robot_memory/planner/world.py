"""What the planner knows of the scene, and the two ports it acts through (ROS-free).

* :class:`World`: a read-only view of one ``/memory/scene_graph`` snapshot
  (objects by id, places by id, relations), with the few spatial tests the
  planner needs (is X in the bin, is X near that point).
* :class:`MemoryPort`: how the planner reads memory: the latest scene graph,
  a :class:`~robot_memory.schemas.MemoryQuery`, a refresh after the robot
  looked, and ``clear`` (the memoryless ablation). The ROS node implements it
  over ``/memory/scene_graph``, the ``/memory/query`` and ``/memory/reset`` services; the
  in-process evaluation over a :class:`~robot_memory.memory.scene_graph.SceneMemory`.
* :class:`SkillPort`: how the planner acts: one skill goal in (``RunSkill`` on
  ``/policy/run_skill`` in the ROS node), its outcome out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from robot_memory.schemas import (
    MemoryAnswer,
    MemoryObjectMsg,
    MemoryQuery,
    PlaceMsg,
    PolicyGoalMsg,
    RelationMsg,
    SceneGraphMsg,
)

#: An object's centre this far inside a place's box (xy) counts as in it [m].
IN_PLACE_MARGIN = 0.0
#: Placed at a position: centre within this of it (xy) [m].
AT_POSITION_TOLERANCE = 0.05


class InstructionCanceledError(Exception):
    """A port's answer to a cancel of the running instruction (or the node
    stopping): end it now."""


class MemoryResetError(RuntimeError):
    """``MemoryPort.clear`` failed: memory refused or did not answer
    (the memoryless ablation cannot run)."""


@dataclass(frozen=True)
class World:
    """One scene-graph snapshot, indexed."""

    graph: SceneGraphMsg
    objects: dict[int, MemoryObjectMsg] = field(init=False)
    places: dict[str, PlaceMsg] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "objects", {o.id: o for o in self.graph.objects})
        object.__setattr__(self, "places", {p.id: p for p in self.graph.places})

    @classmethod
    def empty(cls) -> World:
        return cls(SceneGraphMsg(seq=0, stamp=0.0, objects=[], places=[], relations=[]))

    @property
    def stamp(self) -> float:
        return self.graph.stamp

    def present(self) -> list[MemoryObjectMsg]:
        """Objects memory believes are there (visible or remembered), not containers."""
        return [o for o in self.graph.objects if o.status != "absent" and not o.container]

    def containers(self) -> list[MemoryObjectMsg]:
        return [o for o in self.graph.objects if o.status != "absent" and o.container]

    def relations_of(self, object_id: int) -> list[RelationMsg]:
        return [r for r in self.graph.relations if r.subject == object_id]

    def inside(self, object_id: int) -> list[int | str]:
        """What ``object_id`` is in or on, per memory's relations."""
        return [r.target for r in self.relations_of(object_id) if r.relation in ("in", "on")]

    def is_covered(self, object_id: int) -> bool:
        """In a container *object* (a box or cover over it): it cannot be grasped."""
        return any(
            isinstance(t, int) and t in self.objects and self.objects[t].container
            for t in self.inside(object_id)
        )

    def in_place(
        self, obj: MemoryObjectMsg, place_id: str, margin: float = IN_PLACE_MARGIN
    ) -> bool:
        place = self.places.get(place_id)
        if place is None:
            return False
        c = np.asarray(obj.centroid)
        lo, hi = np.asarray(place.bbox_min), np.asarray(place.bbox_max)
        return bool(np.all(c[:2] >= lo[:2] + margin) and np.all(c[:2] <= hi[:2] - margin))

    def near(
        self, obj: MemoryObjectMsg, position, tolerance: float = AT_POSITION_TOLERANCE
    ) -> bool:
        d = np.linalg.norm(np.asarray(obj.centroid)[:2] - np.asarray(position, dtype=float)[:2])
        return bool(d <= tolerance)

    def summary(self, max_objects: int = 40) -> list[dict]:
        """Compact description (for prompts, logs): id, label, status, position, relations."""
        rows = []
        for o in self.graph.objects[:max_objects]:
            rows.append(
                {
                    "id": o.id,
                    "label": o.label,
                    "status": o.status,
                    "container": o.container,
                    "position": [round(float(v), 3) for v in o.centroid],
                    "last_seen": round(o.last_seen, 2),
                    "relations": [f"{r.relation} {r.target}" for r in self.relations_of(o.id)],
                }
            )
        return rows


class MemoryPort(Protocol):
    def scene_graph(self) -> SceneGraphMsg | None:
        """The latest scene graph (None before the first one)."""

    def query(self, query: MemoryQuery) -> MemoryAnswer:
        """Ask memory; a port that cannot answer returns ``ok=False`` with the reason."""

    def refresh(self) -> SceneGraphMsg | None:
        """A scene graph that includes observations made after this call started
        (after a look); None when none came in time."""

    def clear(self) -> None:
        """Forget everything (the memoryless ablation)."""


@dataclass
class SkillOutcome:
    state: str  # "succeeded" or "failed"
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.state == "succeeded"


class SkillPort(Protocol):
    def run(self, goal: PolicyGoalMsg) -> SkillOutcome:
        """Execute one skill to its end (the policy's final status)."""


@dataclass
class PlanningContext:
    """Everything a backend may use to plan one instruction."""

    instruction: str
    world: World
    memory: MemoryPort | None = None
    experiences: list = field(default_factory=list)  # list[Experience]
    image: np.ndarray | None = None  # RGB (H, W, 3) uint8 from a camera, for a VLM
    held: int | None = None  # memory id of the object in the hand, if any


class PlannerBackend(Protocol):
    name: str

    def plan(self, ctx: PlanningContext):  # -> Plan; raises PlanningError
        """Turn ``ctx.instruction`` into a Plan (not yet validated)."""


__all__ = [
    "AT_POSITION_TOLERANCE",
    "MemoryPort",
    "PlannerBackend",
    "PlanningContext",
    "SkillOutcome",
    "SkillPort",
    "World",
]
