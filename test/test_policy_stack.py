"""End to end over DDS: sim node -> /joint_states -> policy node (shipped
checkpoint) -> /policy/action_chunk -> safety node -> controller topics -> sim.
A pick goal at the object's position must end with the policy reporting
success and the simulator's ground truth showing the object lifted in the hand;
a policy killed mid-pick leaves the arm held until the launcher brings it back."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal

import numpy as np
import pytest
import rclpy
from sensor_msgs.msg import JointState
from std_msgs.msg import String

from robot_memory.expert.ik import PandaIK
from robot_memory.expert.pick_place import PickPlacePlanner
from robot_memory.launch_spec import stack
from robot_memory.launcher import Launcher
from robot_memory.nodes.qos import COMMAND, LATCHED
from robot_memory.policy.skill_tasks import object_truth
from robot_memory.schemas import GroundTruth, PolicyStatusMsg, SimReset, dump_payload
from robot_memory.sim.scene import build_model
from ros_helpers import Probe, spin_for, spin_until

pytestmark = [pytest.mark.ros, pytest.mark.slow]
SEED, OBJECT = 3, "red_cube"


def latest(probe: Probe, topic: str, model):
    msg = probe.last(topic)
    return None if msg is None else model.model_validate(json.loads(msg.data))


@contextlib.contextmanager
def policy_stack(log: io.StringIO):
    """sim + policy + safety under the launcher, the scene reset to SEED and
    joint states flowing; yields the probe, the launcher, the goal publisher
    and the red cube's ground truth."""
    specs = stack(
        "sim",
        {
            "sim": {"camera_rate": 0.0, "panda_visual": "primitive", "seed": SEED},
            "policy": {"device": "cpu", "torch_threads": 1},
            "safety": {"watched_cameras": []},
        },
    )
    specs = [s for s in specs if s.name in ("sim", "policy", "safety")]
    rclpy.init()
    probe = Probe("policy_stack_test")
    probe.listen(String, "/sim/ground_truth", COMMAND)
    probe.listen(String, "/policy/status", LATCHED)
    probe.listen(String, "/safety/status", LATCHED)
    probe.listen(JointState, "/joint_states", COMMAND)
    goal_pub = probe.create_publisher(String, "/policy/goal", COMMAND)
    reset_pub = probe.create_publisher(String, "/sim/reset", COMMAND)
    try:
        with Launcher(specs, output=log) as launched:
            spin_until(
                probe,
                lambda: (
                    probe.last("/sim/ground_truth")
                    and probe.last("/policy/status")
                    and probe.last("/safety/status")
                    and goal_pub.get_subscription_count() > 0
                ),
                timeout_s=90,
                check=launched.check,
                what="sim, policy and safety up",
            )
            episode = latest(probe, "/sim/ground_truth", GroundTruth).episode
            reset_pub.publish(String(data=dump_payload(SimReset(seed=SEED))))
            spin_until(
                probe,
                lambda: latest(probe, "/sim/ground_truth", GroundTruth).episode > episode,
                timeout_s=20,
                check=launched.check,
                what="reset",
            )
            # the policy refuses a goal until it has recent joint states
            probe.messages["/joint_states"].clear()
            spin_until(probe, lambda: probe.last("/joint_states"), 20, launched.check, "joints")
            spin_for(probe, 1.0)
            cube = object_truth(latest(probe, "/sim/ground_truth", GroundTruth), OBJECT)
            yield probe, launched, goal_pub, cube
    finally:
        probe.destroy_node()
        rclpy.try_shutdown()


def pick_goal(cube) -> str:
    yaw = PickPlacePlanner(PandaIK(build_model("tabletop", "primitive"))).grasp_yaw(cube)
    goal = {"id": "pick-1", "skill": "pick", "target_position": list(cube.position),
            "goal_yaw": yaw}  # fmt: skip
    return json.dumps(goal)


def test_policy_and_safety_pick_an_object_in_the_sim_over_dds() -> None:
    log = io.StringIO()
    with policy_stack(log) as (probe, launched, goal_pub, cube):
        goal_pub.publish(String(data=pick_goal(cube)))

        def done() -> bool:
            status = latest(probe, "/policy/status", PolicyStatusMsg)
            return (
                status is not None
                and status.goal_id == "pick-1"
                and status.state in ("succeeded", "failed")
            )

        spin_until(probe, done, timeout_s=60, check=launched.check, what="the pick")
        status = latest(probe, "/policy/status", PolicyStatusMsg)
        spin_for(probe, 1.0)  # the lifted object settles in the hand
        after = object_truth(latest(probe, "/sim/ground_truth", GroundTruth), OBJECT)
        safety = json.loads(probe.last("/safety/status").data)
    assert status.state == "succeeded", (status, log.getvalue()[-3000:])
    assert status.chunks >= 2
    assert after.grasped and after.position[2] > cube.position[2] + 0.05, after
    assert safety["accepted"] >= 2 and np.isfinite(after.position).all()
    assert safety["rejected_total"] == 0, safety  # too fast is retimed, not refused


def test_a_policy_killed_mid_pick_leaves_the_arm_held_until_it_is_back() -> None:
    """SIGKILL the policy while its chunks drive the arm: the safety node's
    watchdog holds (reason on /safety/status), the arm stays still while the
    policy is down, and the launcher respawns the policy."""
    log = io.StringIO()
    with policy_stack(log) as (probe, launched, goal_pub, cube):
        goal_pub.publish(String(data=pick_goal(cube)))
        spin_until(
            probe,
            lambda: json.loads(probe.last("/safety/status").data)["accepted"] >= 2,
            timeout_s=30,
            check=launched.check,
            what="the pick under way",
        )
        old_pid = launched.pids()["policy"]
        os.kill(old_pid, signal.SIGKILL)
        spin_until(
            probe,
            lambda: "no chunk" in json.loads(probe.last("/safety/status").data)["hold_reason"],
            timeout_s=10,
            check=launched.check,
            what="the watchdog's hold",
        )
        probe.messages["/joint_states"].clear()
        spin_until(
            probe,
            lambda: (
                len(probe.messages["/joint_states"]) > 1
                and stamp_s(probe.messages["/joint_states"][-1])
                - stamp_s(probe.messages["/joint_states"][0])
                > 1.0
            ),
            timeout_s=20,
            check=launched.check,
            what="1 s of joint states while held",
        )
        held = [m for m in probe.messages["/joint_states"]]
        spin_until(
            probe,
            lambda: launched.restarts().get("policy") == 1 and launched.pids()["policy"] != old_pid,
            timeout_s=60,
            check=launched.check,
            what="the policy respawned",
        )
        safety = json.loads(probe.last("/safety/status").data)
    # the smooth stop takes well under 0.5 s; after it the arm does not move
    settled = [m for m in held if stamp_s(m) >= stamp_s(held[0]) + 0.5]
    q = np.array([m.position[:7] for m in settled])
    assert len(q) >= 10 and np.max(np.ptp(q, axis=0)) < 0.01, np.ptp(q, axis=0)
    assert safety["state"] == "holding" and safety["holds"] >= 1


def stamp_s(msg: JointState) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
