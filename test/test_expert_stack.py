"""The scripted expert drives the sim through the controller topics only
(JointTrajectory + gripper commands) and puts a named cube in the bin; checked
against ground truth over DDS."""

from __future__ import annotations

import io
import json

import pytest
import rclpy
from std_msgs.msg import String

from robot_memory.launch_spec import stack
from robot_memory.launcher import Launcher
from robot_memory.nodes.qos import COMMAND, LATCHED
from robot_memory.schemas import ExpertStatus, ExpertTask, GroundTruth, SimReset, dump_payload
from ros_helpers import Probe, spin_until

pytestmark = [pytest.mark.ros, pytest.mark.slow]

EPISODES = 10
REQUIRED = 9


def latest(probe: Probe, topic: str, model):
    msg = probe.last(topic)
    return None if msg is None else model.model_validate(json.loads(msg.data))


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
    probe.listen(String, "/sim/ground_truth", COMMAND)
    probe.listen(String, "/expert/status", LATCHED)
    reset_pub = probe.create_publisher(String, "/sim/reset", COMMAND)
    task_pub = probe.create_publisher(String, "/expert/task", COMMAND)
    outcomes: list[tuple[int, str, str]] = []
    try:
        with Launcher(specs, output=log) as launched:
            spin_until(
                probe,
                lambda: probe.last("/expert/status") and probe.last("/sim/ground_truth"),
                timeout_s=60,
                check=launched.check,
                what="sim and expert up",
            )
            for seed in range(EPISODES):
                episode = latest(probe, "/sim/ground_truth", GroundTruth).episode
                reset_pub.publish(String(data=dump_payload(SimReset(seed=seed))))
                spin_until(
                    probe,
                    lambda e=episode: latest(probe, "/sim/ground_truth", GroundTruth).episode > e,
                    timeout_s=20,
                    check=launched.check,
                    what=f"reset to seed {seed}",
                )
                probe.messages["/expert/status"].clear()
                task_pub.publish(
                    String(data=dump_payload(ExpertTask(object_id="red_cube", place_id="bin")))
                )

                def running() -> bool:
                    status = latest(probe, "/expert/status", ExpertStatus)
                    return status is not None and status.state == "running"

                spin_until(probe, running, 30, launched.check, f"episode {seed} start")

                def finished() -> bool:
                    status = latest(probe, "/expert/status", ExpertStatus)
                    return status is not None and status.state in ("succeeded", "failed")

                spin_until(probe, finished, 120, launched.check, f"episode {seed} outcome")
                status = latest(probe, "/expert/status", ExpertStatus)
                # Judge by ground truth, not by the expert's own word.
                truth = latest(probe, "/sim/ground_truth", GroundTruth)
                outcomes.append((seed, status.state, truth.get("red_cube").support or "none"))
    finally:
        probe.destroy_node()
        rclpy.shutdown()
    in_bin = sum(1 for _, _, support in outcomes if support == "bin")
    assert in_bin >= REQUIRED, f"{outcomes}\n{log.getvalue()[-3000:]}"
    # the expert's verdict agrees with ground truth
    assert all((state == "succeeded") == (support == "bin") for _, state, support in outcomes)
