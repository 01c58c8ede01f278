"""The episode dataset: one folder, one ``.npz`` per episode, a ``meta.json``.

Format (version 1; documented in docs/policy_data.md)::

    <dataset>/
      meta.json                 {"format": "robot_memory.episodes", "version": 1,
                                 "fps": 10.0, "source": "...", "episodes": [EpisodeInfo...]}
      episode_000000.npz        arrays, one row per control step (T rows):

        time                    (T,)   seconds since the episode started
        joint_positions         (T, 7) measured arm joints [rad]
        gripper_width           (T,)   measured finger opening [m]
        tcp_position            (T, 3) TCP in the table frame [m] (forward kinematics)
        tcp_yaw                 (T,)   top-down hand yaw [rad]
        action_joint_positions  (T, 7) commanded arm joints at that step
        action_tcp_position     (T, 3) TCP of the commanded joints
        action_tcp_yaw          (T,)
        action_gripper_width    (T,)   commanded gripper width [m]

Every episode carries its goal in ``meta.json``: the skill (``pick`` or
``place``), the target position (the object's centre for pick, the surface
point to put it on for place), the hand yaw to use, the object, the seed and
whether it succeeded. Arrays are plain numbers (``np.load(allow_pickle=False)``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

FORMAT = "robot_memory.episodes"
VERSION = 1
SKILLS = ("pick", "place")
STEP_ARRAYS: dict[str, tuple[int, ...]] = {
    "time": (),
    "joint_positions": (7,),
    "gripper_width": (),
    "tcp_position": (3,),
    "tcp_yaw": (),
    "action_joint_positions": (7,),
    "action_tcp_position": (3,),
    "action_tcp_yaw": (),
    "action_gripper_width": (),
}


class DatasetError(ValueError):
    """A dataset folder or episode that does not follow the format."""


@dataclass
class EpisodeInfo:
    index: int
    skill: str
    target_position: list[float]
    goal_yaw: float
    length: int
    object_id: str = ""
    target_id: str = ""
    seed: int = -1
    success: bool = True
    source: str = ""

    def __post_init__(self) -> None:
        if self.skill not in SKILLS:
            raise DatasetError(f"unknown skill {self.skill!r}; expected one of {SKILLS}")
        if len(self.target_position) != 3 or not np.all(np.isfinite(self.target_position)):
            raise DatasetError(f"target_position must be 3 finite numbers: {self.target_position}")


@dataclass
class Episode:
    info: EpisodeInfo
    steps: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.steps["time"].shape[0])


def validate_steps(steps: dict[str, np.ndarray]) -> int:
    """Check names, shapes and finiteness; return the episode length."""
    missing = set(STEP_ARRAYS) - set(steps)
    if missing:
        raise DatasetError(f"episode is missing arrays: {sorted(missing)}")
    length = int(np.asarray(steps["time"]).shape[0])
    if length < 2:
        raise DatasetError(f"episode has {length} steps; at least 2 are needed")
    for name, tail in STEP_ARRAYS.items():
        arr = np.asarray(steps[name])
        if arr.shape != (length, *tail):
            raise DatasetError(f"{name} has shape {arr.shape}, expected {(length, *tail)}")
        if not np.all(np.isfinite(arr)):
            raise DatasetError(f"{name} has non-finite values")
    if np.any(np.diff(steps["time"]) <= 0):
        raise DatasetError("time is not strictly increasing")
    return length


class EpisodeWriter:
    """Append episodes to a dataset folder; ``meta.json`` is rewritten atomically
    after every episode, so an interrupted collection keeps what it wrote."""

    def __init__(self, root: str | Path, fps: float, source: str, overwrite: bool = False) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        meta = self.root / "meta.json"
        if meta.exists() and not overwrite:
            existing = read_meta(self.root)
            if abs(existing["fps"] - fps) > 1e-9:
                raise DatasetError(f"{self.root} holds {existing['fps']} fps episodes, not {fps}")
            self.episodes = [EpisodeInfo(**e) for e in existing["episodes"]]
            self.previous_source = str(existing.get("source", ""))
        else:
            self.episodes = []
            self.previous_source = ""
        self.fps = fps
        # a dataset of several sources (two cells' demonstrations) says so
        same = not self.previous_source or self.previous_source == source
        self.source = source if same else f"{self.previous_source}+{source}"

    def append(self, info: EpisodeInfo, steps: dict[str, np.ndarray]) -> EpisodeInfo:
        info.length = validate_steps(steps)
        info.index = len(self.episodes)
        arrays = {
            k: np.asarray(steps[k], dtype=np.float32 if k != "time" else np.float64)
            for k in STEP_ARRAYS
        }
        np.savez_compressed(self.root / f"episode_{info.index:06d}.npz", **arrays)
        self.episodes.append(info)
        self._write_meta()
        return info

    def _write_meta(self) -> None:
        meta = {
            "format": FORMAT,
            "version": VERSION,
            "fps": self.fps,
            "source": self.source,
            "episodes": [asdict(e) for e in self.episodes],
        }
        tmp = self.root / "meta.json.tmp"
        tmp.write_text(json.dumps(meta, indent=1))
        tmp.replace(self.root / "meta.json")


def read_meta(root: str | Path) -> dict:
    path = Path(root) / "meta.json"
    if not path.is_file():
        raise DatasetError(f"{root} is not an episode dataset (no meta.json)")
    meta = json.loads(path.read_text())
    if meta.get("format") != FORMAT:
        raise DatasetError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    if meta.get("version") != VERSION:
        raise DatasetError(f"{path}: version {meta.get('version')}, this code reads {VERSION}")
    return meta


def load_episodes(root: str | Path, only_successful: bool = True) -> Iterator[Episode]:
    root = Path(root)
    for raw in read_meta(root)["episodes"]:
        info = EpisodeInfo(**raw)
        if only_successful and not info.success:
            continue
        with np.load(root / f"episode_{info.index:06d}.npz", allow_pickle=False) as data:
            steps = {k: data[k] for k in STEP_ARRAYS}
        validate_steps(steps)
        yield Episode(info, steps)


__all__ = [
    "SKILLS",
    "STEP_ARRAYS",
    "DatasetError",
    "Episode",
    "EpisodeInfo",
    "EpisodeWriter",
    "load_episodes",
    "read_meta",
    "validate_steps",
]
