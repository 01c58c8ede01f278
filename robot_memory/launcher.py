"""Start a stack's nodes as processes, for the pip-only world (no ``launch``).

It gives every node the DDS environment (robot_memory.ros_env), prefixes their
output with the node name, forwards Ctrl-C, shuts everything down cleanly
(SIGINT, then SIGTERM, then SIGKILL) and fails loudly when a required node
dies. ROS-free: nodes are plain ``python -m module --ros-args ...`` processes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from robot_memory.launch_spec import NodeSpec, format_ros_arg
from robot_memory.ros_env import dds_environment


class NodeDiedError(RuntimeError):
    """A required node exited while the stack was running."""

    def __init__(self, name: str, returncode: int, tail: Sequence[str]) -> None:
        lines = "\n".join(f"    {line}" for line in tail) or "    (no output)"
        super().__init__(f"node '{name}' died with exit code {returncode}; last output:\n{lines}")
        self.name = name
        self.returncode = returncode


def node_command(spec: NodeSpec, python: str = sys.executable) -> list[str]:
    cmd = [python, "-m", spec.module, "--ros-args", "-r", f"__node:={spec.name}"]
    for key, value in spec.parameters.items():
        cmd += ["-p", f"{key}:={format_ros_arg(value)}"]
    for src, dst in spec.remappings:
        cmd += ["-r", f"{src}:={dst}"]
    return cmd


def _default_sigint() -> None:
    """In the child, before exec: SIGINT back to its default. A launcher started
    in the background by a non-interactive shell (``cmd &``, nohup, some CI
    runners) inherits SIGINT *ignored*, and so would every node: Python then
    installs no KeyboardInterrupt handler and a node ignores our Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@dataclass
class _Running:
    spec: NodeSpec
    proc: subprocess.Popen[str]
    tail: list[str] = field(default_factory=list)
    pump: threading.Thread | None = None


class Launcher:
    """Run ``specs`` as child processes. Use as a context manager::

    with Launcher(stack("sim")) as launched:
        launched.wait()          # until Ctrl-C or a node dies
    """

    def __init__(
        self,
        specs: Sequence[NodeSpec],
        env: Mapping[str, str] | None = None,
        domain_id: int | None = None,
        output: TextIO | None = sys.stdout,
        shutdown_timeout_s: float = 5.0,
    ) -> None:
        if not specs:
            raise ValueError("this stack has no nodes to launch")
        self.specs = list(specs)
        self.env = dds_environment(env, domain_id=domain_id)
        self.output = output
        self.shutdown_timeout_s = shutdown_timeout_s
        self._running: list[_Running] = []
        self._lock = threading.Lock()

    def __enter__(self) -> Launcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def start(self) -> None:
        for spec in self.specs:
            proc = subprocess.Popen(
                node_command(spec),
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                bufsize=1,
                start_new_session=True,  # we deliver signals ourselves
                preexec_fn=_default_sigint,
            )
            running = _Running(spec, proc)
            running.pump = threading.Thread(target=self._pump, args=(running,), daemon=True)
            running.pump.start()
            self._running.append(running)
            self._say(f"started {spec.name} (pid {proc.pid}): {spec.description}")

    def _pump(self, running: _Running) -> None:
        assert running.proc.stdout is not None
        for line in running.proc.stdout:
            line = line.rstrip("\n")
            with self._lock:
                running.tail.append(line)
                del running.tail[:-20]
                if self.output is not None:
                    print(f"[{running.spec.name}] {line}", file=self.output, flush=True)

    def _say(self, text: str) -> None:
        if self.output is not None:
            with self._lock:
                print(f"[launch] {text}", file=self.output, flush=True)

    def check(self) -> None:
        """Raise :class:`NodeDiedError` if a required node has exited."""
        for r in self._running:
            code = r.proc.poll()
            if code is not None and r.spec.required:
                if r.pump is not None:
                    r.pump.join(timeout=1.0)
                with self._lock:
                    tail = list(r.tail)
                raise NodeDiedError(r.spec.name, code, tail)

    def wait(self, timeout_s: float | None = None, poll_s: float = 0.2) -> None:
        """Block until ``timeout_s`` passes (None: forever), checking node health."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while deadline is None or time.monotonic() < deadline:
            self.check()
            time.sleep(poll_s)

    def pids(self) -> dict[str, int]:
        return {r.spec.name: r.proc.pid for r in self._running}

    def shutdown(self) -> dict[str, int | None]:
        """Stop every node: SIGINT (clean rclpy shutdown), then SIGTERM, then SIGKILL."""
        alive = [r for r in self._running if r.proc.poll() is None]
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            for r in alive:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(r.proc.pid, sig)
            deadline = time.monotonic() + self.shutdown_timeout_s
            while alive and time.monotonic() < deadline:
                alive = [r for r in alive if r.proc.poll() is None]
                time.sleep(0.05)
            if not alive:
                break
            self._say(f"{[r.spec.name for r in alive]} ignored {sig.name}; escalating")
        codes = {}
        for r in self._running:
            codes[r.spec.name] = r.proc.poll()
            if r.pump is not None:
                r.pump.join(timeout=1.0)
        self._running.clear()
        return codes


def run_stack(specs: Sequence[NodeSpec], duration_s: float | None = None) -> int:
    """CLI entry: run until Ctrl-C (or ``duration_s``); non-zero if a node died."""
    launcher = Launcher(specs)
    try:
        with launcher:
            launcher._say("running; Ctrl-C to stop")
            launcher.wait(duration_s)
    except KeyboardInterrupt:
        launcher._say("Ctrl-C: shutting down")
        return 0
    except NodeDiedError as exc:
        print(f"[launch] ERROR: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0
