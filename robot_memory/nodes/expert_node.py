"""Expert node: scripted pick-and-place through the controller topics.

It reads the object's pose from /sim/ground_truth (so it is a simulation-only
demonstrator, never part of the deployed stack), plans with mink IK
(robot_memory.expert) and sends each move on /arm_controller/joint_trajectory
and /gripper_controller/commands, exactly as a policy or a person would; it
never writes joint positions. Progress and the outcome go on /expert/status.
Typed topics: /sim/ground_truth (GroundTruth), /expert/task (ExpertTask),
/expert/status (ExpertStatus, latched), converted in sim_conversions.
"""

from __future__ import annotations

import numpy as np
from rclpy.node import Node
from robot_memory_interfaces.msg import ExpertStatus as ExpertStatusMsg
from robot_memory_interfaces.msg import ExpertTask as ExpertTaskMsg
from robot_memory_interfaces.msg import GroundTruth as GroundTruthMsg
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from robot_memory.bringup.launch_spec import EXPERT_PARAMETERS
from robot_memory.expert.pick_place import (
    ArmMove,
    PickPlaceConfig,
    PickPlacePlanner,
    Step,
    place_point_for,
)
from robot_memory.health.counters import HealthCounters
from robot_memory.nodes.conversions import to_time
from robot_memory.nodes.diagnostics import DiagnosticsPublisher
from robot_memory.nodes.input_boundary import InputBoundary
from robot_memory.nodes.node_main import spin_node
from robot_memory.nodes.qos import COMMAND, LATCHED
from robot_memory.nodes.sim_conversions import (
    expert_status_to_msg,
    expert_task_from_msg,
    ground_truth_from_msg,
)
from robot_memory.robot.ik import ArmIK, IKError
from robot_memory.robot.panda import ARM_JOINTS
from robot_memory.schemas import ExpertStatus, ExpertTask, GroundTruth, PayloadError
from robot_memory.sim.scene import build_model

ARRIVAL_TOLERANCE_RAD = 0.03
ARM_TIMEOUT_MARGIN_S = 3.0
VERIFY_TIMEOUT_S = 2.0


