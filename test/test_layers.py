"""The cores are ROS-free: only the node layer touches rclpy and message types.

Every module of ``robot_memory`` outside the node layer (``robot_memory/nodes``,
bring-up, the command-line apps and the CLI) must import neither
rclpy nor any message package (``*_msgs``, ``*_srvs``, ``*_interfaces``):
conversion between messages and the cores' own types lives in
``robot_memory/nodes/*_conversions.py``. Checked on the source (AST), so a
lazy import inside a function counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "robot_memory"
#: the node layer, the process plumbing around it and the apps that talk ROS
NODE_LAYER = ("nodes/", "bringup/", "apps/", "cli.py")
ROS_PACKAGE_SUFFIXES = ("_msgs", "_srvs", "_interfaces")


def ros_imports(path: Path) -> list[str]:
    """The ROS packages ``path`` imports (top-level names)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top in ("rclpy", "rosidl_runtime_py") or top.endswith(ROS_PACKAGE_SUFFIXES):
                found.append(top)
    return found


def core_modules() -> list[Path]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith(NODE_LAYER):
            continue
        out.append(path)
    return out


def test_the_scan_sees_the_cores_and_would_catch_an_import(tmp_path):
    rels = {p.relative_to(PACKAGE).as_posix() for p in core_modules()}
    assert {"memory/scene_graph.py", "control/safety.py", "schemas.py"} <= rels
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from robot_memory_interfaces.msg import SceneGraph\n")
    assert ros_imports(probe) == ["robot_memory_interfaces"]


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_core_module_imports_no_ros(path):
    assert ros_imports(path) == [], f"{path.relative_to(PACKAGE)} imports {ros_imports(path)}"
