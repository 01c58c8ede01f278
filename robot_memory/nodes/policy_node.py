"""Policy node: a skill goal grounded in memory -> diffusion-policy action chunks.

Thin adapter over :class:`robot_memory.policy.runtime.PolicyRuntime` (the same
loop runs in-process, without DDS, in :mod:`robot_memory.policy.rollout`).

* in: ``/joint_states`` (a short history: the window is the newest state and,
  per older step, the state nearest ``newest - k / fps``), ``/policy/goal``
  (``PolicyGoalMsg``), ``/memory/scene_graph`` and ``/robot_memory/estop`` (latched);
* out: ``/policy/action_chunk`` (the 7 arm joints + ``gripper_width``;
  ``header.stamp`` = the newest observation's own stamp, point i at i / fps, so
  point 0 is past and the safety node drops it), ``/policy/status``
  (``PolicyStatusMsg``, latched), ``/diagnostics``.

Goals are grounded once, on arrival (:mod:`robot_memory.policy.goal_grounding`;
after a grasp the object moves with the hand, so memory is not re-read). A new
valid goal pre-empts the running one ("preempted by ..."); a goal that cannot
be grounded is refused (status failed with its id and reason, then the running
goal's status again) and leaves the running skill alone. The e-stop fails the
running skill ("estop") and refuses goals until released.

Inference runs on a worker thread, one prediction at a time. The next starts
when the last published chunk's observation is ``n_action_steps - 1`` steps old
minus the inference latency (the largest of the last few, plus one control
period), so the new chunk lands as the previous one runs out. Each observation
is used once. A chunk whose observation is older than ``max_observation_age_s``
when it is ready, or already before it would be started (then once per chunk
period), is dropped and counted, never published. The skill monitor (measured
width, the width the published chunk commands now, TCP by FK) ends the skill;
no chunk follows, and the safety node's watchdog holds the arm.

A ``look`` goal is no diffusion: a scripted IK move of the wrist camera over a
point (:mod:`robot_memory.nodes.look_driver`), sent as chunks through the
safety node and done when the arm has settled at the look pose.

A missing or unusable checkpoint is logged and every pick/place goal fails
with "no policy checkpoint at ..."; the node (and the stack) keeps running.

Status QoS, runtime loading, the node's records, chunk and skill-status messages:
:mod:`robot_memory.nodes.policy_helpers` (``STATUS_QOS`` still imports from here).
"""

from __future__ import annotations

import threading
from collections import deque

import numpy as np
from builtin_interfaces.msg import Time
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, String
from trajectory_msgs.msg import JointTrajectory

from robot_memory.diagnostics_core import HealthCounters
from robot_memory.launch_spec import POLICY_PARAMETERS
from robot_memory.nodes.conversions import from_time
from robot_memory.nodes.diagnostics import DiagnosticsPublisher
from robot_memory.nodes.input_boundary import InputBoundary
from robot_memory.nodes.look_driver import LookDriver, LookMotion
from robot_memory.nodes.node_main import spin_node
from robot_memory.nodes.parameters import declare_parameters
from robot_memory.nodes.policy_helpers import (
    STATUS_QOS,
    Observation,
    Request,
    Skill,
    chunk_message,
    load_runtime,
    skill_status,
)
from robot_memory.nodes.qos import COMMAND, LATCHED
from robot_memory.policy.goal_grounding import GroundingError, goal_id_of, ground_goal, parse_goal
from robot_memory.policy.kinematics import ArmKinematics, IKError
from robot_memory.policy.runtime import (
    ActionChunk,
    PolicyInputError,
    RobotState,
    observation_indices,
)
from robot_memory.policy.skill_monitor import FAILED, RUNNING, MonitorConfig, SkillMonitor
from robot_memory.policy.skill_tasks import SkillGoal
from robot_memory.robot.panda import ARM_JOINTS, FINGER_JOINTS
from robot_memory.schemas import (
    PayloadError,
    PolicyGoalMsg,
    PolicyStatusMsg,
    SceneGraphMsg,
    dump_payload,
    parse_payload,
)

FUTURE_STAMP_S = 0.5  # joint states stamped further ahead of the node's clock are refused
CONTROL_PERIOD_S = 0.02  # skill monitor and scheduling tick
HISTORY_S = 2.0  # joint states kept for the observation window
LOG_THROTTLE_S = 1.0
LATENCY_WINDOW = 5  # recent inference latencies the schedule plans with


