"""Test doubles for the planner core's unit tests (no simulator, no ROS).

``SymbolicWorldTestDouble`` stands in for memory *and* the policy at once: a
dictionary of objects whose positions change when a pick/place "succeeds".
The real stack (sim + perception + memory + policy) is exercised by
test_tasks_* and test_planner_stack; these doubles only make the executor's
control flow (validation, replanning, experience) fast and deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from robot_memory.cell import load_cell
from robot_memory.planner.world import SkillOutcome
from robot_memory.schemas import (
    MemoryAnswer,
    MemoryObjectMsg,
    MemoryQuery,
    PlaceMsg,
    PolicyGoalMsg,
    RelationMsg,
    SceneGraphMsg,
)


def memory_object(oid: int, label: str, xyz, status: str = "remembered", **kw) -> MemoryObjectMsg:
    colour, shape = label.split(" ", 1)
    half = 0.025
    c = np.asarray(xyz, dtype=float)
    return MemoryObjectMsg(
        id=oid,
        label=label,
        color=colour,
        shape=shape,
        centroid=tuple(c),
        bbox_min=tuple(c - half),
        bbox_max=tuple(c + half),
        confidence=0.9,
        observations=10,
        first_seen=1.0,
        last_seen=2.0,
        status=status,
        **kw,
    )


def cell_places() -> list[PlaceMsg]:
    return [
        PlaceMsg(
            id=p.id,
            kind=p.kind,
            label=p.label or p.id,
            bbox_min=tuple(float(v) for v in p.bbox_min),
            bbox_max=tuple(float(v) for v in p.bbox_max),
        )
        for p in load_cell().places
    ]


@dataclass
class SymbolicWorldTestDouble:
    """Memory port + skill port over a symbolic scene (a test double)."""

    objects: dict[int, MemoryObjectMsg]
    relations: list[RelationMsg] = field(default_factory=list)
    fail: dict[str, int] = field(default_factory=dict)  # skill -> failures to inject
    #: a failed pick knocks the object 3 cm aside and memory, seeing it there,
    #: gives it a new id (the old entry goes absent), as the real memory can
    knock_to_new_id: bool = False
    #: ... and out of view: memory shows the new entry only after a look at a
    #: table region (the executor has to search for it)
    knock_out_of_view: bool = False
    #: objects that memory loses once placed (a black screwdriver in noisy
    #: depth): the place succeeds, no look finds them again
    lost_after_place: set[int] = field(default_factory=set)
    hidden: set[int] = field(default_factory=set)
    goals: list[PolicyGoalMsg] = field(default_factory=list)
    queries: list[MemoryQuery] = field(default_factory=list)
    cleared: int = 0
    held: int | None = None
    stamp: float = 2.0
    seq: int = 1

    # -- MemoryPort ---------------------------------------------------------
    def scene_graph(self) -> SceneGraphMsg:
        return SceneGraphMsg(
            seq=self.seq,
            stamp=self.stamp,
            objects=[o for o in self.objects.values() if o.id not in self.hidden],
            places=cell_places(),
            relations=list(self.relations),
        )

    def refresh(self) -> SceneGraphMsg:
        self.stamp += 0.5
        self.seq += 1
        return self.scene_graph()

    def query(self, query: MemoryQuery) -> MemoryAnswer:
        self.queries.append(query)
        if query.kind in ("last_seen", "find"):
            hits = [o for o in self.objects.values() if o.label == query.text]
            return MemoryAnswer(
                id=query.id,
                kind=query.kind,
                ok=bool(hits),
                error="" if hits else "nothing matches",
                results=[{"id": o.id, "label": o.label, "status": o.status} for o in hits],
            )
        return MemoryAnswer(id=query.id, kind=query.kind, ok=True, results=[])

    def clear(self) -> None:
        self.cleared += 1

    # -- SkillPort ----------------------------------------------------------
    def run(self, goal: PolicyGoalMsg) -> SkillOutcome:
        self.goals.append(goal)
        if self.fail.get(goal.skill, 0) > 0:
            self.fail[goal.skill] -= 1
            if goal.skill == "pick" and self.knock_to_new_id and goal.object_id in self.objects:
                old = self.objects[goal.object_id]
                self.objects[old.id] = old.model_copy(update={"status": "absent"})
                new_id = max(self.objects) + 1
                moved = np.asarray(old.centroid) + (0.03, 0.0, 0.0)
                self.objects[new_id] = memory_object(new_id, old.label, moved, status="visible")
                if self.knock_out_of_view:
                    self.hidden.add(new_id)
            return SkillOutcome("failed", "injected failure: grasp missed")
        if goal.skill == "look" and goal.target.startswith("table_"):
            self.hidden.clear()
        if goal.skill == "pick":
            self.held = goal.object_id
        elif goal.skill == "place":
            obj = self.objects[self.held]  # type: ignore[index]
            if goal.target_position is not None:
                to = np.asarray(goal.target_position)
            else:
                place = next(p for p in cell_places() if p.id == goal.target)
                lo, hi = np.asarray(place.bbox_min), np.asarray(place.bbox_max)
                to = (lo + hi) / 2.0
            status = "absent" if obj.id in self.lost_after_place else "visible"
            self.objects[obj.id] = memory_object(obj.id, obj.label, to, status=status)
            self.held = None
        return SkillOutcome("succeeded")
