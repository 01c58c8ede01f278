"""Configuration of the diffusion policy: a dataclass that validates itself and
round-trips through JSON (saved beside the weights, never pickled).

Defaults follow Diffusion Policy / LeRobot for low-dimensional state
(docs/policy.md): observation horizon 2, prediction horizon 16, 8 executed
steps, DDPM with 100 training steps and the squared-cosine schedule, epsilon
prediction, DDIM with 10 steps at inference.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

#: Names of the per-step observation and action features, in vector order.
OBSERVATION_FEATURES: tuple[str, ...] = (
    *(f"q{i}" for i in range(1, 8)),
    "gripper_width",
    "tcp_minus_target_x",
    "tcp_minus_target_y",
    "tcp_minus_target_z",
    "yaw_minus_goal_yaw",
    "skill_pick",
    "skill_place",
    "target_x",
    "target_y",
    "target_z",
)
ACTION_FEATURES: tuple[str, ...] = (
    "tcp_minus_target_x",
    "tcp_minus_target_y",
    "tcp_minus_target_z",
    "yaw_minus_goal_yaw",
    "gripper_width",
)
SAMPLERS = ("ddim", "ddpm", "consistency")  # consistency: a distilled checkpoint only


@dataclass
class DiffusionConfig:
    # time
    fps: float = 10.0
    n_obs_steps: int = 2
    horizon: int = 16
    n_action_steps: int = 8
    # features
    observation_features: tuple[str, ...] = OBSERVATION_FEATURES
    action_features: tuple[str, ...] = ACTION_FEATURES
    # network: conditional 1D temporal UNet with FiLM
    down_dims: tuple[int, ...] = (32, 64, 128)
    kernel_size: int = 5
    n_groups: int = 8
    diffusion_step_embed_dim: int = 64
    # noise schedule (diffusers)
    num_train_timesteps: int = 100
    beta_schedule: str = "squaredcos_cap_v2"
    prediction_type: str = "epsilon"
    clip_sample: bool = True
    clip_sample_range: float = 1.0
    # inference
    sampler: str = "ddim"
    num_inference_steps: int = 10
    # training
    ema_decay: float = 0.995
    learning_rate: float = 3e-4
    weight_decay: float = 1e-6
    warmup_steps: int = 200
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.down_dims = tuple(int(d) for d in self.down_dims)
        self.observation_features = tuple(self.observation_features)
        self.action_features = tuple(self.action_features)
        if self.fps <= 0:
            raise ValueError(f"fps must be > 0, got {self.fps}")
        if self.n_obs_steps < 1:
            raise ValueError(f"n_obs_steps must be >= 1, got {self.n_obs_steps}")
        if self.horizon % 2 ** (len(self.down_dims) - 1):
            raise ValueError(
                f"horizon {self.horizon} must be divisible by 2^(len(down_dims)-1) "
                f"= {2 ** (len(self.down_dims) - 1)} (the UNet halves it at each level)"
            )
        if not 1 <= self.n_action_steps <= self.horizon - self.n_obs_steps + 1:
            raise ValueError(
                f"n_action_steps must be in [1, horizon - n_obs_steps + 1] = "
                f"[1, {self.horizon - self.n_obs_steps + 1}], got {self.n_action_steps}"
            )
        if any(d % self.n_groups for d in self.down_dims):
            raise ValueError(f"every down_dim must be divisible by n_groups={self.n_groups}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {self.sampler!r}")
        if not 1 <= self.num_inference_steps <= self.num_train_timesteps:
            raise ValueError(
                f"num_inference_steps must be in [1, {self.num_train_timesteps}], "
                f"got {self.num_inference_steps}"
            )
        if self.prediction_type not in ("epsilon", "sample"):
            raise ValueError(f"prediction_type must be epsilon or sample: {self.prediction_type}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")

    @property
    def obs_dim(self) -> int:
        return len(self.observation_features)

    @property
    def action_dim(self) -> int:
        return len(self.action_features)

    @property
    def dt(self) -> float:
        return 1.0 / self.fps

    def to_dict(self) -> dict:
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, tuple):
                data[key] = list(value)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> DiffusionConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        return cls(**data)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> DiffusionConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))


__all__ = ["ACTION_FEATURES", "OBSERVATION_FEATURES", "SAMPLERS", "DiffusionConfig"]
