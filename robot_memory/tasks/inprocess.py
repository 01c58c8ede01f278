"""The planner's ports over the in-process stack: simulator, cameras, real
perception, real memory, the diffusion policy and the safety filter (ROS-free).

The same cores the ROS nodes call, in one process and one thread:

* :class:`Observer`: renders every camera at the current arm pose, runs the
  perception pipeline and folds the frames into a
  :class:`~robot_memory.memory.scene_graph.SceneMemory` (only when asked: no
  rendering during the policy's chunks except the periodic observes);
* :class:`InProcessMemory` (``MemoryPort``): ``scene_graph()`` = the memory's
  snapshot, ``query()`` = ``SceneMemory.answer``, ``refresh()`` = observe now,
  ``clear()`` = ``SceneMemory.reset``;
  a pick that starts away from home (after a look) first returns the arm home
  (the policy's picks start within 0.12 rad of it);
* :class:`InProcessSkills` (``SkillPort``): ``pick`` / ``place`` grounded in the
  latest snapshot (:func:`~robot_memory.policy.goal_grounding.ground_goal`, as
  the policy node does) and ``look`` (its look point over the snapshot), run
  from the current state by the policy node's own skill executor
  (:func:`~robot_memory.learning.rollout.execute_skill`, every chunk checked by a
  :class:`~robot_memory.control.safety.SafetyFilter`), observing every
  ``observe_every_s`` of sim time and once after the skill. Failures come back
  as ``SkillOutcome("failed", reason)``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import mujoco
import numpy as np

from robot_memory.control.safety import SafetyFilter
from robot_memory.learning.rollout import execute_skill
from robot_memory.memory.scene_graph import SceneMemory
from robot_memory.perception.observations import ObservationFrame, quat_to_matrix
from robot_memory.perception.pipeline import PerceptionPipeline
from robot_memory.planner.world import SkillOutcome
from robot_memory.policy.goal_grounding import GroundingError, ground_goal
from robot_memory.policy.look_skill import look_trajectory
from robot_memory.policy.runtime import PolicyRuntime
from robot_memory.policy.skill_monitor import MonitorConfig
from robot_memory.robot.panda import ARM_JOINTS, HOME_ARM
from robot_memory.schemas import PolicyGoalMsg, SceneGraphMsg
from robot_memory.sim.cameras import CameraRig
from robot_memory.sim.depth_noise import DepthNoise
from robot_memory.sim.frames import CellFrames
from robot_memory.sim.runner import SimulationRunner
from robot_memory.tasks.memory_port import SceneMemoryPort


class Observer:
    """Render, perceive, remember: one call = one frame per camera into memory."""

    def __init__(
        self,
        runner: SimulationRunner,
        memory: SceneMemory,
        cameras: Sequence[str] = ("front", "wrist"),
        width: int = 320,
        height: int = 240,
        depth_noise: DepthNoise | None = None,
        calibration_error: tuple[float, float] = (0.0, 0.0),
        seed: int = 0,
    ) -> None:
        self.runner, self.memory, self.cameras = runner, memory, tuple(cameras)
        model = runner.physics.model
        self.rig = CameraRig(model, width, height, self.cameras, depth_noise, seed)
        self._mount_error = mount_errors(model, self.cameras, calibration_error, seed)
        self.perception = PerceptionPipeline()
        self.observes = 0
        self.wall_s = 0.0

    def reseed(self, seed: int) -> None:
        """The depth noise of the frames from here on drawn from ``seed``."""
        self.rig.reseed_noise(seed)

    def __call__(self) -> list[ObservationFrame]:
        start = time.perf_counter()
        physics = self.runner.physics
        names, q, _, _ = physics.joint_state()
        joints = {str(n): float(v) for n, v in zip(names, q, strict=True)}
        stamp = float(self.runner.time)
        frames = []
        for cam in self.cameras:
            rgb, depth = self.rig.render(physics, cam)
            pos, quat = believed_pose(*self.rig.optical_pose(physics, cam), self._mount_error[cam])
            frame = self.perception.process(
                rgb, depth, self.rig.intrinsics(cam), pos, quat, stamp, cam, joints
            )
            self.memory.update(frame)
            frames.append(frame)
        self.observes += 1
        self.wall_s += time.perf_counter() - start
        return frames

    def close(self) -> None:
        self.rig.close()


def mount_errors(
    model, cameras: Sequence[str], error: tuple[float, float], seed: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per camera, (translation, rotation) taking the true optical frame to the
    one the cell believes (``CellFrames``' calibration error), in the optical frame."""
    true = CellFrames(model, cameras).camera_mounts
    believed = CellFrames(model, cameras, calibration_error=error, seed=seed).camera_mounts
    out = {}
    for cam, t, b in zip(cameras, true, believed, strict=True):
        rt, rb = quat_to_matrix(t.rotation), quat_to_matrix(b.rotation)
        out[cam] = (rt.T @ (b.translation - t.translation), rt.T @ rb)
    return out


