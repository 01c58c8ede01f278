"""The perception core (ROS-free): RGB-D frames -> objects in the world frame."""

from robot_memory.perception.config import PerceptionConfig
from robot_memory.perception.image_decoding import (
    PerceptionInputError,
    decode_color,
    decode_depth,
)
from robot_memory.perception.pipeline import PerceptionPipeline

__all__ = [
    "PerceptionConfig",
    "PerceptionInputError",
    "PerceptionPipeline",
    "decode_color",
    "decode_depth",
]
