"""Features and normalization: raw robot state + goal <-> the network's vectors.

Observations and actions are expressed relative to the goal (the TCP minus
the target position, the hand yaw minus the goal yaw), so one demonstration
teaches the same motion anywhere on the table. Min-max statistics map every
feature to [-1, 1]; they are computed from the training data and saved with
the checkpoint (a feature that never varies gets a unit range, never a zero
one: a missing or degenerate statistic must not turn actions into NaN).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robot_memory.policy.configuration_diffusion import DiffusionConfig
from robot_memory.policy.kinematics import wrap_angle

SKILL_INDEX = {"pick": 0, "place": 1}
MIN_RANGE = 1e-4


class NormalizerError(ValueError):
    """Normalizer statistics that are missing, non-finite or the wrong size."""


@dataclass
class Normalizer:
    """Min-max to [-1, 1] per feature, for observations and for actions."""

    obs_min: np.ndarray
    obs_max: np.ndarray
    action_min: np.ndarray
    action_max: np.ndarray

    def __post_init__(self) -> None:
        for name in ("obs_min", "obs_max", "action_min", "action_max"):
            value = np.asarray(getattr(self, name), dtype=np.float64)
            if value.ndim != 1 or not np.all(np.isfinite(value)):
                raise NormalizerError(f"{name} must be a finite vector, got {value}")
            setattr(self, name, value)
        if (
            self.obs_min.shape != self.obs_max.shape
            or self.action_min.shape != self.action_max.shape
        ):
            raise NormalizerError("min and max statistics differ in size")
        # (centre, half) per side, once: the runtime normalizes every control cycle
        self._obs_scale = self._scale(self.obs_min, self.obs_max)
        self._action_scale = self._scale(self.action_min, self.action_max)

    @classmethod
    def fit(cls, obs: np.ndarray, actions: np.ndarray, margin: float = 0.0) -> Normalizer:
        def bounds(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            lo, hi = x.min(axis=0), x.max(axis=0)
            pad = (hi - lo) * margin
            return lo - pad, hi + pad

        return cls(*bounds(np.asarray(obs)), *bounds(np.asarray(actions)))

    @staticmethod
    def _scale(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        span = hi - lo
        degenerate = span < MIN_RANGE
        centre = (hi + lo) / 2.0
        half = np.where(degenerate, 1.0, span / 2.0)
        return centre, half

    def normalize_obs(self, x: np.ndarray) -> np.ndarray:
        centre, half = self._obs_scale
        return (x - centre) / half

    def normalize_action(self, x: np.ndarray) -> np.ndarray:
        centre, half = self._action_scale
        return (x - centre) / half

    def unnormalize_action(self, x: np.ndarray) -> np.ndarray:
        centre, half = self._action_scale
        return x * half + centre

    def check(self, config: DiffusionConfig) -> None:
        if self.obs_min.shape != (config.obs_dim,) or self.action_min.shape != (config.action_dim,):
            raise NormalizerError(
                f"normalizer sizes obs {self.obs_min.shape} / action {self.action_min.shape} "
                f"do not match the config ({config.obs_dim} / {config.action_dim})"
            )

    def to_dict(self, config: DiffusionConfig) -> dict:
        return {
            "kind": "min_max_to_unit_interval",
            "observation": {
                name: [float(lo), float(hi)]
                for name, lo, hi in zip(
                    config.observation_features, self.obs_min, self.obs_max, strict=True
                )
            },
            "action": {
                name: [float(lo), float(hi)]
                for name, lo, hi in zip(
                    config.action_features, self.action_min, self.action_max, strict=True
                )
            },
        }

    @classmethod
    def from_dict(cls, data: dict, config: DiffusionConfig) -> Normalizer:
        try:
            obs = np.array([data["observation"][n] for n in config.observation_features])
            act = np.array([data["action"][n] for n in config.action_features])
        except KeyError as exc:
            raise NormalizerError(f"normalizer has no statistics for feature {exc}") from exc
        normalizer = cls(obs[:, 0], obs[:, 1], act[:, 0], act[:, 1])
        normalizer.check(config)
        return normalizer

    def save(self, path: str | Path, config: DiffusionConfig) -> None:
        Path(path).write_text(json.dumps(self.to_dict(config), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path, config: DiffusionConfig) -> Normalizer:
        return cls.from_dict(json.loads(Path(path).read_text()), config)


def observation_vectors(
    joint_positions: np.ndarray,
    gripper_width: np.ndarray,
    tcp_position: np.ndarray,
    tcp_yaw: np.ndarray,
    skill: str,
    target_position: np.ndarray,
    goal_yaw: float,
) -> np.ndarray:
    """Rows (T, obs_dim) in OBSERVATION_FEATURES order, for T states of one goal."""
    q = np.atleast_2d(joint_positions)
    n = q.shape[0]
    target = np.asarray(target_position, dtype=float)
    one_hot = np.zeros((n, 2))
    one_hot[:, SKILL_INDEX[skill]] = 1.0
    return np.concatenate(
        [
            q,
            np.reshape(gripper_width, (n, 1)),
            np.atleast_2d(tcp_position) - target,
            np.reshape(wrap_angle(np.asarray(tcp_yaw) - goal_yaw), (n, 1)),
            one_hot,
            np.broadcast_to(target, (n, 3)),
        ],
        axis=1,
    )


def action_vectors(
    tcp_position: np.ndarray,
    tcp_yaw: np.ndarray,
    gripper_width: np.ndarray,
    target_position: np.ndarray,
    goal_yaw: float,
) -> np.ndarray:
    """Rows (T, action_dim) in ACTION_FEATURES order."""
    pos = np.atleast_2d(tcp_position)
    n = pos.shape[0]
    return np.concatenate(
        [
            pos - np.asarray(target_position, dtype=float),
            np.reshape(wrap_angle(np.asarray(tcp_yaw) - goal_yaw), (n, 1)),
            np.reshape(gripper_width, (n, 1)),
        ],
        axis=1,
    )


def decode_actions(
    actions: np.ndarray, target_position: np.ndarray, goal_yaw: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unnormalized action rows -> TCP positions (n, 3), yaws (n,), gripper widths (n,)."""
    positions = actions[:, :3] + np.asarray(target_position, dtype=float)
    yaws = wrap_angle(actions[:, 3] + goal_yaw)
    return positions, np.asarray(yaws), actions[:, 4].copy()


__all__ = [
    "SKILL_INDEX",
    "Normalizer",
    "NormalizerError",
    "action_vectors",
    "decode_actions",
    "observation_vectors",
]
