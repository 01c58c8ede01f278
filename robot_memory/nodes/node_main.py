"""The one ``main()`` of the nodes: init, spin, quick and clean shutdown.

* SIGINT and SIGTERM both stop the node the same way: the spin loop ends, the
  node's ``shutdown()`` hook runs (worker threads, files), the node and the
  context are destroyed, exit code 0, no traceback. rclpy's own signal handlers
  are not installed: they shut the context down from another thread while this
  one may be creating a wait set or a subscription (``RCLError: ... context is
  not valid``); here only this thread shuts it down, after spinning stops.
* Bounded: a process still alive ``EXIT_DEADLINE_S`` (1.8 s; environment
  ``ROBOT_MEMORY_EXIT_DEADLINE_S``, 0.5-4.5 s) after the signal (a hook stuck
  in a join, a non-daemon thread) logs it and leaves with ``os._exit(0)``.
  The memory store commits every update, so nothing is lost by that.
* Resilient: an exception out of a callback or out of the executor itself while
  the context is fine is logged (one line), counted as the rejected input
  ``uncaught exception`` on /diagnostics, and spinning goes on.
* Supervised: the launcher's restart count (``ROBOT_MEMORY_RESTART_COUNT``) is
  reported on /diagnostics as ``restarts``; a node whose launcher
  (``ROBOT_MEMORY_PARENT_PID``) dies stops too (PR_SET_PDEATHSIG + a check of
  the parent pid), so no node outlives its launcher on the DDS domain.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable

import rclpy
from rclpy.executors import (
    ExternalShutdownException,
    MultiThreadedExecutor,
    ShutdownException,
    SingleThreadedExecutor,
)
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from robot_memory.bringup.ros_env import PARENT_PID_ENV, RESTART_COUNT_ENV
from robot_memory.health.counters import HealthCounters
from robot_memory.nodes.executors import PatientMultiThreadedExecutor

SPIN_PERIOD_S = 0.1  # longest a signal or a dead parent waits to be noticed
EXIT_DEADLINE_ENV = "ROBOT_MEMORY_EXIT_DEADLINE_S"  # a slower machine may give more time


def _exit_deadline_s() -> float:
    """1.8 s, or the environment's value within 0.5..4.5 s (under the launcher's
    5 s before SIGKILL)."""
    try:
        value = float(os.environ.get(EXIT_DEADLINE_ENV, "1.8"))
    except ValueError:
        value = 1.8
    return min(max(value, 0.5), 4.5) if value == value else 1.8


EXIT_DEADLINE_S = _exit_deadline_s()  # from the stop request to the process gone, whatever hangs
PR_SET_PDEATHSIG = 1


class _Stop:
    """Why and since when the node is stopping (set from a signal handler)."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.reason = ""
        self.building = True  # make_node() still running: a signal interrupts it

    def request(self, reason: str) -> None:
        if self.requested.is_set():
            return
        self.reason = reason
        self.requested.set()
        timer = threading.Timer(EXIT_DEADLINE_S, _exit_now, args=(reason,))
        timer.daemon = True
        timer.start()

    def on_signal(self, signum: int, _frame: object) -> None:
        self.request(signal.Signals(signum).name)
        if self.building:
            raise KeyboardInterrupt  # unwind a slow constructor (model loading)


def _exit_now(late_after: str = "") -> None:
    """Leave with exit code 0 now; ``late_after``: the stop request that the
    process outlived by ``EXIT_DEADLINE_S``."""
    if late_after:
        print(
            f"[node_main] still running {EXIT_DEADLINE_S} s after {late_after}; exiting now",
            file=sys.stderr,
            flush=True,
        )
    with contextlib.suppress(Exception):
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(0)


