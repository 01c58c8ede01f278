"""Nothing on the wire kills a node (issue 13).

The sim, expert, perception, memory, planner and policy nodes run as separate
processes over real DDS (started once, together). Every String input of every
node gets the crash probes (100,000-deep JSON nesting inside a valid-looking
payload, a 5,000-digit integer, invalid UTF-8, 10 MB, wrong types, NaN / inf /
1e300, an empty string, a JSON array, ...), the typed inputs out-of-range
values, and /memory/reset a reset the real-stack default refuses. Then every
node is still the same process, still answers (memory a query, the planner an
instruction, the policy a goal, the expert a task; the sim still publishes
joint states, perception observations) and /diagnostics shows the rejections.
"""

from __future__ import annotations

import contextlib
import io
import json

import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Empty, Float64MultiArray, String
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from robot_memory.camera_sync import CameraSync
from robot_memory.diagnostics_core import HealthCounters
from robot_memory.launch_spec import (
    expert_node,
    memory_node,
    perception_node,
    planner_node,
    policy_node,
    sim_node,
)
from robot_memory.launcher import Launcher
from robot_memory.nodes.input_boundary import InputBoundary
from robot_memory.nodes.planner_node import STATUS_QOS, parse_instruction
from robot_memory.nodes.qos import COMMAND, LATCHED, SENSOR
from robot_memory.planner.plan import PlannerStatusMsg
from robot_memory.planner.validation import PlanValidationError, parse_plan
from robot_memory.schemas import (
    ExpertStatus,
    MemoryAnswer,
    MemoryQuery,
    ObservationFrameMsg,
    Payload,
    PayloadError,
    PolicyGoalMsg,
    PolicyStatusMsg,
    SceneGraphMsg,
    parse_payload,
    payload_id,
)
from ros_helpers import Probe, rejected, spin_for, spin_until

pytestmark = pytest.mark.ros

NODES = ("sim", "expert", "perception", "memory", "planner", "policy")
#: every std_msgs/String input of these nodes, with its QoS
STRING_INPUTS = {
    "/sim/reset": COMMAND,
    "/expert/task": COMMAND,
    "/sim/ground_truth": COMMAND,
    "/perception/observations": 50,
    "/memory/query": COMMAND,
    "/planner/instruction": COMMAND,
    "/memory/answer": COMMAND,
    "/policy/status": STATUS_QOS,
    "/memory/scene_graph": LATCHED,
    "/policy/goal": COMMAND,
}
HEAD = '{"schema_version": 1, "id": "probe", "seed": 1, "kind": "find", "x": '
DEEP = HEAD + "[" * 100_000 + "]" * 100_000 + "}"
BIG_INT = '{"schema_version": 1, "id": "probe", "seed": ' + "9" * 5000 + "}"
HUGE = '{"schema_version": 1, "id": "' + "x" * 10_000_000 + '"}'
PROBES = [
    HUGE,
    DEEP,
    BIG_INT,
    "",
    "[1, 2, 3]",
    "null",
    '"just a string"',
    "{not json",
    '{"schema_version": 1, "id": 5, "kind": [1], "seed": "x", "objects": {}}',
    '{"schema_version": 1, "id": "n", "seed": NaN, "stamp": Infinity, "goal_yaw": 1e300}',
    '{"schema_version": 1, "id": "' + "[" * 900 + '"}',
    '{"schema_version": 1, "id": "d", "results": [' + "[" * 900 + "]" * 900 + "]}",
    "{" * 50_000,
]


def invalid_utf8() -> bytes:
    """A serialized std_msgs/String whose bytes are not UTF-8 (sent raw)."""
    raw = serialize_message(String(data='{"id": "abcd"}'))
    return raw.replace(b"abcd", b"\xff\xfe\x80\xc3")


