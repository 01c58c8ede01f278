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

from robot_memory.bringup.node_parameters import EXPERT_PARAMETERS
from robot_memory.expert.pick_place import ArmMove, PickPlaceConfig, PickPlacePlanner, Step
from robot_memory.expert.task_runner import ExpertTaskRunner
from robot_memory.health.counters import HealthCounters
from robot_memory.nodes.conversions import to_time
from robot_memory.nodes.diagnostics import DiagnosticsPublisher
from robot_memory.nodes.input_boundary import InputBoundary
from robot_memory.nodes.node_main import spin_node
from robot_memory.nodes.parameters import declare_parameters
from robot_memory.nodes.qos import COMMAND, LATCHED
from robot_memory.nodes.sim_conversions import (
    expert_status_to_msg,
    expert_task_from_msg,
    ground_truth_from_msg,
)
from robot_memory.robot.ik import ArmIK
from robot_memory.robot.panda import ARM_JOINTS
from robot_memory.schemas import ExpertStatus, ExpertTask, GroundTruth, PayloadError
from robot_memory.sim.scene import build_model


class ExpertNode(Node):
    def __init__(self) -> None:
        super().__init__("expert")
        p = declare_parameters(self, EXPERT_PARAMETERS)
        speed = float(p["move_speed"])
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
        task = None
        if p["object_id"]:
            task = ExpertTask(object_id=str(p["object_id"]), place_id=str(p["place_id"]))

        def planner_for(scene: str) -> PickPlacePlanner:
            ik = ArmIK(build_model(scene, panda_visual="primitive"))
            return PickPlacePlanner(ik, PickPlaceConfig(joint_speed=speed))

        self.runner = ExpertTaskRunner(planner_for, self, task, float(p["start_delay"]))
        self.create_timer(0.05, self.tick)
        self.create_timer(0.5, lambda: self.status(self.runner.status))

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

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
        if self.runner.running:
            self._reject("busy", "task rejected: a task is already running")
            return
        self.runner.start(task, self.now())  # planned from ground truth newer than the task
        self.get_logger().info(f"task: {task.object_id} -> {task.place_id}")

    def _reject(self, reason: str, text: str) -> None:
        self.inputs.reject(reason, text)  # counted; logged at most once a second per reason

    def tick(self) -> None:
        try:
            self.runner.tick(self.now(), self.q, self.truth)
        except Exception as exc:  # noqa: BLE001 - a task or ground truth it cannot run
            self.runner.finish(False, self.inputs.failed("/expert/task", exc))

    # -- the runner's sink --------------------------------------------------------
    def send(self, step: Step) -> None:
        if isinstance(step, ArmMove):
            msg = JointTrajectory(joint_names=list(ARM_JOINTS))
            msg.points = [
                JointTrajectoryPoint(positions=[float(v) for v in q], time_from_start=to_time(t))
                for t, q in zip(step.times, step.positions, strict=True)
            ]
            self.traj_pub.publish(msg)
        else:
            self.grip_pub.publish(Float64MultiArray(data=[float(step.width)]))

    def status(self, status: ExpertStatus) -> None:
        self.status_pub.publish(expert_status_to_msg(status))

    def finished(self, ok: bool, status: ExpertStatus) -> None:
        if ok:  # rclpy forbids one call site logging at two severities
            self.get_logger().info(f"pick-and-place of {status.object_id} succeeded")
        else:
            self.get_logger().error(f"pick-and-place failed: {status.reason}")
        self.status(status)


def main(args: list[str] | None = None) -> None:
    spin_node(ExpertNode, args)


if __name__ == "__main__":
    main()
