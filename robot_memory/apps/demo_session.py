"""Driving the whole sim stack over ROS 2 for the demo and the stack test.

:class:`StackDriver` is a node that watches the stack (joint states, the front
camera, ground truth, memory, planner, policy) and does what a person at the
robot would: look over the table (``look`` goals on the policy's
``/policy/run_skill`` action), bring the arm home (a joint trajectory through
the safety node, like a chunk), pick an object no camera has seen since the
arm came home (checked against ``/sim/ground_truth``), and give the planner an
instruction (a goal on its ``/planner/execute`` action), following
``/planner/status``. Ground truth is read only to choose and check, never by
the stack. Every message is typed; the node layer's conversion modules turn
them into the core's models.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import rclpy
from rclpy.action import ActionClient
from rclpy.node import Node
from rclpy.task import Future
from robot_memory_interfaces import msg as rmi
from robot_memory_interfaces.action import ExecuteInstruction, RunSkill
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from robot_memory.nodes.conversions import camera_image_topics, from_time, image_to_numpy
from robot_memory.nodes.input_boundary import InputBoundary
from robot_memory.nodes.memory_conversions import scene_graph_from_msg
from robot_memory.nodes.planner_conversions import plan_from_msg, planner_status_from_msg
from robot_memory.nodes.policy_helpers import look_message
from robot_memory.nodes.qos import COMMAND, LATCHED, SENSOR, STATUS
from robot_memory.nodes.sim_conversions import ground_truth_from_msg, sim_reset_to_msg
from robot_memory.nodes.skill_conversions import policy_status_from_msg, skill_goal_to_msg
from robot_memory.perception import image_messages
from robot_memory.planner.plan import Plan, PlannerStatusMsg
from robot_memory.policy.look_skill import (
    LOOK_POINTS,
    LookConfig,
    LookDriver,
    LookMotion,
    look_trajectory,
)
from robot_memory.robot.panda import ARM_JOINTS, HOME_ARM
from robot_memory.schemas import (
    GroundTruth,
    PolicyGoalMsg,
    PolicyStatusMsg,
    SceneGraphMsg,
    SimReset,
)
from robot_memory.sim.task import SPAWN_X, SPAWN_Y

#: Objects the policy can pick with yaw 0 (robot_memory.tasks.scenes.GRASPABLE).
GRASPABLE = ("red_cube", "blue_cylinder", "green_sphere", "purple_prism")
#: The middle of the area objects spawn in (and picks were demonstrated over).
SPAWN_MIDDLE = np.array([sum(SPAWN_X) / 2, sum(SPAWN_Y) / 2])


@dataclass
class Timeline:
    t0: float = field(default_factory=time.monotonic)
    events: list[tuple[float, str]] = field(default_factory=list)

    def mark(self, text: str) -> None:
        self.events.append((time.monotonic() - self.t0, text))


class StackDriver(Node):
    def __init__(
        self,
        on_frame: Callable[[np.ndarray], None] | None = None,
        wrist: bool = False,
        image_transport: str = "raw",
    ) -> None:
        """``on_frame`` gets every front camera image; ``wrist``: keep the
        latest wrist camera image too (``wrist_frame``); ``image_transport``:
        the sim's (raw Image or compressed CompressedImage topics)."""
        super().__init__("demo_driver")
        self.on_frame = on_frame
        self.frame: np.ndarray | None = None
        self.wrist_frame: np.ndarray | None = None
        self.caption = ""  # what the demo is doing, for the video
        self.q: np.ndarray | None = None
        self.q_stamp = None
        self.truth: GroundTruth | None = None
        self.graph: SceneGraphMsg | None = None
        self.plans: list[Plan] = []
        self.statuses: list[PlannerStatusMsg] = []
        self.policy: PolicyStatusMsg | None = None
        self.inputs = InputBoundary(self)  # a bad message is logged, never the end of the demo
        sub = self.inputs.subscribe
        sub(JointState, "/joint_states", self._on_joints, COMMAND)
        front = camera_image_topics("front", image_transport)
        sub(front.kind, front.color, self._on_image, SENSOR)
        if wrist:
            wrist_topics = camera_image_topics("wrist", image_transport)
            sub(wrist_topics.kind, wrist_topics.color, self._on_wrist_image, SENSOR)
        on_truth = self._set("truth", ground_truth_from_msg)
        sub(rmi.GroundTruth, "/sim/ground_truth", on_truth, COMMAND)
        on_graph = self._set("graph", scene_graph_from_msg)
        sub(rmi.SceneGraph, "/memory/scene_graph", on_graph, LATCHED)
        on_policy = self._set("policy", policy_status_from_msg)
        sub(rmi.PolicyStatus, "/policy/status", on_policy, STATUS)
        sub(rmi.Plan, "/planner/plan", lambda m: self.plans.append(plan_from_msg(m)), STATUS)
        on_status = lambda m: self.statuses.append(planner_status_from_msg(m))  # noqa: E731
        sub(rmi.PlannerStatus, "/planner/status", on_status, STATUS)
        self.skill_client = ActionClient(self, RunSkill, "/policy/run_skill")
        self.planner_client = ActionClient(self, ExecuteInstruction, "/planner/execute")
        self.forget_client = self.create_client(Trigger, "/memory/reset")
        self.chunk_pub = self.create_publisher(JointTrajectory, "/policy/action_chunk", COMMAND)
        self.reset_pub = self.create_publisher(rmi.SimReset, "/sim/reset", COMMAND)
        self.check: Callable[[], None] = lambda: None  # e.g. Launcher.check
        self.deadline = float("inf")
        self.t_home = 0.0

    # -- inputs --------------------------------------------------------------------
    def _on_joints(self, msg: JointState) -> None:
        names = list(msg.name)
        if all(n in names for n in ARM_JOINTS):
            self.q = np.array([msg.position[names.index(n)] for n in ARM_JOINTS])
            self.q_stamp = msg.header.stamp

    def _on_image(self, msg: Image | CompressedImage) -> None:
        self.frame = _color(msg)
        if self.on_frame is not None:
            self.on_frame(self.frame)

    def _on_wrist_image(self, msg: Image | CompressedImage) -> None:
        self.wrist_frame = _color(msg)

    def _set(self, attr: str, convert: Callable[[Any], Any]) -> Callable[[Any], None]:
        """A callback that converts a message (a PayloadError is counted and
        logged by the input boundary) and keeps it as ``attr``."""

        def callback(msg: Any) -> None:
            setattr(self, attr, convert(msg))

        return callback

    # -- waiting -------------------------------------------------------------------
    def spin_until(self, predicate: Callable[[], object], what: str) -> None:
        while not predicate():
            self.check()
            if time.monotonic() > self.deadline:
                raise TimeoutError(f"timed out while {what}")
            rclpy.spin_once(self, timeout_sec=0.05)

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        self.spin_until(lambda: time.monotonic() >= end, "waiting")

    def sim_now(self) -> float:
        return from_time(self.q_stamp) if self.q_stamp is not None else 0.0

    def ready(self) -> bool:
        return bool(
            self.q is not None
            and self.frame is not None
            and self.truth is not None
            and self.graph is not None
            and self.policy is not None
            and self.statuses
            and self.skill_client.server_is_ready()
            and self.planner_client.server_is_ready()
            and self.chunk_pub.get_subscription_count() >= 1
        )

    def wait(self, future: Future, what: str) -> Any:
        """Spin until ``future`` is done; its result."""
        self.spin_until(future.done, what)
        return future.result()

    # -- acting --------------------------------------------------------------------
    def run_goal(self, goal: PolicyGoalMsg, retries: int = 10) -> PolicyStatusMsg:
        """Run ``goal`` on ``/policy/run_skill``; its end as a status (``goal_id``
        is ``goal.id``). A goal refused for want of recent joint states (the
        policy node, just up on a loaded machine, may not have them yet though
        its server is up) is sent again a second later."""
        for _ in range(retries + 1):
            status = self._run_skill(goal)
            if not status.reason.startswith("no robot state"):
                break
            self.spin_for(1.0)
        return status

    def _run_skill(self, goal: PolicyGoalMsg) -> PolicyStatusMsg:
        sent = self.skill_client.send_goal_async(skill_goal_to_msg(goal))
        handle = self.wait(sent, f"the policy taking {goal.skill} {goal.id}")
        end = {"goal_id": goal.id, "skill": goal.skill}
        if handle is None or not handle.accepted:
            return PolicyStatusMsg(**end, state="failed", reason="goal rejected by the policy")
        res = self.wait(handle.get_result_async(), f"{goal.skill} {goal.id}").result
        state = "succeeded" if res.success else "canceled" if res.state == "canceled" else "failed"
        return PolicyStatusMsg(**end, state=state, reason=res.reason, chunks=res.chunks)

    def look_around(self) -> list[PolicyStatusMsg]:
        """The wrist camera over each of LOOK_POINTS, so memory sees the whole table."""
        out = []
        for i, (x, y) in enumerate(LOOK_POINTS):
            goal = PolicyGoalMsg(id=f"demo-look-{i}", skill="look", target_position=(x, y, 0.0))
            status = self.run_goal(goal)
            if status.state != "succeeded":  # e.g. not reached in time on a loaded machine
                retry = goal.model_copy(update={"id": f"{goal.id}-again"})
                status = self.run_goal(retry)
            out.append(status)
        return out

    def go_home(self, timeout_s: float = 10.0) -> float:
        """Back to the home pose through the safety node; the sim time it got there."""
        driver = LookDriver(ik=None, config=LookConfig(timeout_s=timeout_s))
        t = self.sim_now()
        times, positions = look_trajectory(self.q, HOME_ARM)
        motion = LookMotion(
            PolicyGoalMsg(id="demo-home", skill="look"), np.zeros(3), HOME_ARM, t + times, positions
        )
        state = "running"
        while state == "running":
            self.spin_until(lambda: self.q_stamp is not None, "joint states")
            now = self.sim_now()
            if driver.due(motion, now):
                self.chunk_pub.publish(look_message(motion, self.q_stamp, now))
                driver.sent(motion, now)
            state, reason = driver.update(motion, now, self.q, now)
            rclpy.spin_once(self, timeout_sec=0.02)
            self.check()
        if state != "succeeded":
            raise RuntimeError(f"arm did not get home: {reason}")
        return self.sim_now()

    def new_scene(self, seed: int) -> None:
        """A new sim episode with ``seed`` and an empty memory (``/memory/reset``)."""
        episode = self.truth.episode if self.truth is not None else -1
        self.reset_pub.publish(sim_reset_to_msg(SimReset(seed=seed)))
        self.spin_until(lambda: self.truth is not None and self.truth.episode > episode, "reset")
        self.spin_until(self.forget_client.service_is_ready, "the /memory/reset service")
        done = self.wait(self.forget_client.call_async(Trigger.Request()), "memory's reset")
        if not done.success:
            raise RuntimeError(f"memory refused the reset: {done.message}")
        self.spin_for(1.0)

    def find_hidden(self, seeds: list[int], log: Callable[[str], None] = print) -> int:
        """Look around and go home in scene after scene until one has a graspable
        object out of every camera's view at home; returns its seed (-1: none)."""
        for k, seed in enumerate(seeds):
            if k:
                log(f"seed {seeds[k - 1]}: every object in view at home; new scene, seed {seed}")
                self.new_scene(seed)
            for status in self.look_around():
                if status.state != "succeeded":
                    raise RuntimeError(f"look {status.goal_id} failed: {status.reason}")
            self.t_home = self.go_home()
            self.spin_for(3.0)  # several frames of both cameras at home
            if self.hidden_objects(since=self.t_home):
                return seed
        return -1

    def hidden_objects(self, since: float) -> list[tuple[str, int]]:
        """(ground-truth id, memory id) of graspable objects memory holds but no
        camera has seen since sim time ``since`` (out of every view), the one
        nearest the middle of the spawn area (deepest in the demonstrations) first."""
        assert self.graph is not None and self.truth is not None
        out = []
        for gt_id in GRASPABLE:
            pos = np.asarray(self.truth.get(gt_id).position)
            near = [
                o
                for o in self.graph.objects
                if o.status != "absent"
                and np.linalg.norm(np.asarray(o.centroid)[:2] - pos[:2]) < 0.05
            ]
            if near and all(o.last_seen < since for o in near):
                out.append((float(np.linalg.norm(pos[:2] - SPAWN_MIDDLE)), gt_id, near[0].id))
        return [(gt_id, mem_id) for _, gt_id, mem_id in sorted(out)]

    def instruct(
        self, text: str, on_status: Callable[[PlannerStatusMsg], None]
    ) -> PlannerStatusMsg:
        """Send ``text`` to the planner (``/planner/execute``); every
        ``/planner/status`` meanwhile to ``on_status``; the final one (from the
        action's result when the topic's is late)."""
        start = len(self.statuses)
        sent = self.planner_client.send_goal_async(ExecuteInstruction.Goal(text=text))
        handle = self.wait(sent, "the planner taking the instruction")
        if handle is None or not handle.accepted:
            raise RuntimeError(f"the planner rejected {text!r} (busy with another instruction)")
        result = handle.get_result_async()
        seen = start

        def forward() -> None:
            nonlocal seen
            for s in self.statuses[seen:]:
                on_status(s)
            seen = len(self.statuses)

        def final_status(state: str) -> list[PlannerStatusMsg]:
            forward()
            mine = self.statuses[start:]
            return [s for s in mine if s.instruction == text and s.state == state]

        self.spin_until(lambda: forward() or result.done(), f"the planner doing {text!r}")
        res = result.result().result
        end = time.monotonic() + 2.0  # the final status, published before the result
        self.spin_until(
            lambda: final_status(res.state) or time.monotonic() > end, "the final status"
        )
        final = final_status(res.state)
        if final:
            return final[-1]
        return PlannerStatusMsg(
            instruction=text,
            state=res.state,
            reason=res.reason[:300],
            message=(res.answer or res.reason)[:1000],
            progress=1.0 if res.success else 0.0,
        )

    def object_in(self, gt_id: str, place_id: str) -> bool:
        """Ground truth: ``gt_id`` rests in / on ``place_id``."""
        assert self.truth is not None
        return self.truth.get(gt_id).support == place_id


__all__ = ["GRASPABLE", "StackDriver", "Timeline"]


def _color(msg: Image | CompressedImage) -> np.ndarray:
    """RGB of a raw or compressed colour image (raises on a bad one: the input
    boundary counts it)."""
    if isinstance(msg, CompressedImage):
        return image_messages.decode_color(msg)
    return image_to_numpy(msg)
