"""The planner node over DDS (in this process, offline backend) against a canned
memory and a scripted policy (``PolicyServerTestDouble``: a ``RunSkill``
action server, a ``QueryMemory`` service and a latched scene graph).

An ``ExecuteInstruction`` goal gets feedback and a result; the plan is
published and valid, its steps go to the policy in order; a failed skill makes
a replan (a new plan with attempt 1) that ends the task; a second instruction
while one runs is rejected; cancelling an instruction cancels the running
skill and the planner takes no further step; malformed instructions end
rejected with a reason and are counted while the node keeps working;
``robot-memory say`` follows an instruction and cancels it on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable

import numpy as np
import pytest
import rclpy
from action_msgs.msg import GoalStatus
from diagnostic_msgs.msg import DiagnosticArray
from planner_test_doubles import cell_places, memory_object
from rclpy.action import ActionClient, ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from robot_memory_interfaces.action import ExecuteInstruction, RunSkill
from robot_memory_interfaces.msg import Plan as PlanMsg
from robot_memory_interfaces.msg import PlannerStatus, SceneGraph
from robot_memory_interfaces.srv import QueryMemory

from robot_memory.nodes.memory_conversions import scene_graph_to_msg
from robot_memory.nodes.planner_conversions import plan_from_msg, planner_status_from_msg
from robot_memory.nodes.planner_node import PlannerNode
from robot_memory.nodes.qos import LATCHED, STATUS
from robot_memory.nodes.query_conversions import answer_to_response
from robot_memory.nodes.skill_conversions import skill_goal_from_msg, skill_result
from robot_memory.planner.plan import Plan, PlannerStatusMsg
from robot_memory.schemas import MemoryAnswer, PolicyGoalMsg, SceneGraphMsg
from ros_helpers import TIMEOUT_SCALE, Probe, rejected, wait_until

pytestmark = pytest.mark.ros
CUBE = 7
START = (0.1, -0.1, 0.025)
TASK = "put the red cube in the bin"


def wait_for(predicate: Callable[[], object], timeout_s: float, what: str) -> None:
    """Poll ``predicate`` (the nodes spin on their own threads) until it holds."""
    wait_until(predicate, timeout_s, what=what)


class PolicyServerTestDouble:
    """Stands in for memory and the policy: a scene graph at 5 Hz (stamped now,
    like the memory node), ``/memory/query`` answered ok with no rows, and a
    ``RunSkill`` server that succeeds each goal (or fails it, ``fail[skill]``
    times; or, for a skill in ``hold``, runs until ``release`` or a cancel);
    a successful place moves the object into the place in that graph."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.goals: list[PolicyGoalMsg] = []
        self.ended: list[tuple[str, str]] = []  # (skill, final state)
        self.fail: dict[str, int] = {}
        self.hold: set[str] = set()
        self.release = threading.Event()
        self.cancel_seen = 0.0  # time.monotonic() a held skill saw its cancel
        self.graph_pub = node.create_publisher(SceneGraph, "/memory/scene_graph", LATCHED)
        node.create_service(QueryMemory, "/memory/query", self.on_query)
        self.server = ActionServer(
            node,
            RunSkill,
            "/policy/run_skill",
            execute_callback=self.execute,
            goal_callback=lambda _goal: GoalResponse.ACCEPT,
            cancel_callback=lambda _handle: CancelResponse.ACCEPT,
            callback_group=ReentrantCallbackGroup(),
        )
        node.create_timer(0.2, self.publish_graph)
        self.reset()

    def reset(self) -> None:
        self.objects = {CUBE: memory_object(CUBE, "red cube", START, status="visible")}
        self.goals.clear()
        self.ended.clear()
        self.hold.clear()
        self.release.clear()
        self.seq = 0

    def now(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    def publish_graph(self) -> None:
        self.seq += 1
        graph = SceneGraphMsg(
            seq=self.seq,
            stamp=self.now(),
            objects=list(self.objects.values()),
            places=cell_places(),
            relations=[],
        )
        self.graph_pub.publish(scene_graph_to_msg(graph))

    def on_query(self, request: QueryMemory.Request, response: QueryMemory.Response):
        answer = MemoryAnswer(id="q", kind=request.kind, ok=True, stamp=self.now())
        return answer_to_response(answer)

    def execute(self, handle) -> RunSkill.Result:
        goal = skill_goal_from_msg(handle.request, str(uuid.UUID(bytes=bytes(handle.goal_id.uuid))))
        self.goals.append(goal)
        handle.publish_feedback(RunSkill.Feedback(phase="approach", chunks=1))
        if goal.skill in self.hold:
            deadline = time.monotonic() + 30 * TIMEOUT_SCALE
            while not (handle.is_cancel_requested or self.release.is_set()):
                assert time.monotonic() < deadline, "held skill never released"
                time.sleep(0.01)
            if handle.is_cancel_requested:
                self.cancel_seen = time.monotonic()
                self.ended.append((goal.skill, "canceled"))
                handle.canceled()
                return skill_result("canceled", "cancelled")
        if self.fail.get(goal.skill, 0) > 0:
            self.fail[goal.skill] -= 1
            self.ended.append((goal.skill, "failed"))
            handle.abort()
            return skill_result("failed", "test double: grasp missed")
        if goal.skill == "place" and goal.object_id is not None:
            place = next(p for p in cell_places() if p.id == goal.target)
            centre = (np.asarray(place.bbox_min) + np.asarray(place.bbox_max)) / 2
            obj = self.objects[goal.object_id]
            self.objects[obj.id] = memory_object(obj.id, obj.label, centre, status="visible")
        self.ended.append((goal.skill, "succeeded"))
        handle.succeed()
        return skill_result("succeeded", chunks=3)


class GoalRun:
    """One ExecuteInstruction goal as a client sees it."""

    def __init__(self, client: ActionClient, text: str, memoryless: bool = False) -> None:
        self.feedback: list[ExecuteInstruction.Feedback] = []
        goal = ExecuteInstruction.Goal(text=text, memoryless=memoryless)
        sent = client.send_goal_async(goal, feedback_callback=self._on_feedback)
        wait_for(sent.done, 10, f"the goal response to {text!r}")
        self.handle = sent.result()
        self.accepted = bool(self.handle.accepted)
        self._result = self.handle.get_result_async() if self.accepted else None

    def _on_feedback(self, msg) -> None:
        self.feedback.append(msg.feedback)

    def result(self, timeout_s: float = 30.0) -> ExecuteInstruction.Result:
        assert self._result is not None
        wait_for(self._result.done, timeout_s, "the instruction's result")
        return self._result.result().result

    @property
    def status(self) -> int:
        assert self._result is not None and self._result.done()
        return self._result.result().status


class Rig:
    def __init__(self, tmp_path) -> None:
        params = {
            "experience_path": str(tmp_path / "experience.json"),
            "skill_timeout_s": 10.0,
            "refresh_timeout_s": 2.0,
            "query_timeout_s": 1.0,
        }
        self.node = PlannerNode([Parameter(k, value=v) for k, v in params.items()])
        self.probe = Probe("planner_test")
        self.probe.listen(PlanMsg, "/planner/plan", STATUS)
        self.probe.listen(PlannerStatus, "/planner/status", STATUS)
        self.probe.listen(DiagnosticArray, "/diagnostics")
        self.policy = PolicyServerTestDouble(self.probe)
        self.client = ActionClient(self.probe, ExecuteInstruction, "/planner/execute")
        self.executor = MultiThreadedExecutor(num_threads=6)
        for node in (self.node, self.probe):
            self.executor.add_node(node)
        self.spinner = threading.Thread(target=self.executor.spin, daemon=True)
        self.spinner.start()
        wait_for(
            lambda: (
                self.client.server_is_ready()
                and self.node.skills.client.server_is_ready()
                and self.node.memory.scene_graph() is not None
                and self.statuses()
            ),
            15,
            "discovery",
        )
        self.node.embedder.encode(["warm up"])  # the text model, before timing anything

    def reset_world(self) -> None:
        """The cube back at its start, and the planner has seen it there."""
        self.policy.reset()
        self.policy.publish_graph()

        def seen() -> bool:
            graph = self.node.memory.scene_graph()
            return graph is not None and graph.objects[0].centroid == START

        wait_for(seen, 5, "the reset scene")

    def plans(self) -> list[Plan]:
        return [plan_from_msg(m) for m in list(self.probe.messages["/planner/plan"])]

    def statuses(self) -> list[PlannerStatusMsg]:
        msgs = list(self.probe.messages["/planner/status"])
        return [planner_status_from_msg(m) for m in msgs]

    def final(self, instruction: str) -> PlannerStatusMsg | None:
        for s in reversed(self.statuses()):
            if s.instruction == instruction and s.state in ("succeeded", "failed", "rejected"):
                return s
        return None

    def start(self, text: str, memoryless: bool = False, hold: tuple[str, ...] = ()) -> GoalRun:
        """Send ``text`` on a reset world; the policy holds the skills in ``hold``."""
        self.probe.messages["/planner/status"].clear()
        self.probe.messages["/planner/plan"].clear()
        self.reset_world()
        self.policy.hold.update(hold)
        return GoalRun(self.client, text, memoryless)

    def close(self) -> None:
        self.policy.release.set()
        self.node.shutdown()
        self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
        self.probe.destroy_node()


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    rclpy.init()
    r = Rig(tmp_path_factory.mktemp("planner"))
    yield r
    r.close()
    rclpy.try_shutdown()


def test_an_instruction_goal_gets_feedback_and_a_result(rig: Rig) -> None:
    run = rig.start(TASK)
    assert run.accepted
    result = run.result()
    assert result.success and result.state == "succeeded", result
    assert run.status == GoalStatus.STATUS_SUCCEEDED
    plan = plan_from_msg(result.plan)
    assert plan.backend == "offline" and plan.attempt == 0
    assert [(s.skill, s.object_id, s.target) for s in plan.steps] == [
        ("pick", CUBE, ""),
        ("place", CUBE, "bin"),
    ]
    (published,) = rig.plans()
    assert published == plan
    skills = [(g.skill, g.object_id, g.target) for g in rig.policy.goals]
    # the place is verified: the wrist camera looks at the bin, memory is read
    assert skills == [("pick", CUBE, ""), ("place", CUBE, "bin"), ("look", None, "bin")]
    assert len({g.id for g in rig.policy.goals}) == 3  # one goal id each
    states = [s.state for s in rig.statuses()]
    assert states.index("planning") < states.index("executing") < states.index("succeeded")
    # feedback on every state change (and the skill's phase), with the plan
    fb = [f.state for f in run.feedback]
    assert fb[0] == "planning" and "executing" in fb and "verifying" in fb, fb
    steps = [f for f in run.feedback if f.state == "executing"]
    assert {f.step for f in steps} == {0, 1} and all(f.n_steps == 2 for f in steps)
    assert all(f.plan.id == plan.id for f in steps)
    assert any("approach" in f.message for f in run.feedback)
    assert max(f.progress for f in run.feedback) <= 1.0


def test_a_question_is_answered_in_the_result(rig: Rig) -> None:
    result = rig.start("where is the red cube?").result()
    assert result.success and result.state == "answered", result
    assert result.answer and result.answer == result.plan.answer
    assert rig.policy.goals == []  # nothing moved


def test_a_failed_skill_makes_a_new_plan_with_attempt_1(rig: Rig) -> None:
    rig.policy.fail = {"pick": 1}
    run = rig.start(TASK)
    result = run.result()
    assert result.state == "succeeded", [s.message for s in rig.statuses()]
    assert [p.attempt for p in rig.plans()] == [0, 1]
    assert any(s.state == "replanning" for s in rig.statuses())
    assert any(f.state == "replanning" for f in run.feedback)
    assert run.feedback[-1].replans == 1
    skills = [g.skill for g in rig.policy.goals]
    assert skills[0] == "pick"  # failed
    assert skills[1:] == ["look", "pick", "place", "look"]  # the replan: look again, retry
    values = diagnostics(rig)
    assert int(values["replans"]) >= 1 and int(values["failures"]) == 0


def test_a_second_instruction_while_one_runs_is_rejected(rig: Rig) -> None:
    busy_before = rejected(rig.probe, "planner").get("busy", 0)
    first = rig.start(TASK, hold=("pick",))
    wait_for(lambda: "pick" in [g.skill for g in rig.policy.goals], 20, "the first pick")
    second = GoalRun(rig.client, "put the red cube on the table")
    assert not second.accepted
    wait_for(lambda: rig.final("put the red cube on the table"), 5, "the busy status")
    assert rig.final("put the red cube on the table").reason == "busy"
    rig.policy.release.set()
    assert first.result().state == "succeeded"
    wait_for(lambda: rejected(rig.probe, "planner").get("busy", 0) == busy_before + 1, 5, "counted")
    assert rig.start(TASK).result().state == "succeeded"  # free again


def test_cancelling_an_instruction_cancels_the_running_skill(rig: Rig) -> None:
    run = rig.start(TASK, hold=("pick",))  # (a replan earlier taught a look before it)
    wait_for(lambda: "pick" in [g.skill for g in rig.policy.goals], 20, "the pick")
    t0 = time.monotonic()
    cancel = run.handle.cancel_goal_async()
    wait_for(cancel.done, 5, "the cancel response")
    assert len(cancel.result().goals_canceling) == 1
    result = run.result(10)
    assert result.state == "canceled" and not result.success, result
    assert run.status == GoalStatus.STATUS_CANCELED
    assert rig.policy.ended[-1] == ("pick", "canceled")  # cancelled on the policy
    latency = rig.policy.cancel_seen - t0
    print(f"instruction cancel -> skill cancel seen by the policy: {1000 * latency:.0f} ms")
    assert latency < 1.0
    time.sleep(0.5)  # nothing follows: no further step, no replan
    assert [g.skill for g in rig.policy.goals][-1] == "pick"
    assert len(rig.plans()) == 1
    assert rig.statuses()[-1].state == "canceled"
    assert rig.start(TASK).result().state == "succeeded"  # and the planner goes on


def test_bad_instructions_end_rejected_with_a_reason_and_are_counted(rig: Rig) -> None:
    for text, memoryless, reason in (
        ("   ", False, "empty instruction"),
        ("x" * 1001, False, "instruction too long"),
        (TASK, True, "memoryless refused"),  # allow_memoryless is not set
    ):
        result = rig.start(text, memoryless).result(10)
        assert (result.state, result.reason, result.success) == ("rejected", reason, False)
    assert rig.policy.goals == []
    wait_for(
        lambda: rejected(rig.probe, "planner").get("memoryless refused") == 1, 5, "diagnostics"
    )
    assert rig.start(TASK).result().state == "succeeded"


def say(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "robot_memory.cli", "say", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip


def test_say_sends_an_instruction_and_follows_it_to_the_end(rig: Rig) -> None:
    """``robot-memory say`` as a user runs it: a separate process over DDS."""
    rig.reset_world()
    proc = say("--timeout", "60", *TASK.split())
    out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 0, out
    # (an earlier test's failed pick may have taught a look before the pick)
    assert ". pick #7" in out and ". place #7 -> bin" in out
    assert "[say] succeeded" in out


def test_ctrl_c_in_say_cancels_the_instruction_and_its_skill(rig: Rig) -> None:
    rig.reset_world()
    rig.policy.hold.add("pick")
    proc = say("--timeout", "60", *TASK.split())
    wait_for(lambda: "pick" in [g.skill for g in rig.policy.goals], 60, "the pick")
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130, out
    assert "[say] canceled" in out, out
    assert rig.policy.ended[-1] == ("pick", "canceled")
    wait_for(lambda: rig.statuses()[-1].state == "canceled", 5, "the canceled status")


def test_say_without_a_planner_says_so() -> None:
    env = {
        **os.environ,
        "ROS_DOMAIN_ID": str((int(os.environ.get("ROS_DOMAIN_ID", "0")) + 7) % 100),
    }
    proc = say("--timeout", "3", "hello", env=env)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "no planner" in out and "/planner/execute" in out


def diagnostics(rig: Rig) -> dict[str, str]:
    rig.probe.messages["/diagnostics"].clear()
    wait_for(lambda: rig.probe.messages["/diagnostics"], 5, "diagnostics")
    for msg in reversed(rig.probe.messages["/diagnostics"]):
        for status in msg.status:
            if status.name.startswith("planner:"):
                return {kv.key: kv.value for kv in status.values}
    return {}


def test_the_look_before_a_retry_opens_a_hand_that_closed_on_nothing() -> None:
    """A replan looks before the second pick; after a missed grasp the fingers
    are shut, and a pick must start open as every demonstrated one did: the
    look's chunks open such a hand and leave a holding hand as it is."""
    from robot_memory.nodes.policy_helpers import look_message
    from robot_memory.policy.look_skill import LookDriver
    from robot_memory.robot.arm_model import panda_arm_model
    from robot_memory.robot.ik import ArmIK
    from robot_memory.robot.panda import GRIPPER_WIDTH_JOINT, HOME_ARM, HOME_GRIPPER_WIDTH

    driver = LookDriver(ArmIK(panda_arm_model()))
    goal = PolicyGoalMsg(id="look", skill="look", target_position=(0.2, 0.05, 0.0))
    stamp = rclpy.time.Time(seconds=10).to_msg()
    for width, opened in ((0.001, True), (0.03, False), (0.08, False)):
        motion = driver.start(goal, None, np.asarray(HOME_ARM), width, 10.0)
        msg = look_message(motion, stamp, 10.0)
        assert (GRIPPER_WIDTH_JOINT in msg.joint_names) is opened
        if opened:
            assert all(p.positions[-1] == HOME_GRIPPER_WIDTH for p in msg.points)
        assert all(len(p.positions) == len(msg.joint_names) for p in msg.points)
