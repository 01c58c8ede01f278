"""The architecture contract (``.importlinter``, checked by import-linter): the
deployable core (perception, memory, planner, policy runtime, control, robot,
transforms, health) imports no simulator, scripted expert, learning,
evaluation, bag tooling, node, bring-up or app, directly or through another
module; the nodes a robot runs import no simulator, expert or learning; and
no two areas, nor two modules of one area, import each other in a cycle. The
other tests show the contract can fail: a copy of the package whose memory
core imports the simulator breaks it, and so does one with an import cycle.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint(root: Path) -> subprocess.CompletedProcess:
    """lint-imports on ``root``'s contract, with ``root``'s robot_memory first on the path."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    command = [str(LINT_IMPORTS), "--no-logo", "--no-cache", str(root / ".importlinter")]
    return subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=240)


def test_the_deployable_core_keeps_the_contract() -> None:
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


def copy_with_import(tmp_path: Path, module: str, imported: str) -> Path:
    """A copy of the package (and its contract) where ``module`` (a path under
    robot_memory/) also imports ``imported``."""
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "robot_memory", tmp_path / "robot_memory", ignore=ignore)
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    path = tmp_path / "robot_memory" / module
    path.write_text(path.read_text() + f"\nimport {imported}  # noqa: E402, F401\n")
    return tmp_path


def test_the_contract_breaks_when_a_core_imports_the_simulator(tmp_path: Path) -> None:
    result = lint(copy_with_import(tmp_path, "memory/__init__.py", "robot_memory.sim.scene"))
    assert result.returncode != 0, result.stdout
    assert "robot_memory.memory is not allowed to import robot_memory.sim" in result.stdout


def test_the_contract_breaks_on_an_import_cycle(tmp_path: Path) -> None:
    # the nodes import bring-up's launch spec; bring-up importing a node closes a cycle
    copy = copy_with_import(tmp_path, "bringup/launch_spec.py", "robot_memory.nodes.qos")
    result = lint(copy)
    assert result.returncode != 0, result.stdout
    assert "No cycles are allowed in robot_memory." in result.stdout