def believed_pose(
    position: np.ndarray, quat_wxyz: np.ndarray, error: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """The optical pose the cell believes, from the true one and the mount error."""
    shift, turn = error
    if not np.any(shift) and np.allclose(turn, np.eye(3)):
        return position, quat_wxyz
    rot = quat_to_matrix(quat_wxyz)
    quat = np.empty(4)
    mujoco.mju_mat2Quat(quat, (rot @ turn).reshape(-1))
    return np.asarray(position) + rot @ shift, quat


class InProcessMemory(SceneMemoryPort):
    """``MemoryPort`` over a SceneMemory and an Observer: a refresh renders and
    perceives a frame first."""

    def __init__(self, memory: SceneMemory, observer: Observer) -> None:
        super().__init__(memory)
        self.observer = observer

    def refresh(self) -> SceneGraphMsg | None:
        self.observer()
        return self.memory.snapshot()


@dataclass
class SkillLog:
    skill: str
    state: str
    reason: str
    sim_s: float
    chunks: int = 0
    rejected_chunks: int = 0
    last_reject: str = ""


@dataclass
class SkillCounters:
    runs: list[SkillLog] = field(default_factory=list)

    def as_rows(self) -> list[dict]:
        return [r.__dict__.copy() for r in self.runs]


class InProcessSkills:
    """``SkillPort``: the policy (pick, place) and the look skill on the simulator."""

    def __init__(
        self,
        runtime: PolicyRuntime,
        runner: SimulationRunner,
        memory: SceneMemory,
        observer: Observer,
        monitor_config: MonitorConfig | None = None,
        observe_every_s: float = 1.0,
        use_safety: bool = True,
        settle_s: float = 0.4,
        home_tolerance: float = 0.12,
    ) -> None:
        self.runtime, self.runner, self.memory, self.observer = runtime, runner, memory, observer
        self.monitor_config = monitor_config
        self.observe_every_s = observe_every_s
        self.use_safety = use_safety
        self.settle_s = settle_s
        self.home_tolerance = home_tolerance
        self.log = SkillCounters()
        self.on_step = None  # extra per-control-step hook (a video recorder)

    def run(self, goal: PolicyGoalMsg) -> SkillOutcome:
        start = self.runner.time
        q = self.runner.physics.arm_qpos()
        if goal.skill == "pick" and np.max(np.abs(q - HOME_ARM)) > self.home_tolerance:
            self._move(HOME_ARM)  # the policy starts picks near home, not from a look pose
            q = self.runner.physics.arm_qpos()
        next_observe = [self.runner.time + self.observe_every_s]

        def tick() -> None:
            if self.on_step is not None:
                self.on_step()
            if self.runner.time >= next_observe[0]:
                self.observer()
                next_observe[0] = self.runner.time + self.observe_every_s

        safety = SafetyFilter(model=self.runner.physics.model) if self.use_safety else None
        try:
            if goal.skill == "look":  # the policy node's look, over memory's snapshot
                run = execute_skill(
                    self.runtime, self.runner, None, self.monitor_config, on_step=tick,
                    safety=safety, look=goal, graph=self.memory.snapshot(),
                )  # fmt: skip
            else:
                yaw = float(self.runtime.kinematics.tcp_pose(q)[1])
                skill_goal = ground_goal(goal, self.memory.snapshot(), yaw)
                run = execute_skill(
                    self.runtime, self.runner, skill_goal, self.monitor_config, on_step=tick,
                    safety=safety,
                )  # fmt: skip
        except GroundingError as err:
            self.log.runs.append(SkillLog(goal.skill, "failed", err.reason, 0.0))
            return SkillOutcome("failed", f"grounding: {err}")
        if goal.skill != "look":
            self.runner.run_for(self.settle_s)  # a released object comes to rest
        self.observer()
        self.log.runs.append(
            SkillLog(
                goal.skill,
                run.monitor_state,
                run.reason,
                self.runner.time - start,
                run.chunks,
                run.rejected_chunks,
                safety.counters.last_reject[:120] if safety is not None else "",
            )
        )
        state = "succeeded" if run.monitor_state == "succeeded" else "failed"
        return SkillOutcome(state, run.reason)

    def _move(self, q_goal: np.ndarray, hold_s: float = 0.3) -> None:
        times, positions = look_trajectory(self.runner.physics.arm_qpos(), q_goal)
        self.runner.command_trajectory(ARM_JOINTS, times.tolist(), positions.tolist())
        self.runner.run_for(float(times[-1]) + hold_s)


__all__ = ["InProcessMemory", "InProcessSkills", "Observer", "SkillLog"]
