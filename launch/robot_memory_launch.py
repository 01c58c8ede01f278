"""Shared helper for the launch files: launch_ros Nodes from the launch spec.

Used by ``ros2 launch robot_memory <stack>.launch.py`` inside a sourced ROS 2
install. Overrides use the same syntax as ``robot-memory launch``::

    ros2 launch robot_memory sim.launch.py overrides:="sim.seed:=3 sim.camera_rate:=15.0"

Supervision follows the spec as under ``robot-memory launch``: a node with
``respawn`` is a launch_ros ``Node(respawn=True, respawn_delay=...)``; each of
its exits is logged with its restart count, and one exit more than its
:class:`RestartBudget` allows shuts the launch down, loudly. A required node
without respawn that exits shuts it down at once. Nodes get this launch
process's pid (``ROBOT_MEMORY_PARENT_PID``) and stop if it dies.
"""

from __future__ import annotations

import os
import time

from launch import LaunchDescription
from launch.actions import (
    DeclareLaunchArgument,
    LogInfo,
    OpaqueFunction,
    SetEnvironmentVariable,
    Shutdown,
)
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from robot_memory.bringup.launch_spec import NodeSpec, RestartBudget, parse_override, stack
from robot_memory.bringup.ros_env import PARENT_PID_ENV, dds_environment

DDS_VARIABLES = ("ROS_AUTOMATIC_DISCOVERY_RANGE", "FASTDDS_DEFAULT_PROFILES_FILE", "MUJOCO_GL")


def _on_exit(spec: NodeSpec):
    """What to do when ``spec``'s process exits (ProcessExited, LaunchContext)."""
    if not spec.respawn:
        # a required node that dies takes the whole launch down, loudly
        return Shutdown(reason=f"{spec.name} exited") if spec.required else None
    budget = RestartBudget.of(spec)

    def exited(event, context):
        if context.is_shutdown:
            return None
        code = event.returncode
        if not budget.allow(time.monotonic()):
            reason = (
                f"{spec.name} exited (code {code}) after {budget.restarts} restarts, more than "
                f"{spec.max_restarts} in {spec.restart_window_s:g} s: giving up"
            )
            return [LogInfo(msg=reason), Shutdown(reason=reason)]
        return LogInfo(
            msg=f"{spec.name} exited (code {code}); restart {budget.restarts} "
            f"in {spec.respawn_delay_s:g} s"
        )

    return exited


def node_arguments(spec: NodeSpec) -> dict:
    """The launch_ros ``Node(...)`` keyword arguments of one spec."""
    return dict(
        package="robot_memory",
        executable=spec.executable,
        name=spec.name,
        parameters=[dict(spec.parameters)],
        remappings=list(spec.remappings),
        output="screen",
        respawn=spec.respawn,
        respawn_delay=spec.respawn_delay_s if spec.respawn else None,
        on_exit=_on_exit(spec),
    )


def _nodes(context, stack_name: str):
    overrides: dict[str, dict] = {}
    for text in LaunchConfiguration("overrides").perform(context).split():
        node, param, value = parse_override(text)
        overrides.setdefault(node, {})[param] = value
    return [Node(**node_arguments(spec)) for spec in stack(stack_name, overrides)]


def generate(stack_name: str) -> LaunchDescription:
    env = dds_environment({})
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "overrides", default_value="", description="node.param:=value ..."
            ),
            *(SetEnvironmentVariable(k, env[k]) for k in DDS_VARIABLES),
            SetEnvironmentVariable(PARENT_PID_ENV, str(os.getpid())),
            OpaqueFunction(function=_nodes, args=[stack_name]),
        ]
    )