class PolicyNode(Node):
    def __init__(self, parameter_overrides: list[Parameter] | None = None) -> None:
        super().__init__("policy", parameter_overrides=parameter_overrides or [])
        p = declare_parameters(self, POLICY_PARAMETERS)
        self.max_age = float(p["max_observation_age_s"])
        self.monitor_config = MonitorConfig(timeout_s=float(p["timeout_s"]))
        self.health = HealthCounters("policy")
        # every subscription; rejections counted, logged at most once a second per reason
        self.inputs = InputBoundary(self, self.health)
        self.chunk_pub = self.create_publisher(JointTrajectory, "/policy/action_chunk", COMMAND)
        self.status_pub = self.create_publisher(String, "/policy/status", STATUS_QOS)
        self.kinematics = ArmKinematics()  # executor thread; the runtime has its own
        self.looker = LookDriver(self.kinematics.ik)
        self.runtime, self.unavailable = load_runtime(p, self.get_logger())
        self.dt = self.runtime.dt if self.runtime else 0.1
        self.n_obs = self.runtime.config.n_obs_steps if self.runtime else 2
        # a chunk lasts (n_action_steps - 1) dt past its observation (point 0 is past)
        n_steps = self.runtime.n_action_steps if self.runtime else 2
        self.period = max(n_steps - 1, 1) * self.dt
        self.history_s = max(HISTORY_S, (self.n_obs + 1) * self.dt)

        self._lock = threading.Condition()  # everything below; the worker waits on it
        self.history: deque[Observation] = deque(maxlen=1000)
        self.width: float | None = None
        self.graph: SceneGraphMsg | None = None
        self.estop = False
        self.skill: Skill | None = None
        self.look: LookMotion | None = None  # a running look (then skill is None)
        self.generation = 0
        self.busy = False
        self.last_obs_used = -np.inf
        self.next_due = -np.inf  # node time the next prediction may start
        self.plan: tuple[np.ndarray, np.ndarray] | None = None  # absolute times, widths
        self.latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._request: Request | None = None
        self._stop = False
        self.status = PolicyStatusMsg(state="idle")

        self.inputs.subscribe(JointState, "/joint_states", self.on_joints, COMMAND)
        self.inputs.subscribe(String, "/policy/goal", self.on_goal, COMMAND)
        self.inputs.subscribe(String, "/memory/scene_graph", self.on_scene_graph, LATCHED)
        self.inputs.subscribe(Bool, "/robot_memory/estop", self.on_estop, LATCHED)
        self.diagnostics = DiagnosticsPublisher(self, self.health)
        self._worker = threading.Thread(target=self._work, name="policy", daemon=True)
        if self.runtime is not None:
            self._worker.start()
        self.create_timer(CONTROL_PERIOD_S, self.tick)
        self.publish_status(self.status)

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # -- inputs (executor thread) -------------------------------------------------
    def on_joints(self, msg: JointState) -> None:
        names, pos = list(msg.name), list(msg.position)
        try:
            q = np.array([pos[names.index(n)] for n in ARM_JOINTS], dtype=float)
        except (ValueError, IndexError):
            return self.inputs.reject("malformed joint_states", f"no arm in {names}")
        width = self.width  # the fingers may come in their own JointState messages
        if all(n in names and names.index(n) < len(pos) for n in FINGER_JOINTS):
            width = float(sum(pos[names.index(n)] for n in FINGER_JOINTS))
        if not np.all(np.isfinite(q)) or not np.isfinite(width if width is not None else 0.0):
            return self.inputs.reject("non-finite joint_states", "joint_states with NaN")
        if width is None:
            return self.inputs.reject("no gripper width", f"no {FINGER_JOINTS} in joint_states yet")
        self.width = width
        stamp = msg.header.stamp
        if stamp.sec == 0 and stamp.nanosec == 0:
            stamp = self.get_clock().now().to_msg()
        t = from_time(stamp)
        if t > self.now() + FUTURE_STAMP_S:  # one would block every real state after it
            return self.inputs.reject("joint_states from the future", f"stamp {t:.3f} > now")
        with self._lock:
            if self.history and t <= self.history[-1].state.stamp:
                return self.inputs.reject("old joint_states", f"joint_states at {t:.3f} not newer")
            self.history.append(Observation(RobotState(q, self.width, t), stamp))
            while self.history[0].state.stamp < t - self.history_s:
                self.history.popleft()

    def on_scene_graph(self, msg: String) -> None:
        try:
            graph = parse_payload(SceneGraphMsg, msg.data)
        except PayloadError as err:
            return self.inputs.reject(f"scene graph {err.reason}", f"scene graph refused: {err}")
        with self._lock:
            self.graph = graph
        self.health.set_value("scene_graph_seq", graph.seq)

    def on_estop(self, msg: Bool) -> None:
        with self._lock:
            was, self.estop = self.estop, bool(msg.data)
            if self.estop and (self.skill is not None or self.look is not None):
                self.get_logger().error("e-stop: the running skill failed")
                self._finish(FAILED, "estop")
            elif was and not self.estop:
                self.get_logger().info("e-stop released")

    def on_goal(self, msg: String) -> None:
        now = self.now()
        with self._lock:
            try:
                goal, target = self._ground(msg.data, now)
            except GroundingError as err:
                self._refuse(err)
                return
            if self.skill is not None or self.look is not None:
                self._finish(FAILED, f"preempted by goal {goal.id}")
            self.generation += 1
            if isinstance(target, LookMotion):
                self.look = target
                point = np.round(target.point, 3).tolist()
                self.get_logger().info(f"goal {goal.id}: look at {point}")
                self.publish_status(PolicyStatusMsg(goal_id=goal.id, state=RUNNING, skill="look"))
                return
            monitor = SkillMonitor(target, now, self.monitor_config)
            self.skill = Skill(goal, target, monitor, self.generation)
            self.last_obs_used, self.next_due, self.plan = -np.inf, -np.inf, None
            self.get_logger().info(
                f"goal {goal.id}: {goal.skill} at {np.round(target.target_position, 3).tolist()}"
                f", yaw {target.goal_yaw:.2f}"
            )
            self._publish_skill()
            self._maybe_request(now)

    def _ground(self, text: str, now: float) -> tuple[PolicyGoalMsg, SkillGoal | LookMotion]:
        goal = parse_goal(text)
        if self.estop:
            raise GroundingError("estop active", "goal refused while the e-stop is on", goal.id)
        newest = self.history[-1].state if self.history else None
        if newest is None or now - newest.stamp > self.max_age:
            raise GroundingError("no robot state", "no recent /joint_states", goal.id)
        if goal.skill == "look":
            try:
                return goal, self.looker.start(goal, self.graph, newest)
            except GroundingError as err:
                err.goal_id = goal.id
                raise
        if self.runtime is None:
            raise GroundingError("no checkpoint", self.unavailable, goal_id_of(text))
        yaw = self.kinematics.tcp_pose(newest.q)[1]
        return goal, ground_goal(goal, self.graph, yaw)

    def _refuse(self, err: GroundingError) -> None:
        self.health.reject(f"goal {err.reason}")
        text = self.unavailable if err.reason == "no checkpoint" else str(err)
        self.get_logger().warning(f"goal {err.goal_id or '?'} refused: {text}")
        self.publish_status(PolicyStatusMsg(goal_id=err.goal_id, state="failed", reason=text))
        if self.skill is not None:
            self._publish_skill()  # the latched status is the running skill's again

    # -- skill (executor thread, lock held) -----------------------------------------
    def tick(self) -> None:
        now = self.now()
        with self._lock:
            if self.look is not None and self.history:
                return self._tick_look(now)
            if self.skill is None or not self.history:
                return
            monitor = self.skill.monitor
            if self.plan is None:  # nothing commanded yet: only the timeout applies
                if now - monitor.start > monitor.config.timeout_s:
                    self._finish(FAILED, "timed out before any chunk was published")
                else:
                    self._maybe_request(now)
                return
            state = self.history[-1].state
            tcp = self.kinematics.tcp_pose(state.q)[0]
            if monitor.update(now, state.gripper_width, self._commanded_width(now), tcp) != RUNNING:
                self._finish(monitor.state, monitor.reason)
                return
            self._maybe_request(now)

    def _tick_look(self, now: float) -> None:
        newest, look = self.history[-1], self.look
        if self.looker.due(look, now) and self.context.ok():
            self.chunk_pub.publish(self.looker.chunk(look, newest.stamp, newest.state.stamp, now))
            self.health.increment("look_chunks_published")
        state, reason = self.looker.update(look, now, newest.state.q, newest.state.stamp)
        if state != RUNNING:
            self._finish(state, reason)

    def _commanded_width(self, now: float) -> float:
        times, widths = self.plan
        return float(widths[max(int(np.searchsorted(times, now, side="right")) - 1, 0)])

    def _maybe_request(self, now: float) -> None:
        if self.busy or self.skill is None or not self.history or now < self.next_due:
            return
        newest = self.history[-1]
        if now - newest.state.stamp > self.max_age:  # it would be dropped when done
            self._drop_stale(now - newest.state.stamp)
            self.next_due = now + self.period
            return
        if newest.state.stamp <= self.last_obs_used:
            return  # every observation is used once
        self.last_obs_used = newest.state.stamp
        stamps = np.array([o.state.stamp for o in self.history])
        window = [self.history[i].state for i in observation_indices(stamps, self.dt, self.n_obs)]
        self._request = Request(self.generation, self.skill.target, window, newest.stamp)
        self.busy = True
        self._lock.notify()

    def _drop_stale(self, age: float) -> None:
        self.health.increment("stale_chunks_dropped")
        self.get_logger().warning(
            f"observation {age:.3f} s old (> {self.max_age} s): chunk dropped",
            throttle_duration_sec=LOG_THROTTLE_S,
        )

    def _finish(self, state: str, reason: str) -> None:
        if self.look is not None:
            look, self.look = self.look, None
            self.health.increment(f"skills_{state}")
            self.get_logger().info(f"goal {look.goal.id} {state}: {reason}")
            status = PolicyStatusMsg(goal_id=look.goal.id, state=state, reason=reason)
            self.publish_status(status.model_copy(update={"skill": "look", "chunks": look.chunks}))
            return
        skill, self.skill = self.skill, None
        if skill is None:
            return
        self.health.increment(f"skills_{state}")
        text = f"goal {skill.goal.id} {state}: {reason} ({skill.chunks} chunks)"
        # one severity per call site: rclpy raises when a line logs at two
        self.get_logger().warning(text) if state == FAILED else self.get_logger().info(text)
        self.publish_status(skill_status(skill, state, reason))

    def _publish_skill(self) -> None:
        if self.skill is not None:
            self.publish_status(skill_status(self.skill, RUNNING))

    def publish_status(self, status: PolicyStatusMsg) -> None:
        self.status = status.model_copy(update={"stamp": self.now()})
        self.health.set_value("state", status.state)
        if self.context.ok():
            self.status_pub.publish(String(data=dump_payload(self.status)))

    # -- worker thread ----------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._lock:
                while self._request is None and not self._stop:
                    self._lock.wait(0.5)
                if self._stop:
                    return
                req, self._request = self._request, None
            chunk, error = None, ""
            try:
                chunk = self.runtime.predict(req.window, req.target)
            except (IKError, PolicyInputError) as exc:
                error = f"{'IK' if isinstance(exc, IKError) else 'policy input'}: {exc}"
            except Exception as exc:  # noqa: BLE001 - the node must outlive one bad chunk
                error = f"inference error: {exc!r}"
            if not self.context.ok():
                return  # shutting down
            with self._lock:
                self.busy = False
                current = self.skill is not None and self.skill.generation == req.generation
                if error:
                    self.health.reject(error.split(":")[0])
                    if current:
                        self._finish(FAILED, error)
                elif current:
                    self._deliver(chunk, req.stamp)
                else:
                    self.health.increment("chunks_superseded")

    def _deliver(self, chunk: ActionChunk, stamp: Time) -> None:
        now = self.now()
        self.health.latency("inference_denoise", chunk.sample_s)
        self.health.latency("inference_total", chunk.total_s)
        self.latencies.append(chunk.total_s)
        if now - chunk.stamp > self.max_age:
            self._drop_stale(now - chunk.stamp)
            return
        if self.context.ok():
            self.chunk_pub.publish(chunk_message(chunk, stamp))
        self.skill.chunks += 1
        lead = max(self.latencies) + CONTROL_PERIOD_S
        self.next_due = chunk.stamp + self.period - lead
        self.plan = (chunk.stamp + chunk.times, chunk.gripper_widths)
        self.health.increment("chunks_published")
        self.health.tick("chunks", now)
        self.health.latency("observation_to_chunk", now - chunk.stamp)
        self._publish_skill()

    def shutdown(self) -> None:
        with self._lock:
            self._stop = True
            self._lock.notify()
        if self._worker.is_alive():
            self._worker.join(timeout=1.0)  # spin_node exits 1.8 s after the signal anyway


def main(args: list[str] | None = None) -> None:
    spin_node(PolicyNode, args)


if __name__ == "__main__":
    main()
