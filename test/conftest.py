"""Test-session set-up: DDS on loopback with the project's Fast DDS profile and
a ROS_DOMAIN_ID of this run's own, set before anything imports rclpy."""

from __future__ import annotations

import os

from robot_memory.ros_env import apply_to_current_process, random_domain_id

if "ROS_DOMAIN_ID" not in os.environ or os.environ.get("ROBOT_MEMORY_TEST_DOMAIN") != "keep":
    apply_to_current_process(domain_id=random_domain_id())
else:
    apply_to_current_process()
