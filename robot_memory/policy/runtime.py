"""Run a trained diffusion policy: observation window in, action chunk out.

ROS-free; used by the policy node, the closed-loop evaluation and the bench.
``predict`` builds the observation window relative to the goal, samples a
chunk (DDIM by default), un-normalizes it, keeps the executed steps and turns
the TCP targets into arm joint targets with IK (seeded point to point from
the measured joints).

Device: ``auto`` picks CUDA when torch sees a GPU, else the CPU. On CUDA the
network can run in half precision and under ``torch.compile`` (CUDA graphs,
``compile_model``; measured on an H200: eager CUDA is *slower* than the traced
CPU path for this 1.2 M-parameter network, launch overhead dominates, so
compile on CUDA); on the CPU it runs traced in float32 with a fixed number of
threads (``compile_model`` is ignored there: no gain, minutes of compiling).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from robot_memory.control.retiming import MotionLimits, RetimeError, retime
from robot_memory.control.safety_config import PANDA_MOTION_LIMITS
from robot_memory.policy.checkpoint import PolicyCheckpoint, load_checkpoint
from robot_memory.policy.kinematics import ArmKinematics, IKError
from robot_memory.policy.modeling_diffusion import make_scheduler
from robot_memory.policy.processor_diffusion import decode_actions, observation_vectors
from robot_memory.policy.skill_goal import SkillGoal

DEVICES = ("auto", "cuda", "cpu")


class PolicyInputError(ValueError):
    """An observation or goal the policy cannot use (NaN, wrong size, ...)."""


@dataclass
class RobotState:
    q: np.ndarray  # (7,) measured arm joints [rad]
    gripper_width: float  # [m]
    stamp: float  # [s]


@dataclass
class ActionChunk:
    stamp: float  # time of the newest observation [s]
    times: np.ndarray  # (n,) seconds from ``stamp``: 0, dt, 2 dt, ...
    tcp_positions: np.ndarray  # (n, 3)
    yaws: np.ndarray  # (n,)
    gripper_widths: np.ndarray  # (n,)
    joint_positions: np.ndarray  # (n, 7)
    sample_s: float  # time spent denoising
    total_s: float  # denoising + decoding + IK


#: The demonstrations only ever command open or closed; the predicted width is
#: read as "open" above half the opening and sent as exactly open or closed.
GRIPPER_OPEN_M = 0.08
GRIPPER_CLOSED_M = 0.0


def binarize_gripper(widths: np.ndarray) -> np.ndarray:
    return np.where(np.asarray(widths) > GRIPPER_OPEN_M / 2.0, GRIPPER_OPEN_M, GRIPPER_CLOSED_M)


def trace_unet(model: torch.nn.Module) -> torch.jit.ScriptModule:
    """The UNet traced and frozen for batch-1 CPU inference: same numbers, a
    third of eager PyTorch's per-operator overhead at this size (bench_policy)."""
    c = model.config
    example = (
        torch.zeros(1, c.horizon, c.action_dim),
        torch.tensor(c.num_train_timesteps - 1),
        torch.zeros(1, c.obs_dim * c.n_obs_steps),
    )
    with torch.inference_mode(), warnings.catch_warnings():
        # torch marks TorchScript deprecated in favour of torch.compile, which on
        # the CPU needs a C++ toolchain, compiles for minutes and was not faster
        warnings.simplefilter("ignore")
        return torch.jit.freeze(torch.jit.trace(model.unet.eval(), example).eval())


def resolve_device(device: str) -> torch.device:
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but torch sees no CUDA GPU; use auto or cpu")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def observation_indices(stamps: np.ndarray, dt: float, n_obs: int) -> list[int]:
    """Indices (oldest first) of the observation window in ``stamps`` (ascending):
    the newest, then for k = 1.. the older state nearest ``newest - k dt``
    (the oldest one repeated when the history is shorter)."""
    picked = [len(stamps) - 1]
    for k in range(1, n_obs):
        prev = picked[-1]
        if prev == 0:
            picked.append(0)
            continue
        picked.append(int(np.argmin(np.abs(stamps[:prev] - (stamps[-1] - k * dt)))))
    return picked[::-1]


