"""The scripted expert drives the sim through the controller topics only
(JointTrajectory + gripper commands) and puts a named cube in the bin; checked
against ground truth over DDS."""

from __future__ import annotations

import io

import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from robot_memory_interfaces import msg as rmi

from robot_memory.bringup.launch_spec import stack
from robot_memory.bringup.launcher import Launcher
from robot_memory.nodes.qos import COMMAND, LATCHED
from robot_memory.nodes.sim_conversions import (
    expert_status_from_msg,
    expert_task_to_msg,
    ground_truth_from_msg,
    sim_reset_to_msg,
)
from robot_memory.schemas import ExpertTask, SimReset
from ros_helpers import Probe, rejected, spin_until

pytestmark = [pytest.mark.ros, pytest.mark.slow]

EPISODES = 10
REQUIRED = 9
RED_CUBE_TO_BIN = ExpertTask(object_id="red_cube", place_id="bin")


CONVERT = {"/sim/ground_truth": ground_truth_from_msg, "/expert/status": expert_status_from_msg}


def latest(probe: Probe, topic: str):
    """The last message on ``topic`` as the core's validated type (None: none yet)."""
    msg = probe.last(topic)
    return None if msg is None else CONVERT[topic](msg)


def test_expert_puts_the_red_cube_in_the_bin_through_the_topics():
    log = io.StringIO()
    specs = stack(
        "sim",
        {
            # physics faster than real time, no cameras: this test is about control
            "sim": {"real_time_factor": 4.0, "camera_rate": 0.0, "panda_visual": "primitive"},
            "expert": {"object_id": "", "move_speed": 0.6},
        },
    )
    specs = [s for s in specs if s.name in ("sim", "expert")]  # control only
    rclpy.init()
    probe = Probe("expert_test")
    probe.listen(rmi.GroundTruth, "/sim/ground_truth", COMMAND)
    probe.listen(rmi.ExpertStatus, "/expert/status", LATCHED)
    probe.listen(DiagnosticArray, "/diagnostics", 10)
    reset_pub = probe.create_publisher(rmi.SimReset, "/sim/reset", COMMAND)
    task_pub = probe.create_publisher(rmi.ExpertTask, "/expert/task", COMMAND)
    outcomes: list[tuple[int, str, str]] = []
    try:
        with Launcher(specs, output=log) as launched:
            spin_until(
                probe,
                lambda: (
                    probe.last("/expert/status")
                    and probe.last("/sim/ground_truth")
                    and task_pub.get_subscription_count() > 0  # discovery: nothing lost
                    and reset_pub.get_subscription_count() > 0
                ),
                timeout_s=60,
                check=launched.check,
                what="sim and expert up",
            )
            # Malformed tasks are counted rejections; the expert stays idle and alive.
            for bad in (("", "bin"), ("red cube", "bin")):
                task_pub.publish(rmi.ExpertTask(object_id=bad[0], place_id=bad[1]))
            spin_until(
                probe,
                lambda: rejected(probe, "expert").get("invalid payload", 0) >= 2,
                timeout_s=10,
                check=launched.check,
                what="malformed tasks counted",
            )
            assert latest(probe, "/expert/status").state == "idle"
            for seed in range(EPISODES):
                episode = latest(probe, "/sim/ground_truth").episode
                reset_pub.publish(sim_reset_to_msg(SimReset(seed=seed)))
                spin_until(
                    probe,
                    lambda e=episode: latest(probe, "/sim/ground_truth").episode > e,
                    timeout_s=20,
                    check=launched.check,
                    what=f"reset to seed {seed}",
                )
                probe.messages["/expert/status"].clear()
                task_pub.publish(expert_task_to_msg(RED_CUBE_TO_BIN))

                def running() -> bool:
                    status = latest(probe, "/expert/status")
                    return status is not None and status.state == "running"

                spin_until(probe, running, 30, launched.check, f"episode {seed} start")
                if seed == 0:  # a second task while one runs: refused, counted, not run
                    other = ExpertTask(object_id="blue_cylinder", place_id="bin")
                    task_pub.publish(expert_task_to_msg(other))
                    spin_until(
                        probe,
                        lambda: rejected(probe, "expert").get("busy", 0) >= 1,
                        timeout_s=10,
                        check=launched.check,
                        what="busy rejection",
                    )

                def finished() -> bool:
                    status = latest(probe, "/expert/status")
                    return status is not None and status.state in ("succeeded", "failed")

                spin_until(probe, finished, 120, launched.check, f"episode {seed} outcome")
                status = latest(probe, "/expert/status")
                assert status.object_id == "red_cube"  # the refused task never ran
                # Judge by ground truth, not by the expert's own word.
                truth = latest(probe, "/sim/ground_truth")
                outcomes.append((seed, status.state, truth.get("red_cube").support or "none"))
    finally:
        probe.destroy_node()
        rclpy.shutdown()
    in_bin = sum(1 for _, _, support in outcomes if support == "bin")
    assert in_bin >= REQUIRED, f"{outcomes}\n{log.getvalue()[-3000:]}"
    # the expert's verdict agrees with ground truth
    assert all((state == "succeeded") == (support == "bin") for _, state, support in outcomes)
