"""ros2 launch robot_memory replay.launch.py: the replay stack of bringup/launch_spec."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from robot_memory_launch import generate


def generate_launch_description():
    return generate("replay")
