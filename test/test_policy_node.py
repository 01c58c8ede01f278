"""The policy node over DDS (in this process), on a tiny checkpoint trained here:
a pick goal grounded in the scene graph gives contract-shaped action chunks
stamped with an observation we sent; bad goals are refused with a reason while
the running skill goes on; stale observations never become chunks; the e-stop
fails the skill; a missing checkpoint fails goals instead of the node."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.duration import Duration
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, String
from trajectory_msgs.msg import JointTrajectory

from robot_memory.nodes.conversions import from_time
from robot_memory.nodes.policy_node import STATUS_QOS, PolicyNode, observation_indices
from robot_memory.nodes.qos import COMMAND, LATCHED
from robot_memory.policy.configuration_diffusion import DiffusionConfig
from robot_memory.policy.demonstrations import collect
from robot_memory.policy.training import train
from robot_memory.robot.panda import ALL_JOINTS, ARM_JOINTS, GRIPPER_WIDTH_JOINT
from robot_memory.schemas import MemoryObjectMsg, SceneGraphMsg, dump_payload
from ros_helpers import Probe, rejected, spin_for, spin_until

pytestmark = pytest.mark.ros
CHUNK, STATUS, DIAG = "/policy/action_chunk", "/policy/status", "/diagnostics"
PICK = {"id": "g1", "skill": "pick", "object_id": 7}
#: The arm sits still with the hand open 4 cm above the cube (TCP z 0.06 m): the
#: monitor sees neither a lift (z >= 0.14) nor an empty grasp, so a pick keeps
#: running whatever this untrained policy commands.
Q_ARM = np.array([0.0, 0.4677, 0.0, -2.2122, 0.0, 2.6804, 0.7854])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """Weights from 1 demonstration and 2 training steps: it moves nowhere
    useful, but it is a real checkpoint through the real runtime."""
    tmp = tmp_path_factory.mktemp("policy")
    collect(tmp / "demos", episodes=1, skills=("pick",), progress=False)
    config = DiffusionConfig(down_dims=(16, 32), diffusion_step_embed_dim=16, n_groups=4)
    return train(tmp / "demos", tmp / "run", steps=2, batch_size=16, config=config, progress=False)


def scene_graph() -> str:
    cube = MemoryObjectMsg(
        id=7, label="red cube", color="red", shape="cube", centroid=(0.1, 0.0, 0.02),
        bbox_min=(0.08, -0.02, 0.0), bbox_max=(0.12, 0.02, 0.04), confidence=0.9,
        observations=3, first_seen=0.0, last_seen=1.0, status="visible",
    )  # fmt: skip
    return dump_payload(SceneGraphMsg(seq=1, stamp=1.0, objects=[cube], places=[], relations=[]))


class Rig:
    def __init__(self, checkpoint, **params) -> None:
        params = {"checkpoint": str(checkpoint), "device": "cpu", "torch_threads": 1, **params}
        self.node = PolicyNode([Parameter(k, value=v) for k, v in params.items()])
        rclpy.get_global_executor().add_node(self.node)  # spun with the probe
        self.probe = Probe("policy_test")
        self.probe.listen(JointTrajectory, CHUNK, COMMAND)
        self.probe.listen(String, STATUS, STATUS_QOS)  # every status, not just the last
        self.probe.listen(DiagnosticArray, DIAG)
        self.joints = self.probe.create_publisher(JointState, "/joint_states", COMMAND)
        self.goals = self.probe.create_publisher(String, "/policy/goal", COMMAND)
        self.graph = self.probe.create_publisher(String, "/memory/scene_graph", LATCHED)
        self.estop = self.probe.create_publisher(Bool, "/robot_memory/estop", LATCHED)
        self.sent: set[tuple[int, int]] = set()
        self.streaming = True
        self.probe.create_timer(0.02, self.publish_joints)  # 50 Hz
        pubs = (self.node.chunk_pub, self.joints, self.goals, self.graph, self.estop)
        spin_until(
            self.probe,
            lambda: all(p.get_subscription_count() > 0 for p in pubs) and self.statuses(),
            timeout_s=10,
            what="discovery",
        )
        self.graph.publish(String(data=scene_graph()))
        spin_until(self.probe, lambda: self.node.graph and self.node.history, 5, what="inputs")

    def publish_joints(self) -> None:
        if not self.streaming:
            return
        msg = JointState(name=list(ALL_JOINTS), position=[*Q_ARM, 0.04, 0.04])
        msg.header.stamp = self.probe.get_clock().now().to_msg()
        self.sent.add((msg.header.stamp.sec, msg.header.stamp.nanosec))
        self.joints.publish(msg)

    def goal(self, payload: dict | str) -> None:
        text = payload if isinstance(payload, str) else json.dumps(payload)
        self.goals.publish(String(data=text))

    def statuses(self) -> list[dict]:
        return [json.loads(m.data) for m in self.probe.messages[STATUS]]

    def has_status(self, **fields) -> bool:
        return any(all(s.get(k) == v for k, v in fields.items()) for s in self.statuses())

    def chunks(self) -> list[JointTrajectory]:
        return self.probe.messages[CHUNK]

    def diagnostics(self) -> dict[str, str]:
        for msg in reversed(self.probe.messages[DIAG]):
            for status in msg.status:
                if status.name.startswith("policy:"):
                    return {kv.key: kv.value for kv in status.values}
        return {}

    def close(self) -> None:
        self.node.shutdown()
        self.node.destroy_node()
        self.probe.destroy_node()


@pytest.fixture
def make_rig(checkpoint):
    rclpy.init()
    rigs: list[Rig] = []
    try:
        yield (
            lambda **params: rigs.append(Rig(params.pop("ckpt", checkpoint), **params)) or rigs[-1]
        )
        for rig in rigs:
            rig.close()
    finally:
        rclpy.shutdown()


def stamp_key(stamp: Time) -> tuple[int, int]:
    return stamp.sec, stamp.nanosec


def test_observation_window_picks_the_state_nearest_one_step_back():
    stamps = np.arange(0.0, 1.0001, 0.02)  # 50 Hz
    assert observation_indices(stamps, 0.1, 2) == [45, 50]
    assert observation_indices(stamps, 0.1, 3) == [40, 45, 50]
    assert observation_indices(np.array([3.0]), 0.1, 2) == [0, 0]  # padded


def test_a_pick_goal_grounded_in_memory_gives_contract_chunks(make_rig):
    rig = make_rig(n_action_steps=5)
    rig.goal(PICK)
    spin_until(rig.probe, lambda: len(rig.chunks()) >= 2, 10, what="two chunks")
    assert rig.has_status(goal_id="g1", state="running", skill="pick")
    for msg in rig.chunks():
        assert list(msg.joint_names) == [*ARM_JOINTS, GRIPPER_WIDTH_JOINT]
        assert stamp_key(msg.header.stamp) in rig.sent  # the observation's own stamp
        assert len(msg.points) == 5
        times = [from_time(p.time_from_start) for p in msg.points]
        # dt apart, or stretched to the arm's limits (this small test model's
        # paths are fast), never closer
        assert times[0] == 0.0 and np.all(np.diff(times) >= 0.1 - 1e-9)
        positions = np.array([p.positions for p in msg.points])
        assert positions.shape == (5, 8) and np.all(np.isfinite(positions))
        assert set(positions[:, 7]) <= {0.0, 0.08}  # the gripper is open or closed
    # chunks follow each other's stamps, one observation each
    stamps = [from_time(m.header.stamp) for m in rig.chunks()]
    assert all(b > a for a, b in itertools.pairwise(stamps))
    spin_until(rig.probe, lambda: "inference_total.latency_ms_p99" in rig.diagnostics(), 3)
    diag = rig.diagnostics()
    assert "inference_denoise.latency_ms_p50" in diag and int(diag["chunks_published"]) >= 2
    assert rig.statuses()[-1]["chunks"] >= 1


def test_bad_goals_are_refused_and_the_running_skill_goes_on(make_rig):
    rig = make_rig()
    rig.goal(PICK)
    spin_until(rig.probe, lambda: len(rig.chunks()) >= 1, 10, what="a chunk")
    rig.goal('{"id": "bad", "skill": "pick", ')
    rig.goal({"id": "g2", "skill": "pick", "object_id": 99})
    rig.goal({"id": "g3", "skill": "fly", "object_id": 7})
    spin_until(rig.probe, lambda: rig.has_status(goal_id="g3", state="failed"), 5, what="refusal")
    failed = {s["goal_id"]: s["reason"] for s in rig.statuses() if s["state"] == "failed"}
    assert failed[""].startswith("malformed json")
    assert failed["g2"] == "unknown object: memory holds no object 99"
    assert failed["g3"].startswith("invalid payload: skill")
    assert "g1" not in failed
    # after each refusal the (latched) status is the running goal's again
    spin_until(rig.probe, lambda: rig.statuses()[-1]["goal_id"] == "g1", 3, what="g1 again")
    want = {"goal malformed json": 1, "goal unknown object": 1, "goal invalid payload": 1}
    spin_until(rig.probe, lambda: rejected(rig.probe, "policy") == want, 3, what="diagnostics")
    n = len(rig.chunks())
    spin_until(rig.probe, lambda: len(rig.chunks()) > n, 5, what="chunks after bad goals")
    assert rig.statuses()[-1]["state"] == "running"
    # a new valid goal pre-empts the running one
    rig.goal({**PICK, "id": "g4"})
    spin_until(rig.probe, lambda: rig.has_status(goal_id="g4", state="running"), 5)
    assert rig.has_status(goal_id="g1", state="failed", reason="preempted by goal g4")


def test_stale_observations_never_become_chunks(make_rig):
    rig = make_rig(max_observation_age_s=0.3)
    rig.goal(PICK)
    spin_until(rig.probe, lambda: len(rig.chunks()) >= 1, 10, what="a chunk")
    rig.streaming = False
    last_sent = max(rig.sent)
    spin_until(
        rig.probe,
        lambda: int(rig.diagnostics().get("stale_chunks_dropped", 0)) >= 1,
        5,
        what="a stale chunk counted",
    )
    n = len(rig.chunks())
    spin_for(rig.probe, 1.0)
    assert len(rig.chunks()) == n  # none from the old observation
    assert all(stamp_key(m.header.stamp) <= last_sent for m in rig.chunks())
    assert rig.statuses()[-1]["state"] == "running"  # the skill waits (until its timeout)
    rig.streaming = True  # the observations come back, and so do the chunks
    spin_until(rig.probe, lambda: len(rig.chunks()) > n, 5, what="chunks again")
    assert stamp_key(rig.chunks()[-1].header.stamp) > last_sent


def test_estop_fails_the_running_skill_and_refuses_goals(make_rig):
    rig = make_rig()
    rig.goal(PICK)
    spin_until(rig.probe, lambda: len(rig.chunks()) >= 1, 10, what="a chunk")
    rig.estop.publish(Bool(data=True))
    spin_until(rig.probe, lambda: rig.has_status(goal_id="g1", state="failed"), 5, what="estop")
    assert rig.statuses()[-1]["reason"] == "estop"
    spin_for(rig.probe, 0.3)  # a chunk in flight may still land
    n = len(rig.chunks())
    rig.goal({**PICK, "id": "g2"})
    spin_until(rig.probe, lambda: rig.has_status(goal_id="g2", state="failed"), 5, what="refusal")
    assert rig.statuses()[-1]["reason"].startswith("estop active")
    spin_for(rig.probe, 1.0)
    assert len(rig.chunks()) == n
    rig.estop.publish(Bool(data=False))
    spin_until(rig.probe, lambda: not rig.node.estop, 5, what="release")
    rig.goal({**PICK, "id": "g3"})
    spin_until(rig.probe, lambda: len(rig.chunks()) > n, 10, what="chunks after release")


def test_a_missing_checkpoint_fails_goals_not_the_node(make_rig, tmp_path):
    rig = make_rig(ckpt=tmp_path / "nowhere")
    assert rig.statuses()[-1]["state"] == "idle"
    for goal_id in ("a", "b"):
        rig.goal({**PICK, "id": goal_id})
        spin_until(rig.probe, lambda g=goal_id: rig.has_status(goal_id=g, state="failed"), 5)
        assert rig.statuses()[-1]["reason"] == f"no policy checkpoint at {tmp_path / 'nowhere'}"
    spin_until(rig.probe, lambda: rejected(rig.probe, "policy") == {"goal no checkpoint": 2}, 3)
    assert not rig.chunks()


def test_a_joint_state_from_the_future_does_not_block_the_real_ones(make_rig):
    """One joint state stamped 100 s ahead would make every real one after it
    'old'; it is refused instead, and the real stream keeps the history fresh."""
    rig = make_rig()
    msg = JointState(name=list(ALL_JOINTS), position=[*Q_ARM, 0.04, 0.04])
    msg.header.stamp = (rig.probe.get_clock().now() + Duration(seconds=100)).to_msg()
    rig.joints.publish(msg)
    spin_until(
        rig.probe,
        lambda: rig.diagnostics().get("rejected.joint_states from the future") == "1",
        5,
        what="the future stamp refused",
    )
    newest = rig.node.history[-1].state.stamp
    spin_until(rig.probe, lambda: rig.node.history[-1].state.stamp > newest, 5, what="real states")
    assert rig.node.history[-1].state.stamp < rig.node.now() + 1.0
