"""The offline planner's working state while it drafts a plan (ROS-free).

Moved out of :mod:`robot_memory.planner.offline_backend` so that its parts
(:mod:`~robot_memory.planner.container_spots`,
:mod:`~robot_memory.planner.restore_plan`) share it: :class:`PlanState` (the
hand, where objects will be, the steps so far), the :data:`Target` of a place
step, and two small helpers (a point's xy, the rows of a memory query).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import numpy as np
from pydantic import ValidationError

from robot_memory.planner.plan import PlanStep
from robot_memory.planner.world import MemoryPort
from robot_memory.schemas import MemoryQuery

#: Where a place step puts something: a place id / object id, or a position.
Target = str | tuple[float, float, float]


def xy(p) -> np.ndarray:
    """The xy of a point (anything array-like with at least two values)."""
    return np.asarray(p, dtype=float)[:2]


@dataclass
class PlanState:
    """What the plan so far will have done: the hand, and where objects will be."""

    held: int | None
    at: dict[int, Target] = field(default_factory=dict)
    steps: list[PlanStep] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    spots: dict[str, list[tuple[float, float, float]]] = field(default_factory=dict)  # in places


def memory_rows(memory: MemoryPort | None, **kw: object) -> list[dict]:
    """The result rows of a memory query (none without memory, for a query kind
    this memory does not know, or when memory answers not ok)."""
    if memory is None:
        return []
    try:
        q = MemoryQuery(id=uuid.uuid4().hex[:16], **kw)  # type: ignore[arg-type]
    except ValidationError:  # a memory without this query kind
        return []
    ans = memory.query(q)
    return list(ans.results) if ans.ok else []


__all__ = ["PlanState", "Target", "memory_rows", "xy"]
