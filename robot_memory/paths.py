"""Where the package's data lives (config/, sim/, models/, launch/).

With colcon the data is installed under ``share/robot_memory``; in a source
checkout (the pip-only world, ``pip install -e .``) it sits at the repo root.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

PACKAGE_NAME = "robot_memory"


@lru_cache(maxsize=1)
def share_dir() -> Path:
    """Return the directory that holds ``config/``, ``sim/``, ``models/``."""
    repo_root = Path(__file__).resolve().parent.parent
    if (repo_root / "package.xml").is_file() and (repo_root / "config").is_dir():
        return repo_root
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory(PACKAGE_NAME))
    except Exception as exc:  # any lookup failure means "not installed"
        raise FileNotFoundError(
            "robot_memory data files not found: run from a source checkout "
            "(pip install -e .) or a colcon install with the workspace sourced"
        ) from exc


def config_path(name: str) -> Path:
    return share_dir() / "config" / name


def sim_path(name: str) -> Path:
    return share_dir() / "sim" / name


#: The shipped diffusion policy checkpoint (models/<name>/, see its README.md).
DEFAULT_POLICY = "diffusion_pick_place"
#: The same policy distilled for one-step sampling (``sampler:=consistency``).
CONSISTENCY_POLICY = "consistency_pick_place"


def model_path(name: str = DEFAULT_POLICY) -> Path:
    return share_dir() / "models" / name
