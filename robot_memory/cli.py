"""``robot-memory``: the command line for the pip-only world (and any other).

    robot-memory launch sim [sim.seed:=3 sim.real_time_factor:=2.0]
    robot-memory record -o BAG [TOPIC ...] [--storage sqlite3] [--duration S]
    robot-memory demo [--output out/demo] [--object red_cube] [--place bin]

Commands import rclpy only when they run, so ``--help`` works anywhere.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _cmd_launch(args: argparse.Namespace) -> int:
    from robot_memory.launch_spec import parse_override, stack
    from robot_memory.launcher import run_stack

    overrides: dict[str, dict] = {}
    try:
        for text in args.overrides:
            node, param, value = parse_override(text)
            overrides.setdefault(node, {})[param] = value
        specs = stack(args.stack, overrides)
    except ValueError as err:
        print(f"robot-memory launch: {err}", file=sys.stderr)
        return 2
    if not specs:
        print(
            f"robot-memory launch: stack {args.stack!r} has no robot_memory nodes yet "
            "(see docs/hardware.md for what runs there today)",
            file=sys.stderr,
        )
        return 2
    return run_stack(specs, duration_s=args.duration)


def _cmd_record(args: argparse.Namespace) -> int:
    # One recorder command line: robot_memory.nodes.recorder_node owns the options.
    from robot_memory.nodes.recorder_node import main as recorder_main

    return recorder_main(args.recorder_args)


def _cmd_demo(args: argparse.Namespace) -> int:
    from robot_memory.nodes.demo import DemoOptions, run_demo

    return run_demo(
        DemoOptions(
            output=Path(args.output),
            object_id=args.object,
            place_id=args.place,
            seed=args.seed,
            timeout_s=args.timeout,
            real_time_factor=args.real_time_factor,
            image_width=args.width,
            image_height=args.height,
        )
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="robot-memory", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("launch", help="run a stack's nodes (sim, real, replay)")
    p.add_argument("stack", choices=["sim", "real", "replay"])
    p.add_argument("overrides", nargs="*", help="node.param:=value, e.g. sim.seed:=3")
    p.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    p.set_defaults(func=_cmd_launch)

    p = sub.add_parser(
        "record",
        help="record topics to a rosbag2 (MCAP by default); -o BAG [TOPIC ...] "
        "[--storage sqlite3] [--duration S] [--use-sim-time]",
        add_help=False,
    )
    p.add_argument("recorder_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=_cmd_record)

    p = sub.add_parser("demo", help="sim + scripted pick-and-place; writes a bag and a PNG")
    p.add_argument("--output", default="out/demo", help="folder for the bag and pictures")
    p.add_argument("--object", default="red_cube", help="object id to move")
    p.add_argument("--place", default="bin", help="place id to move it to")
    p.add_argument("--seed", type=int, default=0, help="scene randomization seed")
    p.add_argument("--timeout", type=float, default=180.0, help="give up after S seconds")
    p.add_argument("--real-time-factor", type=float, default=1.0)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["record"]:  # every option, --help included, belongs to the recorder
        return _cmd_record(argparse.Namespace(recorder_args=argv[1:]))
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
