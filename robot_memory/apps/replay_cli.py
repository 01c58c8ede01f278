"""``robot-memory replay``: publish a rosbag2 bag's topics (the node is
:mod:`robot_memory.nodes.replay_node`, the loop :mod:`robot_memory.replay.player`).

Exits 0 at the end of the bag and after a clean Ctrl-C / SIGTERM shutdown; the
last line printed is a JSON summary, after one line per topic saying what was
replayed and what skipped and why. A bag it cannot read, or with nothing it can
replay, is refused with one ``robot-memory replay: error: ...`` line and exit
status 2 (1 if the bag claimed messages and none could be read).

    robot-memory replay BAG [--rate N | --fast] [--loop] [--wait-for-subscribers S]
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import rclpy
from rclpy.executors import ExternalShutdownException

from robot_memory.bag.reader import BagError
from robot_memory.nodes.replay_node import ReplayNode, message_class
from robot_memory.replay.player import ReplayPlayer
from robot_memory.replay.replay_core import ReplayTiming


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="robot-memory replay", description="Publish a rosbag2 bag's topics, with /clock."
    )
    p.add_argument("bag", type=Path)
    speed = p.add_mutually_exclusive_group()
    speed.add_argument(
        "--rate", type=float, default=1.0, help="1 = recorded timing, N = N x faster"
    )
    speed.add_argument(
        "--fast", action="store_true", help="no timing; images capped by --max-image-rate"
    )
    p.add_argument(
        "--max-image-rate", type=float, default=60.0, help="images/s in --fast (0 = no cap)"
    )
    p.add_argument("--topics", nargs="+", default=None, help="replay only these topics")
    p.add_argument("--loop", action="store_true", help="start over at the end (time jumps back)")
    p.add_argument(
        "--clock-rate", type=float, default=100.0, help="Hz of bag time; 0 = the bag's /clock"
    )
    p.add_argument("--start-paused", action="store_true", help="wait for /replay/pause false")
    p.add_argument(
        "--wait-for-subscribers",
        type=float,
        default=0.0,
        metavar="S",
        help="wait up to S seconds for subscribers (all the graph lists) before starting",
    )
    p.add_argument(
        "--drain",
        type=float,
        default=5.0,
        metavar="S",
        help="at the end, wait up to S seconds for reliable subscribers to acknowledge",
    )
    p.add_argument("--no-progress", action="store_true")
    return p


def _error(text: str, code: int = 2) -> int:
    print(f"robot-memory replay: error: {text}", file=sys.stderr, flush=True)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.bag.exists():
        return _error(f"no bag at {args.bag}")
    try:
        timing = ReplayTiming(
            rate=args.rate, fast=args.fast, clock_rate=args.clock_rate, loop=args.loop
        )
        player = ReplayPlayer(
            args.bag,
            timing,
            message_class,
            args.topics,
            args.max_image_rate,
            args.start_paused,
            not args.no_progress,
        )
    except (BagError, ValueError) as err:
        return _error(str(err))
    if why := player.nothing_to_replay():
        return _error(f"nothing to replay in {args.bag}: {why}")
    rclpy.init(signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    stopped_by, code = "error", 0
    signal.signal(signal.SIGTERM, lambda *_: player.stop.set())
    signal.signal(signal.SIGINT, lambda *_: player.stop.set())
    node = ReplayNode(player)
    try:
        if args.wait_for_subscribers > 0:
            node.wait_for_subscribers(args.wait_for_subscribers)
        stopped_by = node.run()
        if stopped_by == "end" and args.drain > 0 and not node.drain(args.drain):
            print(f"replay: some messages not acknowledged within {args.drain} s", flush=True)
        if stopped_by == "end" and player.read_nothing():
            code = _error(f"read 0 of the {player.replayable()} messages {args.bag} lists", 1)
    except (BagError, ValueError) as err:
        code = _error(str(err))
    except (KeyboardInterrupt, ExternalShutdownException):
        stopped_by = "interrupt"
    finally:
        for line in player.report_lines():
            print(line, flush=True)
        print("replay summary: " + json.dumps(player.summary(stopped_by)), flush=True)
        node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
