"""The policy node over DDS (in this process), on a tiny checkpoint trained here,
driven through the RunSkill action (a real ActionClient): a pick goal grounded
in the scene graph gives contract-shaped action chunks stamped with an
observation we sent, feedback (phase, chunks) and a result; malformed or
out-of-range goals are rejected with a reason, counted, and nothing is
executed while the running skill goes on; a new goal pre-empts; a cancel stops
the skill at once (an empty trajectory, status and result canceled); stale
observations never become chunks; the e-stop fails the skill; a missing
checkpoint rejects goals instead of ending the node."""

from __future__ import annotations

import itertools
import math
import threading

import numpy as np
import pytest
import rclpy
from action_msgs.msg import GoalStatus
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Point
from rclpy.action import ActionClient
from rclpy.duration import Duration
from rclpy.parameter import Parameter
from robot_memory_interfaces.action import RunSkill
from robot_memory_interfaces.msg import PolicyStatus, SceneGraph
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from trajectory_msgs.msg import JointTrajectory

from robot_memory.learning.demonstrations import collect
from robot_memory.learning.training import train
from robot_memory.nodes.conversions import from_time
from robot_memory.nodes.executors import PatientMultiThreadedExecutor
from robot_memory.nodes.memory_conversions import scene_graph_to_msg
from robot_memory.nodes.policy_node import EXECUTOR_THREADS, PolicyNode
from robot_memory.nodes.qos import COMMAND, LATCHED, STATUS
from robot_memory.nodes.skill_conversions import policy_status_from_msg
from robot_memory.policy.configuration_diffusion import DiffusionConfig
from robot_memory.policy.runtime import observation_indices
from robot_memory.robot.panda import ALL_JOINTS, ARM_JOINTS, GRIPPER_WIDTH_JOINT
from robot_memory.schemas import MemoryObjectMsg, SceneGraphMsg
from ros_helpers import Probe, rejected, spin_for, spin_until

pytestmark = pytest.mark.ros
CHUNK, STATUS_TOPIC, DIAG = "/policy/action_chunk", "/policy/status", "/diagnostics"
#: The arm sits still with the hand open 4 cm above the cube (TCP z 0.06 m): the
#: monitor sees neither a lift (z >= 0.14) nor an empty grasp, so a pick keeps
#: running whatever this untrained policy commands.
Q_ARM = np.array([0.0, 0.4677, 0.0, -2.2122, 0.0, 2.6804, 0.7854])


def goal_msg(skill: str = "pick", object_id: int | None = 7, target: str = "",
             position: tuple | None = None, yaw: float | None = None) -> RunSkill.Goal:  # fmt: skip
    msg = RunSkill.Goal(skill=skill, target=target)
    if object_id is not None:
        msg.object_id = [object_id]
    if position is not None:
        msg.target_position = [Point(x=position[0], y=position[1], z=position[2])]
    if yaw is not None:
        msg.goal_yaw = [yaw]
    return msg


PICK = goal_msg()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """Weights from 1 demonstration and 2 training steps: it moves nowhere
    useful, but it is a real checkpoint through the real runtime."""
    tmp = tmp_path_factory.mktemp("policy")
    collect(tmp / "demos", episodes=1, skills=("pick",), progress=False)
    config = DiffusionConfig(down_dims=(16, 32), diffusion_step_embed_dim=16, n_groups=4)
    return train(tmp / "demos", tmp / "run", steps=2, batch_size=16, config=config, progress=False)


def scene_graph() -> SceneGraph:
    cube = MemoryObjectMsg(
        id=7, label="red cube", color="red", shape="cube", centroid=(0.1, 0.0, 0.02),
        bbox_min=(0.08, -0.02, 0.0), bbox_max=(0.12, 0.02, 0.04), confidence=0.9,
        observations=3, first_seen=0.0, last_seen=1.0, status="visible",
    )  # fmt: skip
    graph = SceneGraphMsg(seq=1, stamp=1.0, objects=[cube], places=[], relations=[])
    return scene_graph_to_msg(graph)


class Sent:
    """One goal sent through the action client: its handle, feedback and result."""

    def __init__(self, rig: Rig, goal: RunSkill.Goal) -> None:
        self.rig = rig
        self.feedback: list[RunSkill.Feedback] = []
        future = rig.client.send_goal_async(goal, lambda m: self.feedback.append(m.feedback))
        spin_until(rig.probe, future.done, 10, what="the goal response")
        self.handle = future.result()
        assert self.handle.accepted  # every goal is accepted; bad ones end rejected
        self.id = bytes(self.handle.goal_id.uuid).hex()
        self._result = self.handle.get_result_async()

    def done(self) -> bool:
        return self._result.done()

    def result(self, timeout_s: float = 10.0) -> tuple[int, RunSkill.Result]:
        """(goal status, result) once it ended."""
        spin_until(self.rig.probe, self._result.done, timeout_s, what="the result")
        answer = self._result.result()
        return answer.status, answer.result

    def cancel(self) -> None:
        future = self.handle.cancel_goal_async()
        spin_until(self.rig.probe, future.done, 5, what="the cancel response")
        assert len(future.result().goals_canceling) == 1


