"""Build the ROS 2 interface packages into a virtual environment (pip world).

ROS 2's PyPI wheels carry rosidl's generators, so ``.msg``/``.srv``/``.action``
packages build with plain CMake into the venv prefix; at run time nothing more
is needed (the wheels' bootstrapper puts ``$VENV/lib`` on the library path).
Built here: ``third_party/tf2_msgs`` (no wheel on PyPI; the upstream TFMessage
definition, same type hash) and ``robot_memory_interfaces``.

Idempotent: a package is rebuilt only when one of its files changed (a stamp
of their hashes in ``$VENV/.interfaces/<name>.sha256``). The three traps of
the wheels (``../shared/DESIGN.md`` section 6) are handled here:
(1) every build wheel is pinned in requirements.txt (several declare no
dependencies); (2) the wheels' exported CMake files hard-code the wheel
builder's Python and numpy include paths: rewritten to this venv's;
(3) ``ament_package`` and ``catkin_pkg`` must import (pinned as well).

Usage: python scripts/build_interfaces.py [--venv .venv] [--jobs N] [--force]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: In build order (robot_memory_interfaces does not depend on tf2_msgs, but a
#: later package may).
PACKAGES = (ROOT / "third_party" / "tf2_msgs", ROOT / "robot_memory_interfaces")
BUILDER_PATHS = re.compile(r"/opt/python/cp3\d+-cp3\d+/[^;\"]*")


def package_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def fix_exported_include_dirs(prefix: Path, python_include: str, numpy_include: str) -> int:
    """Trap 2: point the wheels' rosidl_generator_py exports at this venv's
    Python and numpy headers. Returns how many files were rewritten."""
    fixed = 0
    for path in prefix.glob("share/*/cmake/export_*__rosidl_generator_pyExport.cmake"):
        text = path.read_text()
        if "/opt/python/" not in text:
            continue

        def repl(match: re.Match[str]) -> str:
            return numpy_include if "numpy" in match.group(0) else python_include

        path.write_text(BUILDER_PATHS.sub(repl, text))
        fixed += 1
    return fixed


def build(folder: Path, venv: Path, jobs: int) -> None:
    build_dir = venv / ".interfaces" / "build" / folder.name
    shutil.rmtree(build_dir, ignore_errors=True)
    env = dict(os.environ, AMENT_PREFIX_PATH=str(venv), CMAKE_PREFIX_PATH=str(venv))
    python = venv / "bin" / "python"
    steps = [
        [
            "cmake", "-S", str(folder), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release",
            f"-DCMAKE_INSTALL_PREFIX={venv}", f"-DPython3_EXECUTABLE={python}",
            "-DBUILD_TESTING=OFF", "-Wno-dev",
        ],
        ["cmake", "--build", str(build_dir), "-j", str(jobs)],
        ["cmake", "--install", str(build_dir)],
    ]  # fmt: skip
    log = venv / ".interfaces" / f"{folder.name}.log"
    with log.open("w") as out:
        for cmd in steps:
            done = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
            if done.returncode != 0:
                sys.exit(f"[interfaces] {folder.name}: `{' '.join(cmd[:3])} ...` failed; see {log}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--venv", type=Path, default=Path(sys.prefix))
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--force", action="store_true", help="rebuild even if nothing changed")
    args = ap.parse_args()
    venv = args.venv.resolve()
    if shutil.which("cmake") is None or shutil.which("c++") is None:
        sys.exit("[interfaces] cmake and a C++ compiler are needed: apt-get install cmake g++")
    import numpy

    fixed = fix_exported_include_dirs(venv, sysconfig.get_paths()["include"], numpy.get_include())
    if fixed:
        print(f"[interfaces] pointed {fixed} exported CMake files at this venv's headers")
    stamps = venv / ".interfaces"
    stamps.mkdir(exist_ok=True)
    for folder in PACKAGES:
        stamp = stamps / f"{folder.name}.sha256"
        want = package_hash(folder)
        if not args.force and stamp.exists() and stamp.read_text() == want:
            continue
        print(f"[interfaces] building {folder.name} (a few minutes the first time)", flush=True)
        start = time.monotonic()
        build(folder, venv, args.jobs)
        stamp.write_text(want)
        print(f"[interfaces] {folder.name} installed in {time.monotonic() - start:.0f} s")


if __name__ == "__main__":
    main()
