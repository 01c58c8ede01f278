"""``MemoryPort`` straight onto an in-process SceneMemory (ROS-free): what the
planner's ``/memory/query`` service client is on the robot, without DDS."""

from __future__ import annotations

from robot_memory.memory.scene_graph import SceneMemory
from robot_memory.schemas import MemoryAnswer, MemoryQuery, SceneGraphMsg


class SceneMemoryPort:
    """The planner's memory port over a SceneMemory (nothing to refresh)."""

    def __init__(self, memory: SceneMemory) -> None:
        self.memory = memory

    def scene_graph(self) -> SceneGraphMsg | None:
        return self.memory.snapshot()

    def query(self, query: MemoryQuery) -> MemoryAnswer:
        try:
            return self.memory.answer(query)
        except Exception as err:  # noqa: BLE001 (a port answers; it never raises)
            return MemoryAnswer(id=query.id, kind=query.kind, ok=False, error=str(err)[:300])

    def refresh(self) -> SceneGraphMsg | None:
        return self.memory.snapshot()

    def clear(self) -> None:
        self.memory.reset()
