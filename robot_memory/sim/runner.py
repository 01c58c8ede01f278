"""The simulator's control loop, ROS-free: physics, JTC-style trajectory
following, the gripper, episode resets and the output schedule.

The sim node is a thin adapter over :class:`SimulationRunner`: it converts
messages to calls and publishes what :meth:`SimulationRunner.advance` says is
due. The same runner drives tests, benches and the in-process expert.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields

import mujoco
import numpy as np

from robot_memory.control.joint_trajectory import (
    ActiveTrajectory,
    validate_gripper_command,
    validate_trajectory,
)
from robot_memory.robot.panda import HOME_GRIPPER_WIDTH, PANDA_ARM_LIMITS
from robot_memory.schemas import GroundTruth
from robot_memory.sim.physics import CellPhysics
from robot_memory.sim.scene import build_model
from robot_memory.sim.task import TabletopTask

#: A moved object is put this far above its resting height, then dropped.
MOVE_DROP_M = 0.003


@dataclass
class RunnerConfig:
    scene: str = "tabletop"
    seed: int = 0
    panda_visual: str = "auto"
    physics_rate: float = 500.0
    joint_state_rate: float = 100.0
    camera_rate: float = 10.0
    ground_truth_rate: float = 5.0
    clock_rate: float = 250.0

    def __post_init__(self) -> None:
        for name in ("physics_rate", "joint_state_rate", "clock_rate"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("camera_rate", "ground_truth_rate"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 (0 disables), got {getattr(self, name)}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")

    @classmethod
    def from_parameters(cls, params: Mapping[str, object]) -> RunnerConfig:
        """The config from a node's parameters (the fields it has; others ignored)."""
        names = {f.name: f.type for f in fields(cls)}
        cast = {"str": str, "int": int, "float": float}
        return cls(**{k: cast[names[k]](v) for k, v in params.items() if k in names})


@dataclass
class DueOutputs:
    """What the adapter should publish after an :meth:`advance`."""

    clock: bool = False
    joint_states: bool = False
    cameras: bool = False
    ground_truth: bool = False


@dataclass
class _Schedule:
    period: float
    next_time: float = 0.0

    def due(self, t: float) -> bool:
        if self.period <= 0 or t + 1e-9 < self.next_time:
            return False
        # Skip missed slots rather than bursting to catch up.
        self.next_time = max(self.next_time + self.period, t)
        return True


@dataclass
class _Counters:
    episodes: int = 0
    trajectories: int = 0
    gripper_commands: int = 0
    steps: int = 0
    extra: dict[str, int] = field(default_factory=dict)


