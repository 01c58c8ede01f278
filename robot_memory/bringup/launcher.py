"""Start a stack's nodes as processes, for the pip-only world (no ``launch``).

It gives every node the DDS environment (robot_memory.bringup.ros_env), prefixes their
output with the node name, forwards Ctrl-C (and its own SIGTERM), shuts
everything down cleanly (SIGINT, then SIGTERM, then SIGKILL) and supervises:
a node whose spec says ``respawn`` is started again after ``respawn_delay_s``
with its restart count in ``ROBOT_MEMORY_RESTART_COUNT``, until it dies more
than ``max_restarts`` times within ``restart_window_s``; then, like a required
node that dies without respawn, it takes the stack down loudly
(:class:`NodeDiedError`). Children get PR_SET_PDEATHSIG, so a launcher killed
hard (SIGKILL) leaves no node behind on the DDS domain. Supervision runs in
:meth:`Launcher.check`: call it (or :meth:`Launcher.wait`) from the thread that
started the stack, since Linux ties PDEATHSIG to the thread that forked.
ROS-free: nodes are plain ``python -m module --ros-args ...`` processes.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from robot_memory.bringup.launch_spec import NodeSpec, RestartBudget, format_ros_arg
from robot_memory.bringup.ros_env import PARENT_PID_ENV, RESTART_COUNT_ENV, dds_environment

PR_SET_PDEATHSIG = 1


class NodeDiedError(RuntimeError):
    """A required node exited while the stack was running (without respawn,
    or more often than its restart budget allows)."""

    def __init__(
        self, name: str, returncode: int, tail: Sequence[str], restarts: int | None = None
    ) -> None:
        lines = "\n".join(f"    {line}" for line in tail) or "    (no output)"
        what = f"node '{name}' died with exit code {returncode}"
        if restarts is not None:
            what += f" after {restarts} restarts; too many in its window, giving up"
        super().__init__(f"{what}; last output:\n{lines}")
        self.name = name
        self.returncode = returncode
        self.restarts = restarts


def node_command(spec: NodeSpec, python: str = sys.executable) -> list[str]:
    cmd = [python, "-m", spec.module, "--ros-args", "-r", f"__node:={spec.name}"]
    for key, value in spec.parameters.items():
        cmd += ["-p", f"{key}:={format_ros_arg(value)}"]
    for src, dst in spec.remappings:
        cmd += ["-r", f"{src}:={dst}"]
    return cmd


def _libc_prctl() -> Callable[..., int] | None:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl  # resolved here, not after fork
    except (OSError, AttributeError):
        return None


_PRCTL = _libc_prctl()


def _child_setup() -> None:
    """In the child, before exec. (1) SIGINT back to its default: a launcher
    started in the background by a non-interactive shell (``cmd &``, nohup,
    some CI runners) inherits SIGINT *ignored*, and so would every node: Python
    then installs no KeyboardInterrupt handler and a node ignores our Ctrl-C.
    (2) SIGTERM when the launcher dies, even by SIGKILL: no orphans."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)


