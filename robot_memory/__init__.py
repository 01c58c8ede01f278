"""robot_memory: spatial memory for robot arms on ROS 2.

Subpackages under this one are ROS-free cores (plain Python, tested with plain
pytest); only :mod:`robot_memory.nodes` imports rclpy and message types.
"""

__version__ = "0.1.0"