class Rig:
    def __init__(self, checkpoint, **params) -> None:
        params = {"checkpoint": str(checkpoint), "device": "cpu", "torch_threads": 1, **params}
        self.node = PolicyNode([Parameter(k, value=v) for k, v in params.items()])
        # as spin_node runs it: execute callbacks wait in pool threads
        self.executor = PatientMultiThreadedExecutor(num_threads=EXECUTOR_THREADS)
        self.executor.add_node(self.node)
        self.spinner = threading.Thread(target=self.executor.spin, daemon=True)
        self.spinner.start()
        self.probe = Probe("policy_test")
        self.probe.listen(JointTrajectory, CHUNK, COMMAND)
        self.probe.listen(PolicyStatus, STATUS_TOPIC, STATUS)  # every status, not just the last
        self.probe.listen(DiagnosticArray, DIAG)
        self.client = ActionClient(self.probe, RunSkill, "/policy/run_skill")
        self.joints = self.probe.create_publisher(JointState, "/joint_states", COMMAND)
        self.graph = self.probe.create_publisher(SceneGraph, "/memory/scene_graph", LATCHED)
        self.estop = self.probe.create_publisher(Bool, "/robot_memory/estop", LATCHED)
        self.sent: set[tuple[int, int]] = set()
        self.streaming = True
        self.probe.create_timer(0.02, self.publish_joints)  # 50 Hz
        pubs = (self.node.chunk_pub, self.joints, self.graph, self.estop)

        def undiscovered() -> list[str]:
            missing = [p.topic_name for p in pubs if not p.get_subscription_count()]
            missing += [] if self.client.server_is_ready() else ["the run_skill server"]
            return missing + ([] if self.statuses() else ["a status"])

        try:
            spin_until(
                self.probe,
                lambda: not undiscovered(),
                timeout_s=10,
                what=lambda: f"discovery (missing: {', '.join(undiscovered())})",
            )
        except AssertionError:
            # Now and then (2 of 3 CI runs on 2026-12-08, each once) the client
            # never matches the action server's endpoints in 30 s although every
            # topic of the same node was discovered: a fresh client's endpoints
            # are matched anew. Only discovery is waited for again, nothing the
            # tests assert; a server that is really missing fails here as before.
            if undiscovered() != ["the run_skill server"]:
                raise
            self.client.destroy()
            self.client = ActionClient(self.probe, RunSkill, "/policy/run_skill")
            spin_until(
                self.probe,
                self.client.server_is_ready,
                timeout_s=10,
                what="the run_skill server, with a fresh client",
            )
        self.graph.publish(scene_graph())
        spin_until(
            self.probe, lambda: self.node.graph and self.node.skill_run.newest, 5, what="inputs"
        )

    def publish_joints(self) -> None:
        if not self.streaming:
            return
        msg = JointState(name=list(ALL_JOINTS), position=[*Q_ARM, 0.04, 0.04])
        msg.header.stamp = self.probe.get_clock().now().to_msg()
        self.sent.add((msg.header.stamp.sec, msg.header.stamp.nanosec))
        self.joints.publish(msg)

    def goal(self, goal: RunSkill.Goal = PICK) -> Sent:
        """Send ``goal`` once the node's newest joint state is fresh (on a loaded
        machine the probe's 50 Hz stream can stall past the node's 0.5 s limit,
        and the goal would be rejected for "no robot state")."""
        spin_until(self.probe, self.fresh, 5, what="a fresh joint state at the node")
        return Sent(self, goal)

    def fresh(self) -> bool:
        with self.node._lock:
            state = self.node.skill_run.newest
            newest = state.stamp if state is not None else -np.inf
        return self.node.now() - newest < 0.1

    def statuses(self) -> list[dict]:
        return [policy_status_from_msg(m).model_dump() for m in self.probe.messages[STATUS_TOPIC]]

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
        self.node.shutdown()  # ends waiting goals
        self.executor.shutdown(timeout_sec=10.0)  # the spin thread ends before destroys
        self.spinner.join(timeout=10.0)
        self.client.destroy()
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