@dataclass
class _Running:
    spec: NodeSpec
    budget: RestartBudget
    proc: subprocess.Popen[str] | None = None
    tail: list[str] = field(default_factory=list)
    pump: threading.Thread | None = None
    respawn_at: float | None = None  # died; start again at this monotonic time
    finished: bool = False  # exited and neither respawned nor required


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
        self._stopping = False
        self.stop_s: dict[str, float] = {}  # seconds from the stop signal to each exit

    def __enter__(self) -> Launcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def start(self) -> None:
        for spec in self.specs:
            running = _Running(spec, RestartBudget.of(spec))
            self._running.append(running)
            self._spawn(running)
            self._say(f"started {spec.name} (pid {self._pid(running)}): {spec.description}")

    def _spawn(self, running: _Running) -> None:
        restarts = running.budget.restarts
        spec = running.spec.respawned() if restarts else running.spec
        env = {**self.env, RESTART_COUNT_ENV: str(restarts), PARENT_PID_ENV: str(os.getpid())}
        running.proc = subprocess.Popen(
            node_command(spec),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            start_new_session=True,  # we deliver signals ourselves
            preexec_fn=_child_setup,
        )
        running.pump = threading.Thread(
            target=self._pump, args=(running, running.proc), daemon=True
        )
        running.pump.start()

    @staticmethod
    def _pid(running: _Running) -> int:
        assert running.proc is not None
        return running.proc.pid

    def _pump(self, running: _Running, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
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
        """Supervise: respawn what died and may respawn; raise
        :class:`NodeDiedError` if a required node is gone for good."""
        now = time.monotonic()
        for r in self._running:
            if r.respawn_at is not None:
                if now >= r.respawn_at and not self._stopping:
                    r.respawn_at = None
                    self._spawn(r)
                    self._say(
                        f"restarted {r.spec.name} (pid {self._pid(r)}): restart "
                        f"{r.budget.restarts} (at most {r.spec.max_restarts} "
                        f"in {r.spec.restart_window_s:g} s)"
                    )
                continue
            code = None if r.finished or r.proc is None else r.proc.poll()
            if code is None or self._stopping:
                continue
            if r.pump is not None:
                r.pump.join(timeout=1.0)
            if r.spec.respawn:
                if not r.budget.allow(now):
                    raise NodeDiedError(r.spec.name, code, self._tail(r), r.budget.restarts)
                r.respawn_at = now + r.spec.respawn_delay_s
                self._say(
                    f"{r.spec.name} died (exit code {code}); restart {r.budget.restarts} "
                    f"in {r.spec.respawn_delay_s:g} s"
                )
            elif r.spec.required:
                raise NodeDiedError(r.spec.name, code, self._tail(r))
            else:
                r.finished = True
                self._say(f"{r.spec.name} exited (exit code {code}); not required, not restarted")

    def _tail(self, running: _Running) -> list[str]:
        with self._lock:
            return list(running.tail)

    def wait(self, timeout_s: float | None = None, poll_s: float = 0.2) -> None:
        """Block until ``timeout_s`` passes (None: forever), supervising the nodes."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while deadline is None or time.monotonic() < deadline:
            self.check()
            time.sleep(poll_s)

    def pids(self) -> dict[str, int]:
        """The current process of each node (a respawned node has a new one)."""
        return {r.spec.name: r.proc.pid for r in self._running if r.proc is not None}

    def restarts(self) -> dict[str, int]:
        return {r.spec.name: r.budget.restarts for r in self._running}

    def shutdown(
        self, first: signal.Signals | Mapping[str, signal.Signals] = signal.SIGINT
    ) -> dict[str, int | None]:
        """Stop every node: ``first`` (SIGINT: a clean rclpy shutdown; SIGTERM
        does the same; or a signal per node name, SIGINT for the others), then
        SIGTERM, then SIGKILL, ``shutdown_timeout_s`` apart. Returns each
        node's exit code (of its last process); :attr:`stop_s` says how long
        each took to exit after its first signal."""
        self._stopping = True
        alive = [r for r in self._running if r.proc is not None and r.proc.poll() is None]
        per_node = dict(first) if isinstance(first, Mapping) else {}
        default = signal.SIGINT if isinstance(first, Mapping) else first
        firsts = {r.spec.name: per_node.get(r.spec.name, default) for r in alive}
        t0 = time.monotonic()
        self.stop_s = {}
        rounds = [None, signal.SIGTERM, signal.SIGKILL]  # None: each node's first signal
        if set(firsts.values()) == {signal.SIGTERM}:
            rounds.remove(signal.SIGTERM)
        for sig in rounds:
            for r in alive:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(r.proc.pid, sig or firsts[r.spec.name])
            deadline = time.monotonic() + self.shutdown_timeout_s
            while alive and time.monotonic() < deadline:
                for r in alive:
                    if r.proc.poll() is not None:
                        self.stop_s[r.spec.name] = time.monotonic() - t0
                alive = [r for r in alive if r.proc.poll() is None]
                time.sleep(0.02)
            if not alive:
                break
            what = sig.name if sig else "their first signal"
            self._say(f"{[r.spec.name for r in alive]} ignored {what}; escalating")
        codes: dict[str, int | None] = {}
        for r in self._running:
            codes[r.spec.name] = None if r.proc is None else r.proc.poll()
            if r.pump is not None:
                r.pump.join(timeout=1.0)
        self._running.clear()
        return codes


class _TerminatedError(Exception):
    pass


def _raise_terminated(signum: int, _frame: object) -> None:
    raise _TerminatedError(signal.Signals(signum).name)


def run_stack(
    specs: Sequence[NodeSpec],
    duration_s: float | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    """CLI entry: run until Ctrl-C / SIGTERM (or ``duration_s``); non-zero if a
    node died for good. ``env``: the nodes' environment (default: ours, with
    the one-machine DDS settings filled in)."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_terminated)  # shut the nodes down, like Ctrl-C
    launcher = Launcher(specs, env=env)
    try:
        with launcher:
            launcher._say("running; Ctrl-C to stop")
            launcher.wait(duration_s)
    except KeyboardInterrupt:
        launcher._say("Ctrl-C: shutting down")
        return 0
    except _TerminatedError as sig:
        launcher._say(f"{sig}: shut down")
        return 0
    except NodeDiedError as exc:
        print(f"[launch] ERROR: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0
