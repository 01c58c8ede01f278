"""The architecture contract (``.importlinter``, checked by import-linter): the
deployable core (perception, memory, planner, control, robot, transforms, the
policy runtime and what it needs) imports no simulator, scripted expert,
learning, evaluation, bag tooling, node or app, directly or through another
module. The second test shows the contract can fail: a copy of the package
whose memory core imports the simulator breaks it.
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
    assert "1 kept, 0 broken" in result.stdout


def test_the_contract_breaks_when_a_core_imports_the_simulator(tmp_path: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "robot_memory", tmp_path / "robot_memory", ignore=ignore)
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    core = tmp_path / "robot_memory" / "memory" / "__init__.py"
    core.write_text(core.read_text() + "\nimport robot_memory.sim.scene  # noqa: E402, F401\n")
    result = lint(tmp_path)
    assert result.returncode != 0, result.stdout
    assert "robot_memory.memory is not allowed to import robot_memory.sim" in result.stdout