def parent_pdeathsig(sig: int = signal.SIGTERM) -> None:
    """Ask Linux to send ``sig`` to this process when its parent dies."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


def _parent_watch() -> Callable[[], bool]:
    """A check that is True once the launcher named in the environment is gone."""
    text = os.environ.get(PARENT_PID_ENV, "")
    if not text.isdigit():
        return lambda: False
    parent = int(text)
    if os.getppid() != parent:
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            return lambda: True  # it died before we got here
        except PermissionError:
            pass
        return lambda: False  # started through a wrapper (--launch-prefix): not ours to watch
    parent_pdeathsig()
    return lambda: os.getppid() != parent


def restart_count() -> int:
    text = os.environ.get(RESTART_COUNT_ENV, "0")
    return int(text) if text.isdigit() else 0


class _Uncaught:
    """Counts every uncaught exception; logs the first few, then once a second."""

    FIRST = 5

    def __init__(self) -> None:
        self.count = 0
        self.last_log = 0.0

    def __call__(self, node: Node, exc: BaseException) -> None:
        self.count += 1
        health = getattr(node, "health", None)
        if isinstance(health, HealthCounters):
            health.reject("uncaught exception")
        now = time.monotonic()
        if self.count > self.FIRST and now - self.last_log < 1.0:
            return
        self.last_log = now
        where = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
        at = f" at {where[0].filename}:{where[0].lineno}" if where else ""
        node.get_logger().error(
            f"uncaught exception, still spinning: {exc!r}{at} ({self.count} so far)"
        )


def _quiet_thread_errors(stop: _Stop) -> None:
    """Worker threads that trip over the destroyed context during shutdown say
    so in one line instead of a traceback."""
    default = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        if stop.requested.is_set():
            name = args.thread.name if args.thread else "?"
            print(f"[node_main] thread {name} ended at shutdown: {args.exc_value!r}", flush=True)
        else:
            default(args)

    threading.excepthook = hook


def spin_node(
    make_node: Callable[[], Node],
    args: list[str] | None = None,
    check: Callable[[Node], None] | None = None,
    threads: int = 1,
) -> None:
    """Run ``make_node()`` until SIGINT / SIGTERM / the launcher's death, then
    call its ``shutdown()`` (if it has one), destroy it, shut rclpy down and
    end the process (exit code 0, without the interpreter's slow teardown).
    ``check(node)`` runs after every spin; what it raises ends the node (a
    fatal condition of the node's own, e.g. the sim loop failed). ``threads`` > 1:
    a multi-threaded executor, for a node whose callbacks wait on futures that
    other callbacks deliver (an action server calling services)."""
    stop = _Stop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop.on_signal)
    _quiet_thread_errors(stop)
    parent_gone = _parent_watch()
    node: Node | None = None
    try:
        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
        node = make_node()
        stop.building = False
        health = getattr(node, "health", None)
        if isinstance(health, HealthCounters):
            health.set_value("restarts", restart_count())
        if restart_count():
            node.get_logger().warning(f"restarted by its launcher (restart {restart_count()})")
        _spin(node, stop, parent_gone, check, threads)
    except KeyboardInterrupt:
        stop.request("KeyboardInterrupt")
    finally:
        stop.building = False
        _close(node, stop)
    if stop.requested.is_set():
        _exit_now()  # all closed: skip the interpreter's teardown of torch & co (~1 s)


def _spin(
    node: Node,
    stop: _Stop,
    parent_gone: Callable[[], bool],
    check: Callable[[Node], None] | None,
    threads: int = 1,
) -> None:
    executor = (
        PatientMultiThreadedExecutor(num_threads=threads, context=node.context)
        if threads > 1
        else SingleThreadedExecutor(context=node.context)
    )
    executor.add_node(node)
    uncaught = _Uncaught()
    while not stop.requested.is_set() and node.context.ok():
        try:
            executor.spin_once(timeout_sec=SPIN_PERIOD_S)
        except (ExternalShutdownException, ShutdownException):
            break
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            if stop.requested.is_set() or not node.context.ok():
                break  # a take racing the shutdown: that is the shutdown
            uncaught(node, exc)
        if check is not None:
            check(node)
        if parent_gone():
            node.get_logger().warning("the launcher is gone; shutting down")
            stop.request("parent exit")
    with contextlib.suppress(Exception):
        if isinstance(executor, MultiThreadedExecutor):  # a callback may still wait: the
            executor.shutdown(timeout_sec=0.5, wait_for_threads=False)  # node's shutdown() ends it
        else:
            executor.shutdown(timeout_sec=0.5)


def _close(node: Node | None, stop: _Stop) -> None:
    # The exit deadline runs from a stop request (signal, launcher gone); a node
    # ending on an error of its own exits non-zero with its traceback instead.
    for step in ("shutdown", "destroy_node"):
        hook = getattr(node, step, None)
        if not callable(hook):
            continue
        try:
            hook()
        except Exception as exc:  # noqa: BLE001 - shutting down: say it, go on
            print(f"[node_main] {step}() failed at shutdown: {exc!r}", file=sys.stderr, flush=True)
    with contextlib.suppress(Exception):
        rclpy.try_shutdown()
    stuck = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    for thread in stuck:
        thread.join(timeout=max(0.0, EXIT_DEADLINE_S - 0.5))
