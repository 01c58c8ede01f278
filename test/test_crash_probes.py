"""Nothing on the wire kills a node (issues 13 and 14), on the typed contract.

The sim, expert, perception, memory, planner and policy nodes run as separate
processes over real DDS (started once, together). Every typed input gets
out-of-range values (NaN, inf, 1e300, mismatched array lengths, unknown
status codes, 100,000-element arrays, 100,000-character strings) and raw
truncated CDR bytes; the memory service bad queries and a reset the
real-stack default refuses; the planner's and the policy's actions bad goals
(each ends rejected with a reason, and the policy publishes no chunk). Then
every node is still the same process, still answers (memory a query, the
planner an instruction, the policy a goal, the expert a task; the sim still
publishes joint states, perception observations) and /diagnostics counts the
rejections under typed reasons, none under "internal error".
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from uuid import uuid4

import pytest
import rclpy
from builtin_interfaces.msg import Duration, Time
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Point, TransformStamped
from rclpy.action import ActionClient
from rclpy.serialization import serialize_message
from robot_memory_interfaces.action import ExecuteInstruction, RunSkill
from robot_memory_interfaces.msg import (
    CameraView,
    ExpertStatus,
    ExpertTask,
    GroundTruth,
    GroundTruthObject,
    MemoryObject,
    ObservationFrame,
    ObservedObject,
    SceneGraph,
    SimReset,
)
from robot_memory_interfaces.srv import QueryMemory
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger
from tf2_msgs.msg import TFMessage
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint
from unique_identifier_msgs.msg import UUID

from robot_memory.bringup.launch_spec import (
    expert_node,
    memory_node,
    perception_node,
    planner_node,
    policy_node,
    sim_node,
)
from robot_memory.bringup.launcher import Launcher
from robot_memory.nodes.qos import COMMAND, LATCHED, SENSOR, TF, TF_STATIC
from ros_helpers import TIMEOUT_SCALE, BackgroundSpin, Probe, rejected, wait_until

pytestmark = pytest.mark.ros

NODES = ("sim", "expert", "perception", "memory", "planner", "policy")
NAN, HUGE = float("nan"), 1e300
ARM = [f"panda_joint{i}" for i in range(1, 8)]
LONG = "x" * 100_000


def far_points(n: int) -> list[Point]:
    return [Point(x=float(i), y=0.0, z=0.0) for i in range(n)]


def point(positions: list[float]) -> JointTrajectoryPoint:
    """A trajectory point 1 s after the start."""
    return JointTrajectoryPoint(positions=positions, time_from_start=Duration(sec=1))


def topic_probes() -> dict[tuple[type, str], list]:
    """(type, topic) -> out-of-range messages for it."""
    nan_obj = ObservedObject(label="red cube", color="red", shape="cube", confidence=0.9)
    nan_obj.centroid.x = NAN
    bad_view = CameraView(depth_rows=10, depth_cols=10, depth_mm=[1, 2, 3])
    crowd = ObservedObject(label="red cube", color="red", shape="cube", points=far_points(100_000))
    bad_status = MemoryObject(id=1, label="red cube", status=7)
    bad_votes = MemoryObject(id=2, label="red cube", vote_labels=["a", "b"], vote_weights=[1.0])
    nan_truth = GroundTruthObject(id="red_cube", kind="object", label="red cube")
    nan_truth.pose.position.z = NAN
    nan_tf = TransformStamped(child_frame_id="front_color_optical_frame")
    nan_tf.header.frame_id = "world"
    nan_tf.transform.translation.x = NAN
    zero_q = TransformStamped(child_frame_id="wrist_color_optical_frame")
    zero_q.header.frame_id, zero_q.transform.rotation.w = "world", 0.0
    cam = "/camera/front"
    return {
        (JointTrajectory, "/arm_controller/joint_trajectory"): [
            JointTrajectory(joint_names=ARM, points=[point([NAN] * 7)]),
            JointTrajectory(joint_names=["elbow_joint"], points=[point([HUGE])]),
            JointTrajectory(joint_names=ARM, points=[point([0.1] * 3)]),
            JointTrajectory(joint_names=ARM, points=[JointTrajectoryPoint(positions=[0.1] * 7)]),
        ],
        (Float64MultiArray, "/gripper_controller/commands"): [
            Float64MultiArray(data=[HUGE]),
            Float64MultiArray(data=[]),
            Float64MultiArray(data=[NAN]),
        ],
        (JointState, "/joint_states"): [
            JointState(name=["panda_joint1", "x"], position=[NAN]),
            JointState(name=["elbow_joint"], position=[HUGE]),
            JointState(name=ARM, position=[NAN] * 7),
        ],
        (GroundTruth, "/sim/ground_truth"): [GroundTruth(objects=[nan_truth])],
        (ExpertTask, "/expert/task"): [ExpertTask(object_id=LONG, place_id="bin")],
        (Image, f"{cam}/color/image_raw"): [
            Image(height=10_000, width=10_000, encoding="rgb8", step=1, data=b"\x00" * 10)
        ],
        (Image, f"{cam}/aligned_depth_to_color/image_raw"): [
            Image(height=120, width=160, encoding="bgr8", step=480, data=b"\x00" * 10)
        ],
        (CameraInfo, f"{cam}/color/camera_info"): [CameraInfo(k=[0.0] * 9)],
        (TFMessage, "/tf"): [TFMessage(transforms=[nan_tf]), TFMessage(transforms=[zero_q])],
        (ObservationFrame, "/perception/observations"): [
            ObservationFrame(camera="front", objects=[nan_obj]),
            ObservationFrame(camera="front", view=bad_view),
            ObservationFrame(camera="front", objects=[crowd]),
            ObservationFrame(camera=LONG),
        ],
        (SceneGraph, "/memory/scene_graph"): [
            SceneGraph(objects=[bad_status]),
            SceneGraph(objects=[bad_votes]),
        ],
    }


def qos_of(topic: str):
    return {"/tf": TF, "/tf_static": TF_STATIC, "/memory/scene_graph": LATCHED}.get(
        topic, SENSOR if topic.startswith("/camera/") else COMMAND
    )


def truncated(msg_type: type) -> bytes:
    """A default message of ``msg_type`` serialized, cut in half (raw CDR)."""
    raw = serialize_message(msg_type())
    return raw[: max(1, len(raw) // 2)]


def skill_goal(
    skill: str,
    object_id: int | None = None,
    target: str = "",
    position: tuple[float, float, float] | None = None,
    yaw: float | None = None,
) -> RunSkill.Goal:
    goal = RunSkill.Goal(skill=skill, target=target)
    goal.object_id = [] if object_id is None else [object_id]
    goal.target_position = (
        [] if position is None else [Point(x=p[0], y=p[1], z=p[2]) for p in [position]]
    )
    goal.goal_yaw = [] if yaw is None else [yaw]
    return goal


BAD_SKILLS = {
    "unknown skill": skill_goal("dance", position=(0.1, 0.0, 0.05)),
    "NaN position": skill_goal("look", position=(NAN, 0.0, 0.05)),
    "yaw 1e300": skill_goal("look", position=(0.1, 0.0, 0.05), yaw=HUGE),
    "look 5 m under the table": skill_goal("look", position=(0.1, 0.0, -5.0)),
    "pick 30 m away": skill_goal("pick", position=(30.0, 0.0, 0.05)),
    "unknown object id": skill_goal("pick", object_id=999_999),
    "place with no target": skill_goal("place"),
    "100,000-character target": skill_goal("place", target=LONG),
}
BAD_INSTRUCTIONS = {
    "empty": ExecuteInstruction.Goal(text="   "),
    "100,000 characters": ExecuteInstruction.Goal(text=LONG),
    "memoryless (resets memory)": ExecuteInstruction.Goal(text="where is it", memoryless=True),
}
BAD_QUERIES = {
    "unknown kind": QueryMemory.Request(kind="bogus"),
    "top_k 2^32-1": QueryMemory.Request(kind="find", text="red", top_k=2**32 - 1),
    "100,000-character text": QueryMemory.Request(kind="find", text=LONG),
    "nanosec out of range": QueryMemory.Request(
        kind="changed_since", since=[Time(sec=-(2**31), nanosec=2**32 - 1)]
    ),
}


class Caller:
    """Service calls and action goals from the probe node, one at a time."""

    def __init__(self, probe: Probe, check: Callable[[], None], log: io.StringIO) -> None:
        self.probe, self.check, self.log = probe, check, log
        self.query = probe.create_client(QueryMemory, "/memory/query")
        self.reset = probe.create_client(Trigger, "/memory/reset")
        self.planner = ActionClient(probe, ExecuteInstruction, "/planner/execute")
        self.policy = ActionClient(probe, RunSkill, "/policy/run_skill")
        self.feedback: list = []

    def ready(self) -> bool:
        return all(
            (
                self.query.service_is_ready(),
                self.reset.service_is_ready(),
                self.planner.server_is_ready(),
                self.policy.server_is_ready(),
            )
        )

    def wait(self, future, what: str, timeout_s: float = 60.0):
        def told() -> str:  # at the deadline: what the nodes said last
            return f"{what}\n--- the nodes' output, last lines ---\n{self.log.getvalue()[-4000:]}"

        wait_until(future.done, timeout_s, check=self.check, what=told)
        return future.result()

    def call(self, client, request, what: str):
        return self.wait(client.call_async(request), what)

    def send(self, client: ActionClient, goal, what: str):
        """The goal's handle. Unanswered for 5 s, the request goes again with
        the same goal id, as ``robot-memory say`` does (a request can be lost
        on the wire; the server runs a goal id once)."""
        uuid = UUID(uuid=list(uuid4().bytes))
        sent = [client.send_goal_async(goal, self.feedback.append, goal_uuid=uuid)]
        deadline = time.monotonic() + 60.0 * TIMEOUT_SCALE
        resend_at = time.monotonic() + 5.0
        while not any(f.done() for f in sent) and time.monotonic() < deadline:
            self.check()
            if time.monotonic() >= resend_at:
                sent.append(client.send_goal_async(goal, self.feedback.append, goal_uuid=uuid))
                resend_at = time.monotonic() + 5.0
            time.sleep(0.02)
        # a refusal may be a copy's (the id is held: the original was accepted);
        # wait for every answer, or an acceptance, before reading a refusal (each
        # request is answered; on a loaded machine the original's can come late)
        settle = max(deadline, time.monotonic() + 5.0 * TIMEOUT_SCALE)
        while time.monotonic() < settle and not all(f.done() for f in sent):
            if any(f.done() and f.result().accepted for f in sent):
                break
            time.sleep(0.02)
        done = [f.result() for f in sent if f.done()]
        if not done:
            return self.wait(sent[0], what, 0.0)  # fails, with the nodes' output
        return next((h for h in done if h.accepted), done[0])

    def goal(self, client: ActionClient, goal, what: str, timeout_s: float = 60.0):
        """(accepted, result or None)."""
        handle = self.send(client, goal, f"{what}: accepted")
        if not handle.accepted:
            return False, None
        return True, self.wait(handle.get_result_async(), f"{what}: result", timeout_s).result

    def start(self, client: ActionClient, goal, what: str):
        handle = self.send(client, goal, f"{what}: accepted")
        assert handle.accepted, what
        return handle


def test_crash_probes_reject_counted_and_every_node_keeps_answering(tmp_path):
    log = io.StringIO()
    specs = [
        sim_node().with_parameters(
            {"camera_rate": 2.0, "image_width": 160, "image_height": 120, "cameras": ["front"]}
        ),
        expert_node(),
        perception_node(use_sim_time=True, cameras=["front"], use_robot_mask=False),
        memory_node(
            use_sim_time=True,
            store_path=str(tmp_path / "memory.sqlite"),
            preload_embedder=False,
            publish_period_s=0.1,
        ),  # the real-stack default: allow_remote_reset false
        planner_node(use_sim_time=True, experience_path=str(tmp_path / "experience.json")),
        policy_node(use_sim_time=True, compile=False),
    ]  # planner: allow_memoryless false (the real-stack default)
    rclpy.init()
    probe = Probe("crash_probe")
    probe.listen(DiagnosticArray, "/diagnostics", 200)
    probe.listen(JointState, "/joint_states", COMMAND)
    probe.listen(ObservationFrame, "/perception/observations", COMMAND)
    probe.listen(ExpertStatus, "/expert/status", LATCHED)
    probe.listen(JointTrajectory, "/policy/action_chunk", COMMAND)
    probes = topic_probes()
    pubs = {key: probe.create_publisher(key[0], key[1], qos_of(key[1])) for key in probes}
    pubs[(SimReset, "/sim/reset")] = probe.create_publisher(SimReset, "/sim/reset", COMMAND)
    pubs[(TFMessage, "/tf_static")] = probe.create_publisher(TFMessage, "/tf_static", TF_STATIC)
    launcher = Launcher(specs, output=log)
    launcher.start()
    caller = Caller(probe, launcher.check, log)
    spinner = BackgroundSpin(probe)
    try:
        # -- ready: every node reports on /diagnostics and listens to its inputs ----------
        def reporting() -> set[str]:
            names = {s.name.split(":")[0] for m in probe.messages["/diagnostics"] for s in m.status}
            return names & set(NODES)

        wait_until(
            lambda: (
                reporting() == set(NODES)
                and all(p.get_subscription_count() > 0 for p in pubs.values())
                and caller.ready()
                and probe.messages["/joint_states"]
            ),
            timeout_s=150,
            check=launcher.check,
            what="all six nodes up, reporting, subscribed and serving",
        )
        pids = launcher.pids()

        # -- the probes on topics: out of range, then truncated CDR --------------------
        def send_topic_probes() -> int:
            count = 0
            for key, messages in probes.items():
                for msg in messages:
                    pubs[key].publish(msg)
                    count += 1
                time.sleep(0.1)  # pacing: the nodes' queues are 10 deep
            for (msg_type, _topic), pub in pubs.items():
                pub.publish(truncated(msg_type))
                count += 1
            return count

        sent = send_topic_probes()

        # -- services and actions: each bad request answered with a reason ----------------
        for what, request in BAD_QUERIES.items():
            answer = caller.call(caller.query, request, f"query {what}")
            assert not answer.ok and answer.error, f"query {what}: {answer}"
            sent += 1
        reset = caller.call(caller.reset, Trigger.Request(), "/memory/reset")
        assert not reset.success and "refused" in reset.message, reset
        sent += 1
        chunks_before = len(probe.messages["/policy/action_chunk"])
        for what, goal in BAD_SKILLS.items():
            accepted, result = caller.goal(caller.policy, goal, f"skill {what}")
            assert accepted and result.state == "rejected" and result.reason, (what, result)
            assert not result.success and result.chunks == 0, (what, result)
            sent += 1
        for what, goal in BAD_INSTRUCTIONS.items():
            accepted, result = caller.goal(caller.planner, goal, f"instruction {what}")
            assert accepted and result.state == "rejected" and result.reason, (what, result)
            sent += 1
        print(f"{sent} probes sent")

        # -- rejections counted on /diagnostics ------------------------------------------
        expected = {
            "sim": [
                *("non-finite value", "unknown joint", "malformed point", "non-increasing time"),
                *("gripper width out of limits", "malformed gripper command"),
                "non-finite gripper width",
            ],
            "expert": ["invalid payload"],  # joint states: see perception and policy
            "perception": [
                *("malformed image", "unsupported encoding", "bad intrinsics"),
                *("malformed transform", "malformed joint_states"),
            ],
            "memory": ["invalid payload", "invalid stamp", "remote reset refused"],
            "planner": [
                *("empty instruction", "instruction too long", "memoryless refused"),
                "scene graph invalid payload",
            ],
            "policy": [
                *("goal invalid payload", "goal target out of workspace", "goal unknown object"),
                *("goal no target", "malformed joint_states", "scene graph invalid payload"),
            ],
        }

        def missing() -> dict[str, list[str]]:
            out = {}
            for node, reasons in expected.items():
                got = rejected(probe, node)
                lack = [r for r in reasons if got.get(r, 0) < 1]
                if lack:
                    out[node] = lack
            return out

        # Topics keep the last N messages: under load a probe can be overwritten
        # before the node takes it (the sim's /joint_states at 10 deep, memory's
        # 10 Hz graph on a depth-1 latched topic). A probe that never reached a
        # callback proves nothing, so the topic probes go out again while a
        # reason is still uncounted; a received probe must still be counted.
        resend_at = [time.monotonic() + 5.0]

        def all_counted() -> bool:
            if not missing():
                return True
            if time.monotonic() > resend_at[0]:
                send_topic_probes()
                resend_at[0] = time.monotonic() + 5.0
            return False

        probe.messages["/diagnostics"].clear()
        wait_until(
            all_counted,
            timeout_s=60,
            check=launcher.check,
            what=lambda: f"every rejection counted (still missing: {missing()})",
        )
        got_chunks = probe.messages["/policy/action_chunk"][chunks_before:]
        assert not [c for c in got_chunks if c.points], "a rejected goal moved the arm"
        assert rejected(probe, "expert")["invalid payload"] >= 2  # NaN truth, 100 kB id
        assert rejected(probe, "memory")["invalid payload"] >= 7  # 4 frames, 3 queries

        # -- still the same processes, still answering ---------------------------------
        launcher.check()
        assert launcher.pids() == pids, "a node was restarted"
        for key in ("/joint_states", "/perception/observations"):
            probe.messages[key].clear()
        graph = caller.call(caller.query, QueryMemory.Request(kind="graph"), "a graph query")
        assert graph.ok, graph.error
        _, answer = caller.goal(
            caller.planner, ExecuteInstruction.Goal(text="where is the red cube"), "a question"
        )
        assert answer.state != "rejected", answer
        caller.feedback.clear()
        look = caller.start(caller.policy, skill_goal("look", position=(0.1, 0.0, 0.05)), "look")
        pubs[(ExpertTask, "/expert/task")].publish(
            ExpertTask(object_id="no_such_thing", place_id="bin")
        )

        def alive() -> dict[str, bool]:
            expert = probe.messages["/expert/status"]
            return {
                "policy": bool(caller.feedback),
                "expert": any("no_such_thing" in s.reason for s in expert),
                "sim": len(probe.messages["/joint_states"]) > 10,
                "perception": bool(probe.messages["/perception/observations"]),
            }

        wait_until(
            lambda: all(alive().values()),
            timeout_s=60,
            check=launcher.check,
            what=lambda: f"every node answering ({alive()})",
        )
        caller.wait(look.cancel_goal_async(), "the look's cancel")
        launcher.check()
        assert launcher.pids() == pids
        counts = {node: rejected(probe, node) for node in NODES}
        print(f"{len(pids)} nodes alive and answering after {sent} probes; rejected: {counts}")
        internal = {n: [r for r in c if "internal error" in r] for n, c in counts.items()}
        assert not any(internal.values()), f"untyped failures: {internal}\n{log.getvalue()}"
    finally:
        launcher.shutdown()
        spinner.stop()
        probe.destroy_node()
        rclpy.try_shutdown()
