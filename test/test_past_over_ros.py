"""A question about the past, end to end over ROS: observations on
``/perception/observations`` and the robot's own skill on ``/policy/status``
reach the memory node (its own process); memory is killed with SIGKILL and
respawned; ``robot-memory say`` asks the planner node (its own process), which
answers from the events memory committed before it died."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys

import pytest
import rclpy
from robot_memory_interfaces.msg import ObservationFrame as ObservationFrameRos
from robot_memory_interfaces.msg import PolicyStatus
from test_memory_core import frame, obs
from test_memory_stack import graph_of, make_probe

from robot_memory.bringup.launch_spec import memory_node, planner_node
from robot_memory.bringup.launcher import Launcher
from robot_memory.cell import load_cell
from robot_memory.nodes.memory_conversions import observation_frame_to_msg
from robot_memory.nodes.qos import LATCHED
from robot_memory.nodes.skill_conversions import policy_status_to_msg
from robot_memory.perception.observations import frame_to_payload
from robot_memory.schemas import PolicyStatusMsg
from ros_helpers import health_value, spin_for, spin_until

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def say(text: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "robot_memory.cli", "say", "--timeout", "60", *text.split()]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=os.environ)


def test_who_put_what_in_the_bin_is_answered_after_memory_was_killed(tmp_path):
    bin_x, bin_y, bin_z = load_cell().place("bin").center
    specs = [
        memory_node(store_path=str(tmp_path / "memory.sqlite"), preload_embedder=False,
                    publish_period_s=0.05),
        planner_node(experience_path="", query_timeout_s=20.0),
    ]  # fmt: skip
    log = io.StringIO()
    rclpy.init()
    probe = make_probe("past_probe")
    obs_pub = probe.create_publisher(ObservationFrameRos, "/perception/observations", 50)
    status_pub = probe.create_publisher(PolicyStatus, "/policy/status", LATCHED)
    launcher = Launcher(specs, output=log)
    launcher.start()
    try:
        spin_until(probe, lambda: obs_pub.get_subscription_count() > 0, 60, launcher.check,
                   "the memory node up")  # fmt: skip

        def feed(t0: float, objects) -> None:
            """Four frames of ``objects`` (label, (x, y, z)), depth rendered from them."""
            for i in range(4):
                observed = [obs(label, at) for label, at in objects]
                msg = observation_frame_to_msg(frame_to_payload(frame(t0 + 0.1 * i, observed)))
                obs_pub.publish(msg)
                spin_for(probe, 0.05)

        red_table, green_table = (
            ("red cube", (0.1, -0.1, 0.025)),
            ("green cube", (0.0, 0.15, 0.025)),
        )
        red_bin = ("red cube", (bin_x, bin_y, bin_z))
        green_bin = ("green cube", (bin_x + 0.06, bin_y, bin_z))
        feed(0.0, [red_table, green_table])
        feed(10.0, [red_bin, green_table])  # someone puts the red cube in the bin
        spin_until(probe, lambda: len((graph_of(probe) or _empty()).objects) == 2, 30,
                   launcher.check, "both cubes in memory")  # fmt: skip
        green = next(o.id for o in graph_of(probe).objects if o.label == "green cube")
        for state, stamp in (("running", 18.0), ("succeeded", 22.0)):  # the robot's place
            status = PolicyStatusMsg(goal_id="g1", state=state, skill="place", object_id=green,
                                     target="bin", stamp=stamp)  # fmt: skip
            status_pub.publish(policy_status_to_msg(status))
            spin_for(probe, 0.2)
        spin_until(probe, lambda: health_value(probe, "memory", "robot_skills") == "1", 30,
                   launcher.check, "memory told of the robot's place")  # fmt: skip
        feed(20.0, [red_bin, green_bin])
        spin_until(
            probe,
            lambda: (g := graph_of(probe)) is not None
            and sum(r.relation == "in" and r.target == "bin" for r in g.relations) == 2,
            30, launcher.check, "both cubes in the bin",
        )  # fmt: skip

        old = launcher.pids()["memory"]
        os.kill(old, signal.SIGKILL)
        spin_until(probe, lambda: launcher.pids().get("memory") not in (None, old), 60,
                   launcher.check, "memory respawned")  # fmt: skip
        done = say("what did you put in the bin after the red cube")
        assert done.returncode == 0, done.stdout + done.stderr + log.getvalue()[-2000:]
        assert "answered" in done.stdout and "green cube" in done.stdout, done.stdout
        assert "(by me)" in done.stdout, done.stdout  # the robot's place, told on /policy/status
        done = say("how many things are in the bin")
        assert done.returncode == 0, done.stdout + done.stderr + log.getvalue()[-2000:]
        assert "2 things" in done.stdout, done.stdout
    finally:
        launcher.shutdown()
        probe.destroy_node()
        rclpy.shutdown()


def _empty():
    from robot_memory.schemas import SceneGraphMsg

    return SceneGraphMsg(seq=0, stamp=0.0, objects=[], places=[], relations=[])
