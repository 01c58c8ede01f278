"""ament_python package: builds with colcon inside a sourced ROS 2, and installs
with ``pip install -e .`` in the pip-only world (see scripts/bootstrap.sh)."""

from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "robot_memory"
HERE = Path(__file__).parent


def tree(folder: str) -> list[tuple[str, list[str]]]:
    """data_files entries that install ``folder`` under share/robot_memory."""
    entries: dict[str, list[str]] = {}
    for path in sorted((HERE / folder).rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            rel = path.relative_to(HERE)
            entries.setdefault(f"share/{PACKAGE}/{rel.parent}", []).append(str(rel))
    return list(entries.items())


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*", "bench"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        *tree("launch"),
        *tree("config"),
        *tree("sim"),
        *tree("models"),
    ],
    install_requires=["setuptools"],
    # --workers / --ray-address of eval-tasks, eval-policy, eval-qa, collect-demos
    # [viewer]: `robot-memory view`, the live view in a browser
    extras_require={"ray": ["ray==2.60.0"], "viewer": ["rerun-sdk==0.41.0"]},
    zip_safe=False,
    maintainer="robot_memory maintainers",
    description="Spatial memory for robot arms on ROS 2",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "robot-memory = robot_memory.cli:main",
            "sim_node = robot_memory.nodes.sim_node:main",
            "expert_node = robot_memory.nodes.expert_node:main",
            "perception_node = robot_memory.nodes.perception_node:main",
            "memory_node = robot_memory.nodes.memory_node:main",
            "replay_node = robot_memory.apps.replay_cli:main",
            "safety_node = robot_memory.nodes.safety_node:main",
            "policy_node = robot_memory.nodes.policy_node:main",
            "planner_node = robot_memory.nodes.planner_node:main",
            "viewer_node = robot_memory.nodes.viewer_node:main",
        ],
    },
)