class SimulationRunner:
    """Thread-safe: commands may arrive from another thread than ``advance``."""

    def __init__(self, config: RunnerConfig) -> None:
        self.config = config
        model = build_model(config.scene, config.panda_visual)
        model.opt.timestep = 1.0 / config.physics_rate
        self.physics = CellPhysics(model)
        self.task = TabletopTask(scene=config.scene)
        self.lock = threading.RLock()
        self.counters = _Counters()
        self._trajectory: ActiveTrajectory | None = None
        self._arm_command = np.zeros(7)
        self._schedules = {
            "clock": _Schedule(1.0 / config.clock_rate),
            "joint_states": _Schedule(1.0 / config.joint_state_rate),
            "cameras": _Schedule(1.0 / config.camera_rate if config.camera_rate else 0.0),
            "ground_truth": _Schedule(
                1.0 / config.ground_truth_rate if config.ground_truth_rate else 0.0
            ),
        }
        self.seed = config.seed
        self.episode = -1
        self.reset(config.seed)

    # -- commands ---------------------------------------------------------
    def reset(self, seed: int, restart_clock: bool = False) -> None:
        """New episode: randomized placements for ``seed``, arm at home.
        Simulation time keeps running forward (``/clock`` never jumps back),
        unless ``restart_clock``: in-process evaluation restarts it at 0 so an
        episode is a function of its seed alone (trajectory times sampled at a
        later clock round differently in the last bits, and a contact-rich
        episode diverges from there)."""
        with self.lock:
            t = self.physics.time if self.episode >= 0 and not restart_clock else 0.0
            self.task.initialize_episode(self.physics, seed)
            self.physics.data.time = t
            self._trajectory = None
            self._arm_command = self.physics.arm_qpos().copy()
            self.physics.set_arm_command(self._arm_command)
            self.physics.set_gripper_command(HOME_GRIPPER_WIDTH)
            self.gripper_command = HOME_GRIPPER_WIDTH
            self.seed = seed
            self.episode += 1
            self.counters.episodes += 1

    def command_trajectory(
        self,
        joint_names: Sequence[str],
        times_from_start: Sequence[float],
        positions: Sequence[Sequence[float]],
        velocities: Sequence[Sequence[float]] | None = None,
        start_time: float | None = None,
    ) -> ActiveTrajectory:
        """Validate and start a trajectory; raises TrajectoryError, leaving the
        current motion untouched. ``start_time`` None (or 0) means now."""
        plan = validate_trajectory(
            joint_names, times_from_start, positions, velocities, PANDA_ARM_LIMITS
        )
        with self.lock:
            now = self.physics.time
            start = now if not start_time else float(start_time)
            current = self._current_command(now)
            self._trajectory = ActiveTrajectory(plan, start, current)
            self.counters.trajectories += 1
            return self._trajectory

    def command_gripper(self, data: Sequence[float]) -> float:
        width = validate_gripper_command(data)
        with self.lock:
            self.physics.set_gripper_command(width)
            self.gripper_command = width
            self.counters.gripper_commands += 1
        return width

    def commanded_arm(self) -> np.ndarray:
        """The arm setpoint the controller tracks now (trajectory sample or hold)."""
        with self.lock:
            return self._current_command(self.physics.time)

    def _current_command(self, t: float) -> np.ndarray:
        if self._trajectory is None:
            return self._arm_command.copy()
        return self._trajectory.sample(t)[0]

    # -- stepping ---------------------------------------------------------
    @property
    def time(self) -> float:
        return self.physics.time

    @property
    def timestep(self) -> float:
        return float(self.physics.model.opt.timestep)

    @property
    def trajectory_active(self) -> bool:
        with self.lock:
            return self._trajectory is not None and not self._trajectory.done(self.time)

    def advance(self, n_steps: int = 1) -> DueOutputs:
        """Step physics ``n_steps`` times, following the active trajectory."""
        with self.lock:
            for _ in range(n_steps):
                t = self.physics.time
                if self._trajectory is not None:
                    self._arm_command = self._trajectory.sample(t)[0]
                    if self._trajectory.done(t):
                        self._trajectory = None
                self.physics.set_arm_command(self._arm_command)
                self.physics.step(1)
            self.counters.steps += n_steps
            t = self.physics.time
            return DueOutputs(**{k: s.due(t) for k, s in self._schedules.items()})

    def run_for(self, seconds: float) -> None:
        """Advance ``seconds`` of simulated time (tests and in-process use)."""
        self.advance(max(1, round(seconds / self.timestep)))

    def take_away(self, object_id: str, slot: int = 0) -> None:
        """A person takes ``object_id`` out of the cell: it rests on the floor
        2 m away (in no camera's view, out of reach), in ``slot`` of a row."""
        with self.lock:
            model, data = self.physics.model, self.physics.data
            joint = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, object_id)
            if joint < 0 or model.jnt_type[joint] != mujoco.mjtJoint.mjJNT_FREE:
                raise ValueError(f"{object_id!r} is not a free object in the scene")
            adr, dof = model.jnt_qposadr[joint], model.jnt_dofadr[joint]
            floor_z = model.geom_pos[model.geom("floor").id][2]
            data.qpos[adr : adr + 3] = (2.0, -1.5 + 0.15 * slot, floor_z + 0.1)
            data.qvel[dof : dof + 6] = 0.0
            self.physics.forward()
            self.counters.extra["taken_away"] = self.counters.extra.get("taken_away", 0) + 1
        self.run_for(0.3)

    def move_object(self, object_id: str, xy: Sequence[float], settle_s: float = 0.3) -> np.ndarray:
        """Teleport ``object_id`` to ``xy`` on the table and let it settle.

        The simulator's stand-in for a person moving an object by hand (the
        robot plays no part): the object keeps its orientation, is put at its
        resting height from the scene file (a few mm above, so it drops into
        contact) with zero velocity, and physics runs ``settle_s`` (0 leaves the
        settling to the caller, e.g. a recorder that steps and publishes).
        Returns the object's new position. Raises ValueError for an unknown
        object or a non-finite / off-table ``xy``.
        """
        xy = np.asarray(xy, dtype=float)
        if xy.shape != (2,) or not np.all(np.isfinite(xy)):
            raise ValueError(f"xy must be two finite numbers, got {xy!r}")
        with self.lock:
            model, data = self.physics.model, self.physics.data
            joint = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, object_id)
            if joint < 0 or model.jnt_type[joint] != mujoco.mjtJoint.mjJNT_FREE:
                raise ValueError(f"{object_id!r} is not a free object in the scene")
            half = model.geom_size[model.geom("table_top").id][:2]
            if np.any(np.abs(xy) > half):
                raise ValueError(f"{xy.tolist()} is off the table (half extent {half.tolist()})")
            adr, dof = model.jnt_qposadr[joint], model.jnt_dofadr[joint]
            data.qpos[adr : adr + 2] = xy
            data.qpos[adr + 2] = model.qpos0[adr + 2] + MOVE_DROP_M
            data.qvel[dof : dof + 6] = 0.0
            self.physics.forward()
            self.counters.extra["moved_objects"] = self.counters.extra.get("moved_objects", 0) + 1
        if settle_s > 0:
            self.run_for(settle_s)
        return self.physics.body_pose(object_id)[0]

    def ground_truth(self) -> GroundTruth:
        with self.lock:
            return self.task.ground_truth(self.physics, self.episode, self.seed)