class PolicyRuntime:
    def __init__(
        self,
        checkpoint: str | PolicyCheckpoint,
        device: str = "auto",
        sampler: str | None = None,
        num_inference_steps: int | None = None,
        n_action_steps: int | None = None,
        seed: int = 0,
        half_precision: bool = True,
        compile_model: bool = False,
        threads: int | None = None,
        trace_cpu: bool = True,
        motion_limits: MotionLimits | None = PANDA_MOTION_LIMITS,
        ik_attempts: int = 3,
    ) -> None:
        if ik_attempts < 1:
            raise ValueError(f"ik_attempts must be >= 1, got {ik_attempts}")
        self.ik_attempts = ik_attempts
        self.ik_resamples = 0  # samples drawn again because IK could not reach them
        self.device = resolve_device(device)
        if threads and self.device.type == "cpu":
            torch.set_num_threads(threads)
        ckpt = (
            checkpoint if isinstance(checkpoint, PolicyCheckpoint) else load_checkpoint(checkpoint)
        )
        self.config = ckpt.config
        self.normalizer = ckpt.normalizer
        self.model = ckpt.model.to(self.device).eval()
        self.dtype = torch.float32
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True  # float32 matmuls on tensor cores
            torch.backends.cudnn.allow_tf32 = True
        if self.device.type == "cuda" and half_precision:
            self.dtype = torch.float16
            self.model = self.model.to(self.dtype)
        if compile_model and self.device.type == "cuda":
            self.model.unet = torch.compile(self.model.unet, mode="reduce-overhead")
        elif self.device.type == "cpu" and trace_cpu:
            self.model.unet = trace_unet(self.model)
        self.sampler = sampler or self.config.sampler
        distilled = self.config.sampler == "consistency"
        if distilled != (self.sampler == "consistency"):
            raise ValueError(
                f"sampler {self.sampler!r} does not fit {checkpoint}: "
                + (
                    "a consistency-distilled checkpoint samples only with sampler consistency"
                    if distilled
                    else "sampler consistency needs a distilled checkpoint "
                    "(models/consistency_pick_place, or robot-memory distill-policy)"
                )
            )
        self.num_inference_steps = num_inference_steps or (
            self.config.num_inference_steps
            if self.sampler in ("ddim", "consistency")
            else self.config.num_train_timesteps
        )
        self.scheduler = make_scheduler(self.config, self.sampler)
        self.n_action_steps = n_action_steps or self.config.n_action_steps
        if not 1 <= self.n_action_steps <= self.config.horizon - self.config.n_obs_steps + 1:
            raise ValueError(f"n_action_steps {self.n_action_steps} does not fit the horizon")
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.kinematics = ArmKinematics()
        # the chunk's times are stretched to these limits at the source (None:
        # every point dt apart, whatever the speed; the safety node retimes)
        self.motion_limits = motion_limits
        self._warm_up()

    def _warm_up(self, runs: int = 3) -> None:
        """Run the sampler a few times so tracing / compilation / CUDA graph
        capture happen here, not in the first control cycle."""
        c = self.config
        obs = torch.zeros((1, c.n_obs_steps, c.obs_dim), dtype=self.dtype, device=self.device)
        with torch.inference_mode():
            for _ in range(runs):
                self.model.sample(obs, self.scheduler, self.num_inference_steps)

    @property
    def dt(self) -> float:
        return self.config.dt

    def observation_window(self, states: list[RobotState], goal: SkillGoal) -> np.ndarray:
        """(n_obs_steps, obs_dim) from the newest states, oldest first (padded)."""
        n = self.config.n_obs_steps
        if not states:
            raise PolicyInputError("no robot state yet")
        window = list(states[-n:])
        window = [window[0]] * (n - len(window)) + window
        q = np.array([s.q for s in window], dtype=float)
        width = np.array([s.gripper_width for s in window], dtype=float)
        if q.shape != (n, 7) or not np.all(np.isfinite(q)) or not np.all(np.isfinite(width)):
            raise PolicyInputError("robot state has non-finite values or not 7 arm joints")
        tcp, yaw = self.kinematics.tcp_poses(q)
        return observation_vectors(
            q, width, tcp, yaw, goal.skill, goal.target_position, goal.goal_yaw
        )

    def sample_actions(self, obs_window: np.ndarray) -> tuple[np.ndarray, float]:
        """Normalized observation window -> un-normalized action rows (horizon, dim)."""
        obs = self.normalizer.normalize_obs(obs_window)
        x = torch.as_tensor(obs, dtype=self.dtype, device=self.device)[None]
        start = time.perf_counter()
        with torch.inference_mode():
            actions = self.model.sample(
                x, self.scheduler, self.num_inference_steps, generator=self.generator
            )
            out = actions[0].float().cpu().numpy()
        return self.normalizer.unnormalize_action(out), time.perf_counter() - start

    def predict(self, states: list[RobotState], goal: SkillGoal) -> ActionChunk:
        """The next chunk for ``goal`` from the observation window ``states``.

        Diffusion samples are random, and now and then one leaves the arm's
        reach: a sample whose first two poses IK cannot reach is drawn again
        (``ik_resamples`` counts them), up to ``ik_attempts`` samples in all;
        then the last IKError is raised."""
        start = time.perf_counter()
        obs = self.observation_window(states, goal)
        first = self.config.n_obs_steps - 1  # the action for the newest observation's time
        sample_s = 0.0
        for attempt in range(self.ik_attempts):
            actions, took = self.sample_actions(obs)
            sample_s += took
            executed = actions[first : first + self.n_action_steps]
            positions, yaws, widths = decode_actions(executed, goal.target_position, goal.goal_yaw)
            try:
                # point 0 is the observation's own time (past when the chunk is ready):
                # at least it and the next one must be reachable, a later miss cuts it
                joints = self.kinematics.joint_targets(states[-1].q, positions, yaws, min_points=2)
                break
            except IKError:
                if attempt + 1 == self.ik_attempts:
                    raise
                self.ik_resamples += 1
        n = len(joints)
        return ActionChunk(
            stamp=states[-1].stamp,
            times=self._timed(states, joints),
            tcp_positions=positions[:n],
            yaws=yaws[:n],
            gripper_widths=binarize_gripper(widths[:n]),
            joint_positions=joints,
            sample_s=sample_s,
            total_s=time.perf_counter() - start,
        )

    def _timed(self, states: list[RobotState], joints: np.ndarray) -> np.ndarray:
        """0, dt, 2 dt, ... stretched where the joint path is faster than the
        arm's velocity or acceleration limits, from the measured motion (the
        newest two states). A path IK put outside the limits keeps dt (the
        safety layer refuses it with the reason)."""
        times = np.arange(len(joints)) * self.dt
        if self.motion_limits is None or len(joints) < 2:
            return times
        v0 = np.zeros(7)
        if len(states) >= 2 and states[-1].stamp > states[-2].stamp:
            v0 = (states[-1].q - states[-2].q) / (states[-1].stamp - states[-2].stamp)
        try:
            later = retime([(joints[0], v0)], times[1:], joints[1:], self.motion_limits)
        except RetimeError:
            return times
        return np.concatenate([[0.0], later])


__all__ = [
    "DEVICES",
    "ActionChunk",
    "PolicyInputError",
    "PolicyRuntime",
    "RobotState",
    "observation_indices",
    "resolve_device",
]
