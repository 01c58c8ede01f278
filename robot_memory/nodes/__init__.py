"""The ROS 2 nodes (the only part of robot_memory that imports rclpy).

A node process (``python -m robot_memory.nodes.<x>_node`` or the ``<x>_node``
console script of a node whose main is :func:`node_main.spin_node`) stops
quietly with exit code 0 on SIGINT / SIGTERM even while it is still importing
torch, mujoco or open3d (seconds on 2 cores): nothing is open yet, so there is
nothing to clean up. ``spin_node`` installs its own handlers once it runs.
"""

from __future__ import annotations

import os
import signal
import sys

SPIN_NODES = frozenset(
    {
        "sim_node",
        "expert_node",
        "perception_node",
        "memory_node",
        "planner_node",
        "policy_node",
        "safety_node",
    }
)


def _main_name() -> str:
    argv = list(getattr(sys, "orig_argv", sys.argv))
    if "-m" in argv[:-1]:
        return argv[argv.index("-m") + 1].rpartition(".")[2]
    return os.path.basename(sys.argv[0]) if sys.argv else ""


def _exit_quietly(_signum: int, _frame: object) -> None:
    os._exit(0)


if _main_name() in SPIN_NODES:
    for _sig in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(_sig) in (signal.default_int_handler, signal.SIG_DFL):
            signal.signal(_sig, _exit_quietly)
