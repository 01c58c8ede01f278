"""``robot-memory record``: record topics to a rosbag2 bag (MCAP or sqlite3)
with the :class:`~robot_memory.nodes.recorder_node.Recorder` node, printing
progress and a summary of what was recorded and what not, and why.

    robot-memory record -o BAG [TOPIC ...] [--storage sqlite3] [--duration S] [--use-sim-time]
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor

from robot_memory.bag.recording import RecordSummary
from robot_memory.bag.writer import BagWriter
from robot_memory.nodes.recorder_node import Recorder

PROGRESS_PERIOD_S = 2.0


def record(
    output: Path,
    topics: list[str] | None,
    storage: str = "mcap",
    duration_s: float | None = None,
    stop_event: threading.Event | None = None,
    progress: bool = True,
    *,
    use_sim_time: bool = False,
    ros_args: list[str] | None = None,
) -> RecordSummary:
    """Record ``topics`` (every topic when None) into a new bag at ``output``.

    Runs until ``duration_s`` passes, ``stop_event`` is set or Ctrl-C
    (KeyboardInterrupt, swallowed here); the bag is always closed so what was
    recorded is readable. Raises ``FileExistsError`` if ``output`` exists and
    ``ValueError`` for an unknown storage, before anything is started.
    """
    writer = BagWriter(output, storage)
    writer.open()
    context = Context()
    stopped_by = "interrupt"
    missing: dict[str, str] = {}
    dropped = failed = 0
    start = time.monotonic()
    try:
        rclpy.init(context=context, args=ros_args)
        node = Recorder(writer, topics, context=context, use_sim_time=use_sim_time)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        if progress:
            requested = node.recording.requested
            what = " ".join(requested) if requested else "all topics"
            print(f"[record] recording {what} to {output} ({storage}); Ctrl-C stops", flush=True)
        next_progress = start + PROGRESS_PERIOD_S
        try:
            while True:
                if stop_event is not None and stop_event.is_set():
                    stopped_by = "stop_event"
                    break
                if duration_s is not None and time.monotonic() - start >= duration_s:
                    stopped_by = "duration"
                    break
                executor.spin_once(timeout_sec=0.05)
                if progress and time.monotonic() >= next_progress:
                    next_progress += PROGRESS_PERIOD_S
                    print(node.recording.progress_line(time.monotonic() - start), flush=True)
        except KeyboardInterrupt:
            stopped_by = "interrupt"
        finally:
            node.stop()
            missing = node.missing()
            dropped, failed = node.recording.dropped, node.recording.failed
            executor.shutdown(timeout_sec=1.0)
            node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)
        writer.close()
    return RecordSummary(
        output=Path(output),
        storage=storage,
        duration_s=time.monotonic() - start,
        stopped_by=stopped_by,
        counts=writer.counts,
        types=writer.topics,
        missing=missing,
        dropped=dropped,
        failed=failed,
        bytes_written=writer.bytes_written,
    )


def main(argv: list[str] | None = None) -> int:
    from robot_memory.bringup.ros_env import apply_to_current_process

    args_in = sys.argv[1:] if argv is None else argv
    ros_args: list[str] = []
    if "--ros-args" in args_in:
        cut = args_in.index("--ros-args")
        args_in, ros_args = args_in[:cut], args_in[cut:]
    parser = argparse.ArgumentParser(
        prog="robot-memory record", description="Record topics to a rosbag2 bag."
    )
    parser.add_argument("-o", "--output", required=True, help="bag folder to create")
    parser.add_argument("topics", nargs="*", help="topics to record (default: all)")
    parser.add_argument("--storage", choices=["mcap", "sqlite3"], default="mcap")
    parser.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    parser.add_argument("--use-sim-time", action="store_true", help="stamp with /clock time")
    parser.add_argument("--no-progress", action="store_true", help="no periodic progress line")
    args = parser.parse_args(args_in)

    apply_to_current_process()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        summary = record(
            Path(args.output),
            args.topics or None,
            storage=args.storage,
            duration_s=args.duration,
            stop_event=stop,
            progress=not args.no_progress,
            use_sim_time=args.use_sim_time,
            ros_args=ros_args or None,
        )
    except (FileExistsError, ValueError) as err:
        print(f"recorder: {err}", file=sys.stderr)
        return 2
    print(summary, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