def typed_probes(probe: Probe) -> list[tuple[object, object]]:
    """(publisher, message) pairs of out-of-range typed inputs."""
    nan = float("nan")
    pubs = {
        "joints": probe.create_publisher(JointState, "/joint_states", COMMAND),
        "traj": probe.create_publisher(JointTrajectory, "/arm_controller/joint_trajectory", 10),
        "grip": probe.create_publisher(Float64MultiArray, "/gripper_controller/commands", 10),
        "info": probe.create_publisher(CameraInfo, "/camera/front/color/camera_info", SENSOR),
        "pose": probe.create_publisher(PoseStamped, "/camera/front/pose", SENSOR),
        "image": probe.create_publisher(Image, "/camera/front/color/image_raw", SENSOR),
    }
    bad_names = JointState(name=["panda_joint1", "x"], position=[nan])
    no_arm = JointState(name=["elbow_joint"], position=[1e300])
    nan_traj = JointTrajectory(
        joint_names=[f"panda_joint{i}" for i in range(1, 8)],
        points=[JointTrajectoryPoint(positions=[nan] * 7)],
    )
    unknown = JointTrajectory(
        joint_names=["elbow_joint"], points=[JointTrajectoryPoint(positions=[1e300])]
    )
    bad_image = Image(height=10_000, width=10_000, encoding="rgb8", step=1, data=b"\x00" * 10)
    bad_pose = PoseStamped()
    bad_pose.pose.position.x = nan
    return [
        (pubs["joints"], bad_names),
        (pubs["joints"], no_arm),
        (pubs["traj"], nan_traj),
        (pubs["traj"], unknown),
        (pubs["traj"], JointTrajectory()),
        (pubs["grip"], Float64MultiArray(data=[1e300])),
        (pubs["grip"], Float64MultiArray(data=[])),
        (pubs["info"], CameraInfo(k=[0.0] * 9)),
        (pubs["pose"], bad_pose),
        (pubs["image"], bad_image),
    ]


