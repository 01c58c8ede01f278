"""The two skills as simulated tasks: goals, start states and ground-truth success.

Shared by demonstration collection (the scripted expert performs the skill)
and closed-loop evaluation (the policy does). The goal is what the policy is
conditioned on: the skill, a target position and a hand yaw.

* ``pick(object)``: from (near) home, grasp the object and lift it. Target =
  the object's centre; yaw = the grasp yaw across the object's narrow side.
* ``place(object, target)``: holding the object after a pick, carry it over
  the target surface point, release it ``RELEASE_TCP_HEIGHT`` above, retreat.
  Targets: the bin, or a free spot on the table.
"""

from __future__ import annotations

import numpy as np

from robot_memory.expert.pick_place import (
    ArmMove,
    GripperMove,
    PickPlaceConfig,
    PickPlacePlanner,
    Step,
    place_point_for,
)
from robot_memory.policy.kinematics import hand_yaw
from robot_memory.policy.skill_goal import (
    PICK_LIFT_SUCCESS_M,
    PLACE_TABLE_TOLERANCE_M,
    RELEASE_TCP_HEIGHT,
    TABLE_PLACE_CLEARANCE,
    TABLE_PLACE_X,
    TABLE_PLACE_Y,
    SkillGoal,
)
from robot_memory.robot.ik import ArmIK, IKError
from robot_memory.robot.panda import ARM_JOINTS, ARM_LOWER, ARM_UPPER, HOME_ARM
from robot_memory.schemas import GroundTruth, GroundTruthObject
from robot_memory.sim.runner import SimulationRunner
from robot_memory.sim.scene import scene_objects

SKILL_PHASES = {
    "pick": ("open", "approach", "descend", "grasp", "lift"),
    "place": ("transport", "lower", "release", "retreat"),
}
EXPERT_CONFIG = PickPlaceConfig(joint_speed=0.6, cartesian_speed=0.15, gripper_settle_s=0.6)


def object_truth(truth: GroundTruth, object_id: str) -> GroundTruthObject:
    for obj in truth.objects:
        if obj.id == object_id:
            return obj
    raise KeyError(object_id)


def random_start_pose(rng: np.random.Generator, spread: float = 0.12) -> np.ndarray:
    q = HOME_ARM + rng.uniform(-spread, spread, size=7)
    return np.clip(q, ARM_LOWER + 0.05, ARM_UPPER - 0.05)


def move_arm_to(runner: SimulationRunner, q: np.ndarray, duration: float = 1.2) -> None:
    """Drive the arm to ``q`` (not part of any episode's recording)."""
    runner.command_trajectory(ARM_JOINTS, [duration], [list(q)])
    runner.run_for(duration + 0.3)


def sample_table_target(rng: np.random.Generator, truth: GroundTruth, exclude: str) -> np.ndarray:
    others = [np.array(o.position[:2]) for o in truth.objects if o.id != exclude]
    for _ in range(500):
        xy = np.array([rng.uniform(*TABLE_PLACE_X), rng.uniform(*TABLE_PLACE_Y)])
        if all(np.linalg.norm(xy - p) >= TABLE_PLACE_CLEARANCE for p in others):
            return np.array([xy[0], xy[1], 0.0])
    raise RuntimeError("no free table spot for a place target")


