"""A dataset's training samples for the diffusion policy: every (observation
window, action chunk) pair of its episodes, as index arrays into the
concatenated per-step rows (the training loop and distillation draw batches
from it)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_memory.learning.dataset import Episode
from robot_memory.policy.configuration_diffusion import DiffusionConfig
from robot_memory.policy.processor_diffusion import action_vectors, observation_vectors


@dataclass
class TrainingWindows:
    """Every (observation window, action chunk) pair of a dataset, as index arrays
    into the concatenated per-step rows; windows at an episode's ends repeat
    its first / last step (Diffusion Policy's padding)."""

    obs: np.ndarray  # (N_steps, obs_dim)
    actions: np.ndarray  # (N_steps, action_dim)
    obs_index: np.ndarray  # (N_windows, n_obs_steps)
    action_index: np.ndarray  # (N_windows, horizon)
    episodes: int

    @classmethod
    def build(cls, episodes: list[Episode], config: DiffusionConfig) -> TrainingWindows:
        if not episodes:
            raise ValueError("the dataset has no successful episodes to train on")
        obs_rows, act_rows, obs_idx, act_idx = [], [], [], []
        offset = 0
        for ep in episodes:
            s, info = ep.steps, ep.info
            obs_rows.append(
                observation_vectors(
                    s["joint_positions"],
                    s["gripper_width"],
                    s["tcp_position"],
                    s["tcp_yaw"],
                    info.skill,
                    np.array(info.target_position),
                    info.goal_yaw,
                )
            )
            act_rows.append(
                action_vectors(
                    s["action_tcp_position"],
                    s["action_tcp_yaw"],
                    s["action_gripper_width"],
                    np.array(info.target_position),
                    info.goal_yaw,
                )
            )
            n = len(ep)
            current = np.arange(n)[:, None]
            o = current + np.arange(-config.n_obs_steps + 1, 1)[None, :]
            a = current + np.arange(
                -config.n_obs_steps + 1, config.horizon - config.n_obs_steps + 1
            )
            obs_idx.append(np.clip(o, 0, n - 1) + offset)
            act_idx.append(np.clip(a, 0, n - 1) + offset)
            offset += n
        return cls(
            np.concatenate(obs_rows),
            np.concatenate(act_rows),
            np.concatenate(obs_idx),
            np.concatenate(act_idx),
            len(episodes),
        )