class ExpertNode(Node):
    def __init__(self) -> None:
        super().__init__("expert")
        for name, default in EXPERT_PARAMETERS.items():
            self.declare_parameter(name, default)
        self.speed = float(self.get_parameter("move_speed").value)
        self.health = HealthCounters("expert")
        self.inputs = InputBoundary(self, self.health)  # no message ends the node
        self.traj_pub = self.create_publisher(
            JointTrajectory, "/arm_controller/joint_trajectory", COMMAND
        )
        self.grip_pub = self.create_publisher(
            Float64MultiArray, "/gripper_controller/commands", COMMAND
        )
        self.status_pub = self.create_publisher(ExpertStatusMsg, "/expert/status", LATCHED)
        self.inputs.subscribe(JointState, "/joint_states", self.on_joints, COMMAND)
        self.inputs.subscribe(GroundTruthMsg, "/sim/ground_truth", self.on_ground_truth, COMMAND)
        self.inputs.subscribe(ExpertTaskMsg, "/expert/task", self.on_task, COMMAND)
        self.diagnostics = DiagnosticsPublisher(self, self.health)

        self.q: np.ndarray | None = None
        self.truth: GroundTruth | None = None
        self.planner: PickPlacePlanner | None = None
        self.task: ExpertTask | None = None
        self.steps: list[Step] = []
        self.step_index = 0
        self.step_started = 0.0
        self.verify_started: float | None = None
        self.status = ExpertStatus(state="idle")
        object_id = str(self.get_parameter("object_id").value)
        if object_id:
            self.task = ExpertTask(
                object_id=object_id, place_id=str(self.get_parameter("place_id").value)
            )
        self.not_before = float(self.get_parameter("start_delay").value)
        self.create_timer(0.05, self.tick)
        self.create_timer(0.5, self.publish_status)

    # -- inputs -----------------------------------------------------------
    def on_joints(self, msg: JointState) -> None:
        try:
            idx = [list(msg.name).index(n) for n in ARM_JOINTS]
            q = np.array([msg.position[i] for i in idx])
        except (ValueError, IndexError):
            self._reject("malformed joint_states", f"joint_states without arm joints: {msg.name}")
            return
        if not np.all(np.isfinite(q)):
            self._reject("non-finite value", "joint_states with NaN")
            return
        self.q = q

    def on_ground_truth(self, msg: GroundTruthMsg) -> None:
        try:
            self.truth = ground_truth_from_msg(msg)
        except PayloadError as err:
            self._reject(err.reason, f"ground truth rejected: {err}")

    def on_task(self, msg: ExpertTaskMsg) -> None:
        try:
            task = expert_task_from_msg(msg)
        except PayloadError as err:
            self._reject(err.reason, f"task rejected: {err}")
            return
        if self.status.state == "running":
            self._reject("busy", "task rejected: a task is already running")
            return
        self.task, self.steps = task, []
        self.not_before = self.now() + 0.1  # plan from ground truth newer than the task
        self.get_logger().info(f"task: {task.object_id} -> {task.place_id}")

    def _reject(self, reason: str, text: str) -> None:
        self.inputs.reject(reason, text)  # counted; logged at most once a second per reason

    # -- state machine -------------------------------------------------------
    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def tick(self) -> None:
        if self.task is None:  # finish() clears it; a new one comes from /expert/task
            return
        try:
            self._step()
        except Exception as exc:  # noqa: BLE001 - a task or ground truth it cannot run
            self.finish(False, self.inputs.failed("/expert/task", exc))

    def _step(self) -> None:
        if self.q is None or self.truth is None or self.now() < self.not_before:
            return
        if not self.steps and self.truth.stamp < self.not_before:
            return  # wait for ground truth of the current episode
        if not self.steps and self.verify_started is None:
            self.start_task()
        elif self.step_index < len(self.steps):
            self.advance_steps()
        else:
            self.verify()

    def start_task(self) -> None:
        task, truth = self.task, self.truth
        assert task is not None and truth is not None and self.q is not None
        try:
            obj, place = truth.get(task.object_id), truth.get(task.place_id)
        except KeyError as err:
            return self.finish(False, f"unknown id {err} in the scene")
        if self.planner is None:
            ik = ArmIK(build_model(truth.scene, panda_visual="primitive"))
            self.planner = PickPlacePlanner(ik, PickPlaceConfig(joint_speed=self.speed))
        try:
            self.steps = self.planner.plan(self.q, obj, place_point_for(place))
        except IKError as err:
            return self.finish(False, f"unreachable: {err}")
        self.step_index, self.verify_started = 0, None
        self.status = ExpertStatus(
            state="running", object_id=task.object_id, place_id=task.place_id
        )
        self.send_step()

    def send_step(self) -> None:
        step = self.steps[self.step_index]
        self.step_started = self.now()
        if isinstance(step, ArmMove):
            msg = JointTrajectory(joint_names=list(ARM_JOINTS))
            msg.points = [
                JointTrajectoryPoint(positions=[float(v) for v in q], time_from_start=to_time(t))
                for t, q in zip(step.times, step.positions, strict=True)
            ]
            self.traj_pub.publish(msg)
        else:
            self.grip_pub.publish(Float64MultiArray(data=[float(step.width)]))
        self.status = self.status.model_copy(
            update={"phase": step.phase, "progress": self.step_index / len(self.steps)}
        )
        self.publish_status()

    def advance_steps(self) -> None:
        step, elapsed = self.steps[self.step_index], self.now() - self.step_started
        if isinstance(step, ArmMove):
            assert self.q is not None
            error = float(np.max(np.abs(self.q - step.final)))
            if elapsed < step.duration or error > ARRIVAL_TOLERANCE_RAD:
                if elapsed > step.duration + ARM_TIMEOUT_MARGIN_S:
                    self.finish(False, f"arm did not reach the {step.phase} pose ({error:.3f} rad)")
                return
        elif elapsed < step.settle_s:
            return
        self.step_index += 1
        if self.step_index < len(self.steps):
            self.send_step()
        else:
            self.verify_started = self.now()

    def verify(self) -> None:
        assert self.task is not None and self.truth is not None and self.verify_started is not None
        obj = self.truth.get(self.task.object_id)
        if obj.support == self.task.place_id:
            return self.finish(True, "")
        if self.now() - self.verify_started > VERIFY_TIMEOUT_S:
            self.finish(False, f"{obj.id} is not in {self.task.place_id} (on {obj.support})")

    def finish(self, ok: bool, reason: str) -> None:
        task = self.task
        self.status = ExpertStatus(
            state="succeeded" if ok else "failed",
            object_id=task.object_id if task else "",
            place_id=task.place_id if task else "",
            phase="done",
            progress=1.0,
            reason=reason,
        )
        self.steps, self.verify_started, self.task = [], None, None
        if ok:  # rclpy forbids one call site logging at two severities
            self.get_logger().info(f"pick-and-place of {self.status.object_id} succeeded")
        else:
            self.get_logger().error(f"pick-and-place failed: {reason}")
        self.publish_status()

    def publish_status(self) -> None:
        self.status_pub.publish(expert_status_to_msg(self.status))


def main(args: list[str] | None = None) -> None:
    spin_node(ExpertNode, args)


if __name__ == "__main__":
    main()