class SkillScenes:
    """Randomized skill episodes on a SimulationRunner, with the expert's plan."""

    def __init__(self, runner: SimulationRunner, config: PickPlaceConfig = EXPERT_CONFIG):
        self.runner = runner
        self.planner = PickPlacePlanner(ArmIK(runner.physics.model), config)
        self.objects = scene_objects(runner.task.scene)  # what an episode may pick

    def categories(self) -> dict[str, list[str]]:
        """Object ids by category (shape word): ``mug`` -> [red_mug_1, ...]."""
        out: dict[str, list[str]] = {}
        for item in self.objects:
            out.setdefault(item.shape, []).append(item.id)
        return out

    def full_plan(
        self, object_id: str, place_target: np.ndarray
    ) -> tuple[list[Step], list[Step], GroundTruthObject]:
        """Expert steps for pick and for place (split), from the current arm pose."""
        truth = self.runner.ground_truth()
        obj = object_truth(truth, object_id)
        steps = self.planner.plan(
            self.runner.physics.arm_qpos(),
            obj,
            place_target,
            hold_height=0.0,
            release_clearance=RELEASE_TCP_HEIGHT,
            neighbours=truth.objects,
        )
        pick = [s for s in steps if s.phase in SKILL_PHASES["pick"]]
        place = [s for s in steps if s.phase in SKILL_PHASES["place"]]
        return pick, place, obj

    def setup(
        self,
        seed: int,
        skill: str,
        object_id: str | None = None,
        place_target: str | None = None,
        expert_optional: bool = False,
    ) -> tuple[SkillGoal, list[Step]]:
        """Reset to ``seed``'s scene; for place, have the expert pick first.
        Returns the goal and the expert's steps for the skill itself; raises
        IKError when the expert cannot reach a pose, unless ``expert_optional``
        and the skill is a pick (an evaluation: no steps then, the goal's yaw
        from ``grasp_yaw``)."""
        rng = np.random.default_rng(seed + 7919)
        self.runner.reset(seed, restart_clock=True)
        move_arm_to(self.runner, random_start_pose(rng))
        object_id = object_id or str(rng.choice([o.id for o in self.objects]))
        truth = self.runner.ground_truth()
        target_id = place_target or ("bin" if rng.random() < 0.5 else "table")
        if target_id == "bin":
            target = place_point_for(object_truth(truth, "bin"))
        else:
            target = sample_table_target(rng, truth, object_id)
        try:
            pick, place, obj = self.full_plan(object_id, target)
        except IKError:
            if skill != "pick" or not expert_optional:
                raise
            # the expert cannot reach its grasp; the policy is still asked to try
            obj = object_truth(truth, object_id)
            point, yaw = self.planner.grasp(obj, truth.objects)
            return pick_goal(obj, yaw, point), []
        if skill == "pick":
            point, _ = self.planner.grasp(obj, truth.objects)
            return pick_goal(obj, hand_yaw(self.planner.ik.forward(pick[1].final)[1]), point), pick
        execute_steps(self.runner, pick)
        q = self.runner.physics.arm_qpos()
        yaw = hand_yaw(self.planner.ik.forward(q)[1])
        goal = SkillGoal("place", target, yaw, object_id, target_id, obj.position[2])
        return goal, place

    def success(self, goal: SkillGoal) -> bool:
        """Ground truth: is the skill's effect there now?"""
        physics, task = self.runner.physics, self.runner.task
        pos = physics.body_pose(goal.object_id)[0]
        if goal.skill == "pick":
            return bool(
                task._grasped(physics, goal.object_id)
                and pos[2] >= goal.object_rest_z + PICK_LIFT_SUCCESS_M
            )
        if task._grasped(physics, goal.object_id):
            return False
        if goal.target_id == "bin":
            return task.in_bin(physics, goal.object_id)
        close = np.linalg.norm(pos[:2] - goal.target_position[:2]) <= PLACE_TABLE_TOLERANCE_M
        return bool(close and task._support(physics, goal.object_id) == "table")


def pick_goal(obj: GroundTruthObject, yaw: float, point=None) -> SkillGoal:
    """The pick goal for ``obj``: ``point`` (the expert's grasp), else its grasp
    point, else its centre, at ``yaw``."""
    where = obj.grasp_point or obj.position if point is None else point
    return SkillGoal(
        "pick", np.array(where, dtype=float), yaw, obj.id, object_rest_z=obj.position[2]
    )


def execute_steps(
    runner: SimulationRunner,
    steps: list[Step],
    dt: float = 0.1,
    settle_s: float = 0.25,
    on_tick=None,
) -> None:
    """Run expert steps on the runner; ``on_tick()`` is called every ``dt`` of sim
    time right after each command is issued (so it sees the setpoint of now)."""
    for step in steps:
        if isinstance(step, ArmMove):
            runner.command_trajectory(ARM_JOINTS, step.times.tolist(), step.positions.tolist())
            span = step.duration + settle_s
        else:
            assert isinstance(step, GripperMove)
            runner.command_gripper([step.width])
            span = step.settle_s
        for _ in range(max(1, int(round(span / dt)))):
            if on_tick is not None:
                on_tick()
            runner.run_for(dt)


__all__ = [
    "EXPERT_CONFIG",
    "SkillScenes",
    "execute_steps",
    "object_truth",
]
