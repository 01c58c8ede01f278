"""The perception core (ROS-free): RGB-D frames -> objects in the world frame.

The pipeline (Open3D, OpenCV) is imported from ``robot_memory.perception.pipeline``
where it is used: a node that only decodes images (the safety node's camera
watchdog) does not pay for Open3D at start-up.
"""

from robot_memory.perception.config import PerceptionConfig
from robot_memory.perception.image_decoding import (
    PerceptionInputError,
    decode_color,
    decode_depth,
)

__all__ = [
    "PerceptionConfig",
    "PerceptionInputError",
    "decode_color",
    "decode_depth",
]