def test_a_pick_goal_gives_contract_chunks_feedback_and_a_result(make_rig):
    rig = make_rig(n_action_steps=5, timeout_s=4.0)
    goal = rig.goal(PICK)
    spin_until(rig.probe, lambda: len(rig.chunks()) >= 2, 10, what="two chunks")
    assert rig.has_status(goal_id=goal.id, state="running", skill="pick")
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
    # feedback: the phase and the chunks so far, each time one of them changed
    spin_until(rig.probe, lambda: any(f.chunks >= 2 for f in goal.feedback), 5, what="feedback")
    assert goal.feedback[0].phase == "start" and goal.feedback[0].chunks == 0
    assert {f.phase for f in goal.feedback[1:]} <= {"approach", "grasp", "lift"}
    pairs = [(f.phase, f.chunks) for f in goal.feedback]
    assert all(a != b for a, b in itertools.pairwise(pairs))
    assert [f.chunks for f in goal.feedback] == sorted(f.chunks for f in goal.feedback)
    # the arm never lifts: the monitor's timeout ends it, failed, with a result
    status, result = goal.result(timeout_s=15)
    assert status == GoalStatus.STATUS_ABORTED
    assert (result.success, result.state) == (False, "failed")
    assert result.reason == "timed out after 4 s" and result.chunks >= 2
    # /policy/status is another topic than the result: it may come after it
    spin_until(rig.probe, lambda: rig.statuses()[-1]["state"] == "failed", 5, what="failed")
    assert rig.statuses()[-1]["goal_id"] == goal.id
    spin_until(rig.probe, lambda: "inference_total.latency_ms_p99" in rig.diagnostics(), 3)
    diag = rig.diagnostics()
    assert "inference_denoise.latency_ms_p50" in diag and int(diag["chunks_published"]) >= 2


BAD_GOALS = {
    "unknown object": goal_msg(object_id=99),
    "nan position": goal_msg(object_id=None, position=(math.nan, 0.0, 0.02)),
    "out of the workspace": goal_msg(object_id=None, position=(5.0, 0.0, 0.02)),
    "unknown skill": goal_msg(skill="fly"),
    "yaw out of bounds": goal_msg(yaw=100.0),
    "look at nothing": goal_msg(skill="look", object_id=None),
}
REASONS = {
    "unknown object": "unknown object: memory holds no object 99",
    "nan position": "invalid payload: target_position.0: Input should be a finite number",
    "out of the workspace": "target out of workspace: pick target at [5.0, 0.0, 0.02] not in",
    "unknown skill": "invalid payload: skill: Input should be 'pick', 'place' or 'look'",
    "yaw out of bounds": "invalid payload: goal_yaw: Input should be less than or equal to",
    "look at nothing": "no target: look needs target, object_id or target_position",
}
COUNTED = {
    "goal unknown object": 1,
    "goal invalid payload": 3,
    "goal target out of workspace": 1,
    "goal no target": 1,
}


def test_malformed_and_out_of_range_goals_are_rejected_and_nothing_runs(make_rig):
    rig = make_rig()
    for name, goal in BAD_GOALS.items():
        status, result = rig.goal(goal).result()
        assert status == GoalStatus.STATUS_ABORTED, name
        assert (result.success, result.state, result.chunks) == (False, "rejected", 0), name
        assert result.reason.startswith(REASONS[name]), (name, result.reason)
    spin_until(rig.probe, lambda: rejected(rig.probe, "policy") == COUNTED, 3, what="diagnostics")
    assert {s["state"] for s in rig.statuses()} == {"idle", "failed"}
    spin_for(rig.probe, 0.5)
    assert not rig.chunks()  # nothing executed


def test_bad_goals_leave_the_running_skill_alone_and_a_new_goal_preempts(make_rig):
    rig = make_rig()
    first = rig.goal(PICK)
    spin_until(rig.probe, lambda: len(rig.chunks()) >= 1, 10, what="a chunk")
    for goal in BAD_GOALS.values():
        assert rig.goal(goal).result()[1].state == "rejected"
    assert not first.done()
    # after each refusal the (latched) status is the running goal's again
    spin_until(rig.probe, lambda: rig.statuses()[-1]["goal_id"] == first.id, 3, what="again")
    n = len(rig.chunks())
    spin_until(rig.probe, lambda: len(rig.chunks()) > n, 5, what="chunks after bad goals")
    assert rig.statuses()[-1]["state"] == "running"
    # a new valid goal pre-empts the running one
    second = rig.goal(PICK)
    status, result = first.result()
    assert status == GoalStatus.STATUS_ABORTED
    assert (result.success, result.state, result.reason) == (False, "canceled", "preempted")
    spin_until(rig.probe, lambda: rig.has_status(goal_id=second.id, state="running"), 5)
    assert rig.has_status(goal_id=first.id, state="canceled", reason="preempted")
    assert not second.done()