def valid(probe: Probe, topic: str, model: type[Payload]) -> list:
    """The messages on ``topic`` that are ``model`` (the probes' own junk is not)."""
    out = []
    for msg in probe.messages[topic]:
        with contextlib.suppress(PayloadError):
            out.append(parse_payload(model, msg.data))
    return out


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
    ]
    rclpy.init()
    probe = Probe("crash_probe")
    for topic, qos in (
        ("/diagnostics", 200),
        ("/joint_states", COMMAND),
        ("/memory/answer", COMMAND),
        ("/planner/status", STATUS_QOS),
        ("/policy/status", STATUS_QOS),
        ("/expert/status", LATCHED),
        ("/perception/observations", COMMAND),
    ):
        probe.listen(DiagnosticArray if topic == "/diagnostics" else _type(topic), topic, qos)
    pubs = {t: probe.create_publisher(String, t, q) for t, q in STRING_INPUTS.items()}
    reset_pub = probe.create_publisher(Empty, "/memory/reset", COMMAND)
    typed = typed_probes(probe)
    launcher = Launcher(specs, output=log)
    launcher.start()
    try:
        # -- ready: every node reports on /diagnostics and listens to its inputs ----------
        def reporting() -> set[str]:
            return {
                s.name.split(":")[0]
                for m in probe.messages["/diagnostics"]
                for s in m.status
                if s.name.split(":")[0] in NODES
            }

        spin_until(
            probe,
            lambda: (
                reporting() == set(NODES)
                and all(p.get_subscription_count() > 0 for p in pubs.values())
                and reset_pub.get_subscription_count() > 0
                and valid(probe, "/policy/status", PolicyStatusMsg)
                and probe.messages["/joint_states"]
            ),
            timeout_s=150,
            check=launcher.check,
            what="all six nodes up, reporting and subscribed",
        )
        pids = launcher.pids()

        # -- the probes ------------------------------------------------------------------
        sent = 0
        for text in PROBES:
            for pub in pubs.values():
                pub.publish(String(data=text))
                sent += 1
            spin_for(probe, 0.1)  # pacing: the nodes' queues are 10 deep
        for pub in pubs.values():
            pub.publish(invalid_utf8())
            sent += 1
        goal = {"schema_version": 1, "skill": "look"}
        bad_goals = [
            {**goal, "id": "yaw", "target_position": [0.1, 0.0, 0.05], "goal_yaw": 1e300},
            {**goal, "id": "low", "target_position": [0.1, 0.0, -5.0]},
            {**goal, "id": "far", "skill": "pick", "target_position": [30.0, 0.0, 0.05]},
        ]
        for g in bad_goals:
            pubs["/policy/goal"].publish(String(data=json.dumps(g)))
            sent += 1
        memoryless = {"text": "where is the red cube", "id": "m", "memoryless": True}
        pubs["/planner/instruction"].publish(String(data=json.dumps(memoryless)))
        reset_pub.publish(Empty())
        sent += 2
        for pub, msg in typed:
            pub.publish(msg)
            sent += 1
        print(f"{sent} probes sent")

        # -- rejections counted on /diagnostics ------------------------------------------
        expected = {
            "sim": ["malformed json", "payload too large", "invalid payload"],
            "expert": ["malformed json", "invalid payload"],
            "memory": ["malformed json", "payload too large", "remote reset refused"],
            "planner": [
                "malformed json",
                "memoryless refused",
                "scene graph malformed json",
                "answer malformed json",
                "policy status malformed json",
            ],
            "policy": [
                "goal malformed json",
                "goal invalid payload",
                "goal target out of workspace",
                "scene graph malformed json",
            ],
            "perception": ["bad intrinsics"],
        }

        def missing() -> dict[str, list[str]]:
            out = {}
            for node, reasons in expected.items():
                got = rejected(probe, node)
                lack = [r for r in reasons if got.get(r, 0) < 1]
                if lack:
                    out[node] = lack
            return out

        probe.messages["/diagnostics"].clear()
        spin_until(
            probe,
            lambda: not missing(),
            timeout_s=60,
            check=launcher.check,
            what=f"every rejection counted (still missing: {missing()})",
        )
        assert rejected(probe, "memory")["malformed json"] >= 5

        # -- still the same processes, still answering ---------------------------------
        launcher.check()
        assert launcher.pids() == pids, "a node was restarted"
        answered = valid(probe, "/policy/status", PolicyStatusMsg)
        refusals = {s.goal_id: s.reason for s in answered if s.state == "failed"}
        assert "invalid payload" in refusals.get("yaw", ""), refusals
        assert "target out of workspace" in refusals.get("low", ""), refusals
        assert "target out of workspace" in refusals.get("far", ""), refusals
        planner = valid(probe, "/planner/status", PlannerStatusMsg)
        assert any(s.reason == "memoryless refused" for s in planner), planner[-3:]

        for key in ("/joint_states", "/perception/observations", "/policy/status"):
            probe.messages[key].clear()
        query = {"schema_version": 1, "id": "alive", "kind": "graph"}
        pubs["/memory/query"].publish(String(data=json.dumps(query)))
        question = "where is the red cube"
        pubs["/planner/instruction"].publish(String(data=question))
        pubs["/policy/goal"].publish(
            String(data=json.dumps({**goal, "id": "ok", "target_position": [0.1, 0.0, 0.05]}))
        )
        pubs["/expert/task"].publish(
            String(data=json.dumps({"object_id": "no_such_thing", "place_id": "bin"}))
        )

        busy_seen = [0]

        def alive() -> dict[str, bool]:
            answers = valid(probe, "/memory/answer", MemoryAnswer)
            mine = [s for s in valid(probe, "/planner/status", PlannerStatusMsg)]
            mine = [s for s in mine if s.instruction == question]
            busy = sum(s.reason == "busy" for s in mine)
            if busy > busy_seen[0]:  # still planning a junk text probe: ask again
                busy_seen[0] = busy
                pubs["/planner/instruction"].publish(String(data=question))
            policy = valid(probe, "/policy/status", PolicyStatusMsg)
            expert = valid(probe, "/expert/status", ExpertStatus)
            return {
                "memory": any(a.id == "alive" and a.ok for a in answers),
                "planner": any(s.state != "rejected" for s in mine),
                "policy": any(s.goal_id == "ok" and s.state == "running" for s in policy),
                "expert": any("no_such_thing" in s.reason for s in expert),
                "sim": len(probe.messages["/joint_states"]) > 10,
                "perception": bool(valid(probe, "/perception/observations", ObservationFrameMsg)),
            }

        spin_until(
            probe,
            lambda: all(alive().values()),
            timeout_s=60,
            check=launcher.check,
            what=f"every node answering ({alive()})",
        )
        launcher.check()
        assert launcher.pids() == pids
        counts = {node: rejected(probe, node) for node in NODES}
        print(f"{len(pids)} nodes alive and answering after {sent} probes; rejected: {counts}")
        internal = {n: [r for r in c if "internal error" in r] for n, c in counts.items()}
        assert not any(internal.values()), f"untyped failures: {internal}\n{log.getvalue()}"
    finally:
        launcher.shutdown()
        probe.destroy_node()
        rclpy.try_shutdown()


