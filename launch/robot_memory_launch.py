"""Shared helper for the launch files: launch_ros Nodes from the launch spec.

Used by ``ros2 launch robot_memory <stack>.launch.py`` inside a sourced ROS 2
install. Overrides use the same syntax as ``robot-memory launch``::

    ros2 launch robot_memory sim.launch.py overrides:="sim.seed:=3 sim.camera_rate:=15.0"
"""

from __future__ import annotations

from launch import LaunchDescription
from launch.actions import (
    DeclareLaunchArgument,
    OpaqueFunction,
    SetEnvironmentVariable,
    Shutdown,
)
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from robot_memory.launch_spec import parse_override, stack
from robot_memory.ros_env import dds_environment

DDS_VARIABLES = ("ROS_AUTOMATIC_DISCOVERY_RANGE", "FASTDDS_DEFAULT_PROFILES_FILE", "MUJOCO_GL")


def _nodes(context, stack_name: str):
    overrides: dict[str, dict] = {}
    for text in LaunchConfiguration("overrides").perform(context).split():
        node, param, value = parse_override(text)
        overrides.setdefault(node, {})[param] = value
    return [
        Node(
            package="robot_memory",
            executable=spec.executable,
            name=spec.name,
            parameters=[dict(spec.parameters)],
            remappings=list(spec.remappings),
            output="screen",
            # a required node that dies takes the whole launch down, loudly
            on_exit=Shutdown(reason=f"{spec.name} exited") if spec.required else None,
        )
        for spec in stack(stack_name, overrides)
    ]


def generate(stack_name: str) -> LaunchDescription:
    env = dds_environment({})
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "overrides", default_value="", description="node.param:=value ..."
            ),
            *(SetEnvironmentVariable(k, env[k]) for k in DDS_VARIABLES),
            OpaqueFunction(function=_nodes, args=[stack_name]),
        ]
    )
