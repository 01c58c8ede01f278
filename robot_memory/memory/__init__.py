"""The memory core (ROS-free): a 3D scene graph of remembered objects fed by
perception's ObservationFrames, with permanence, history, SQLite persistence
and queries. Start at :class:`robot_memory.memory.scene_graph.SceneMemory`."""

from robot_memory.memory.config import MemoryConfig, MemoryConfigError
from robot_memory.memory.object_node import MemoryObject
from robot_memory.memory.scene_graph import MemoryInputError, SceneMemory, UpdateResult
from robot_memory.memory.text_grounding import TextEmbedder

__all__ = [
    "MemoryConfig",
    "MemoryConfigError",
    "MemoryInputError",
    "MemoryObject",
    "SceneMemory",
    "TextEmbedder",
    "UpdateResult",
]