def _type(topic: str) -> type:
    return {"/joint_states": JointState}.get(topic, String)


# -- the pieces, without DDS --------------------------------------------------------------
@pytest.mark.parametrize("text", [*PROBES, b"\xff\xfe", 5, None], ids=lambda t: repr(t)[:30])
def test_every_probe_is_a_payload_error_never_anything_else(text):
    for model in (MemoryQuery, SceneGraphMsg, PolicyGoalMsg, MemoryAnswer):
        with pytest.raises(PayloadError):
            parse_payload(model, text)
    assert isinstance(payload_id(text), str) and len(payload_id(text)) <= 128


def test_a_huge_integer_and_deep_nesting_are_malformed_json():
    assert _reason(BIG_INT) == "malformed json"
    assert _reason(DEEP) == "malformed json"
    assert _reason(HUGE) == "payload too large"
    with pytest.raises(PlanValidationError) as err:
        parse_plan('{"steps": ' + "[" * 100 + "]" * 100 + "}")
    assert err.value.reason == "malformed json"


def test_memoryless_instructions_are_refused_unless_allowed():
    text = json.dumps({"text": "put the red cube in the bin", "memoryless": True})
    assert parse_instruction(text).memoryless
    with pytest.raises(PayloadError) as err:
        parse_instruction(text, allow_memoryless=False)
    assert err.value.reason == "memoryless refused"


def test_camera_sync_counts_every_frame_dropped_for_lack_of_a_pose():
    drops: list[str] = []
    sync = CameraSync("front", on_drop=lambda reason, _detail: drops.append(reason))
    sync.set_info("K")
    for i in range(30):  # the poses stop
        sync.add_color(i * 0.1, "c")
        sync.add_depth(i * 0.1, "d")
    assert drops == ["missing pose"] * 27  # the last 0.3 s may still get theirs
    for i in range(30, 33):
        sync.add_color(i * 0.1, "c")
        sync.add_depth(i * 0.1, "d")
        assert sync.add_pose(i * 0.1, "p") is not None
    assert drops == ["missing pose"] * 30


class _Logger:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def warning(self, text: str) -> None:
        self.lines.append(text)

    error = warning


class _Node:
    def __init__(self) -> None:
        self.logger = _Logger()

    def get_name(self) -> str:
        return "fake"

    def get_logger(self) -> _Logger:
        return self.logger


def test_the_boundary_counts_typed_and_unexpected_failures_and_logs_them_throttled():
    node = _Node()
    boundary = InputBoundary(node, HealthCounters("fake"))  # type: ignore[arg-type]

    def handler(msg: str) -> None:
        if msg == "typed":
            raise PayloadError("malformed json", "x")
        raise KeyError(msg)

    guarded = boundary.guard("/t", handler, prefix="t ")
    for msg in ["typed", "typed", "boom", "boom", "boom"]:
        guarded(msg)  # never raises
    health = boundary.health
    assert health.rejected("t malformed json") == 2
    assert health.rejected("/t: internal error (KeyError)") == 3
    tracebacks = [line for line in node.logger.lines if "Traceback" in line]
    assert len(tracebacks) == 1  # once per reason
    assert len(node.logger.lines) == 3  # one line per reason within the second, + the trace


def _reason(text: str) -> str:
    with pytest.raises(PayloadError) as err:
        parse_payload(MemoryQuery, text)
    return err.value.reason