def test_a_cancel_stops_the_skill_at_once_with_an_empty_chunk(make_rig):
    rig = make_rig()
    goal = rig.goal(PICK)
    spin_until(rig.probe, lambda: len(rig.chunks()) >= 2, 10, what="chunks")
    goal.cancel()
    status, result = goal.result()
    assert status == GoalStatus.STATUS_CANCELED
    assert (result.success, result.state, result.reason) == (False, "canceled", "cancel requested")
    spin_until(rig.probe, lambda: not rig.chunks()[-1].points, 3, what="the stop")
    stop = rig.chunks()[-1]
    assert list(stop.joint_names) == [*ARM_JOINTS, GRIPPER_WIDTH_JOINT]
    # the status is another topic than the result and the chunk: it may come after them
    canceled = {"goal_id": goal.id, "state": "canceled", "reason": "cancel requested"}
    spin_until(rig.probe, lambda: rig.has_status(**canceled), 3, what="the canceled status")
    n = len(rig.chunks())
    spin_for(rig.probe, 1.0)
    assert len(rig.chunks()) == n  # nothing after the stop (an inference in flight is dropped)
    assert result.chunks == n - 1


def test_a_look_goal_moves_the_wrist_camera_and_cancels_like_a_pick(make_rig):
    rig = make_rig()
    goal = rig.goal(goal_msg(skill="look", object_id=None, position=(0.2, 0.05, 0.0)))
    spin_until(rig.probe, lambda: rig.chunks(), 5, what="the look's chunk")
    assert list(rig.chunks()[0].joint_names) == list(ARM_JOINTS)  # the hand stays as it is
    spin_until(rig.probe, lambda: goal.feedback, 5, what="feedback")
    assert (goal.feedback[0].phase, goal.feedback[0].chunks) == ("move", 0)
    running = {"goal_id": goal.id, "state": "running", "skill": "look"}
    spin_until(rig.probe, lambda: rig.has_status(**running), 3, what="the running status")
    goal.cancel()
    status, result = goal.result()
    assert status == GoalStatus.STATUS_CANCELED and result.state == "canceled"
    spin_until(rig.probe, lambda: not rig.chunks()[-1].points, 3, what="the stop")
    canceled = {"goal_id": goal.id, "state": "canceled", "skill": "look"}
    spin_until(rig.probe, lambda: rig.has_status(**canceled), 3, what="the canceled status")


def test_stale_observations_never_become_chunks(make_rig):
    rig = make_rig(max_observation_age_s=0.3)
    goal = rig.goal(PICK)
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
    assert rig.statuses()[-1]["state"] == "running" and not goal.done()  # waits (until timeout)
    rig.streaming = True  # the observations come back, and so do the chunks
    spin_until(rig.probe, lambda: len(rig.chunks()) > n, 5, what="chunks again")
    assert stamp_key(rig.chunks()[-1].header.stamp) > last_sent


def test_estop_fails_the_running_skill_and_rejects_goals(make_rig):
    rig = make_rig()
    goal = rig.goal(PICK)
    spin_until(rig.probe, lambda: len(rig.chunks()) >= 1, 10, what="a chunk")
    rig.estop.publish(Bool(data=True))
    status, result = goal.result()
    assert (status, result.state, result.reason) == (GoalStatus.STATUS_ABORTED, "failed", "estop")
    spin_for(rig.probe, 0.3)  # a chunk in flight may still land
    n = len(rig.chunks())
    _, result = rig.goal(PICK).result()
    assert result.state == "rejected" and result.reason.startswith("estop active")
    spin_for(rig.probe, 1.0)
    assert len(rig.chunks()) == n
    rig.estop.publish(Bool(data=False))
    spin_until(rig.probe, lambda: not rig.node.estop, 5, what="release")
    rig.goal(PICK)
    spin_until(rig.probe, lambda: len(rig.chunks()) > n, 10, what="chunks after release")


def test_a_missing_checkpoint_rejects_goals_not_the_node(make_rig, tmp_path):
    rig = make_rig(ckpt=tmp_path / "nowhere")
    assert rig.statuses()[-1]["state"] == "idle"
    for _ in range(2):
        goal = rig.goal(PICK)
        _, result = goal.result()
        assert result.state == "rejected"
        assert result.reason == f"no checkpoint: no policy checkpoint at {tmp_path / 'nowhere'}"
        spin_until(rig.probe, lambda g=goal: rig.has_status(goal_id=g.id, state="failed"), 5)
        assert rig.statuses()[-1]["reason"] == result.reason  # the status says what the result does
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
    newest = rig.node.skill_run.newest.stamp
    spin_until(rig.probe, lambda: rig.node.skill_run.newest.stamp > newest, 5, what="real states")
    assert rig.node.skill_run.newest.stamp < rig.node.now() + 1.0
