"""``robot-memory``: the command line for the pip-only world (and any other).

    robot-memory launch sim [sim.seed:=3 sim.real_time_factor:=2.0 memory.reset_on_start:=true]
    robot-memory record -o BAG [TOPIC ...] [--storage sqlite3] [--duration S]
    robot-memory demo [--output out/demo] [--object red_cube] [--place bin] [--seed N]
    robot-memory replay BAG [--rate N | --fast] [--loop]
    robot-memory eval BAG [--out DIR] [--camera NAME=PREFIX] [--remap FROM=TO]
    robot-memory scenarios --out DIR [--scenario covered|moved_out_of_view|clutter|all]
    robot-memory collect-demos --out data/demos [--episodes N]
    robot-memory bag-to-dataset BAG... --out DATASET --skill pick --target X Y Z
    robot-memory train-policy --data data/demos --out models/... [--resume]
    robot-memory distill-policy --teacher models/diffusion_pick_place --data data/demos
    robot-memory train-labeller --out models/object_labeller [--episodes 300]
    robot-memory eval-policy --episodes 50 [--checkpoint models/...]
    robot-memory eval-tasks --episodes 30 [--ablation] [--tasks under_box,put_back]
    robot-memory eval-qa --seeds 100-104 [--per-kind 8] [--conditions full,memoryless]
    robot-memory say "put the red cube in the bin"      (to a running planner)
    robot-memory query find --text "red cube" [--json]  (the /memory/query service)
    robot-memory topics [--all]                         (nodes, topics, services, actions)
    robot-memory view [--web-port 9090]                 (live in a browser: Rerun web viewer)

Commands import rclpy only when they run, so ``--help`` works anywhere.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from robot_memory.bringup.launch_spec import HOSTS
from robot_memory.bringup.node_parameters import IMAGE_TRANSPORTS


def _cmd_launch(args: argparse.Namespace) -> int:
    from robot_memory.bringup.launch_spec import parse_override, stack
    from robot_memory.bringup.launcher import run_stack

    overrides: dict[str, dict] = {}
    try:
        for text in args.overrides:
            node, param, value = parse_override(text)
            overrides.setdefault(node, {})[param] = value
        specs = stack(args.stack, overrides, host=args.host, image_transport=args.image_transport)
    except ValueError as err:
        print(f"robot-memory launch: {err}", file=sys.stderr)
        return 2
    env = None
    if args.host:  # one machine of two: DDS over the network (docs/deployment.md)
        from robot_memory.bringup.ros_env import dds_environment

        env = dds_environment(network=True, peers=_peers(args.peers))
        print(
            f"[launch] host {args.host}: {', '.join(s.name for s in specs)}; DDS over UDP on "
            f"the subnet (ROS_DOMAIN_ID={env.get('ROS_DOMAIN_ID', '0')}, "
            f"static peers: {env.get('ROS_STATIC_PEERS') or 'none'})",
            flush=True,
        )
    if not specs:
        print(
            f"robot-memory launch: stack {args.stack!r} has no robot_memory nodes yet "
            "(see docs/hardware.md for what runs there today)",
            file=sys.stderr,
        )
        return 2
    return run_stack(specs, duration_s=args.duration, env=env)


def _cmd_view(args: argparse.Namespace) -> int:
    from robot_memory.bringup.launch_spec import viewer_node
    from robot_memory.bringup.launcher import run_stack

    try:
        import rerun  # noqa: F401
    except ImportError:
        print("robot-memory view: needs the Rerun SDK: pip install 'robot_memory[viewer]'",
              file=sys.stderr)  # fmt: skip
        return 2
    spec = viewer_node(web_port=args.web_port, grpc_port=args.grpc_port,
                       image_transport=args.image_transport or "raw")  # fmt: skip
    env = None
    if args.host:  # watching a cell over the network (docs/deployment.md)
        from robot_memory.bringup.ros_env import dds_environment

        env = dds_environment(network=True, peers=_peers(args.peers))
    print(f"[view] the page: http://localhost:{args.web_port} (streams from gRPC port "
          f"{args.grpc_port}); Ctrl-C to stop", flush=True)  # fmt: skip
    return run_stack([spec], duration_s=args.duration, env=env)


def _peers(text: str) -> list[str]:
    return [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]


#: Commands whose whole command line belongs to one module's own ``main(argv)``.
FORWARDED = {
    "record": (
        "robot_memory.apps.record_cli",
        "record topics to a rosbag2 (MCAP by default); -o BAG [TOPIC ...] "
        "[--storage sqlite3] [--duration S] [--use-sim-time]",
    ),
    "replay": (
        "robot_memory.apps.replay_cli",
        "publish any rosbag2 bag's topics at recorded timing (--rate N, --fast) with /clock; "
        "says what it replayed and skipped",
    ),
    "eval": (
        "robot_memory.evaluation.bag_evaluation",
        "run perception + memory over a bag and score them against its ground truth "
        "(--camera NAME=PREFIX, --remap FROM=TO map other topic names)",
    ),
    "scenarios": (
        "robot_memory.apps.record_scenarios",
        "record the scenario bags (covered, moved out of view, clutter) with the sim",
    ),
    "collect-demos": (
        "robot_memory.learning.demonstrations",
        "collect pick/place demonstrations with the scripted expert into an episode dataset",
    ),
    "bag-to-dataset": (
        "robot_memory.learning.bag_to_dataset",
        "convert recorded bags (teleoperation, expert runs) into an episode dataset",
    ),
    "train-policy": (
        "robot_memory.learning.training",
        "train the diffusion policy on an episode dataset (seeded, resumable)",
    ),
    "distill-policy": (
        "robot_memory.learning.distillation",
        "distil a diffusion policy checkpoint into a one-step consistency policy",
    ),
    "train-labeller": (
        "robot_memory.learning.labeller_training",
        "render the project's objects, train the default labeller (models/object_labeller)",
    ),
    "eval-policy": (
        "robot_memory.learning.evaluation",
        "closed-loop success of a policy checkpoint in the sim, with Wilson intervals",
    ),
    "eval-tasks": (
        "robot_memory.tasks.eval_tasks",
        "end-to-end task suite in the sim: planner + memory + policy, with a memoryless ablation",
    ),
    "eval-qa": (
        "robot_memory.tasks.eval_qa",
        "questions about the past over simulated weeks: accuracy per kind, with ablations",
    ),
    "query": (
        "robot_memory.apps.query_cli",
        "ask the running memory node (/memory/query service): query find --text mug, "
        "query in --target bin, query history --object-id 3, ... [--json]",
    ),
    "topics": (
        "robot_memory.apps.topic_list",
        "list the nodes, topics, services and actions that are up, with their types [--all]",
    ),
    "say": (
        "robot_memory.apps.say",
        'one instruction to the running planner, followed to its end: say "put the cube away"',
    ),
}


def _cmd_forwarded(command: str, argv: list[str]) -> int:
    import importlib
    import os

    os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering, before mujoco loads

    module = importlib.import_module(FORWARDED[command][0])
    return int(module.main(argv) or 0)


def _cmd_demo(args: argparse.Namespace) -> int:
    from robot_memory.apps.demo import DemoOptions, run_demo

    return run_demo(
        DemoOptions(
            output=Path(args.output),
            object_id=args.object,
            place_id=args.place,
            seed=DemoOptions.seed if args.seed is None else args.seed,
            timeout_s=args.timeout,
            real_time_factor=args.real_time_factor,
            image_width=args.width,
            image_height=args.height,
            host=args.host,
            peers=tuple(_peers(args.peers)),
            image_transport=args.image_transport or "raw",
        )
    )


def _host_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--host",
        choices=HOSTS,
        default=None,
        help="run only this machine's nodes of a two-host cell (robot: sim/drivers, safety; "
        "compute: perception, memory, planner, policy), with DDS over the network",
    )
    p.add_argument(
        "--peers",
        default="",
        help="the other host's address(es), comma-separated, for networks without multicast",
    )
    p.add_argument(
        "--image-transport",
        choices=IMAGE_TRANSPORTS,
        default=None,
        help="camera images as raw sensor_msgs/Image (one host: shared memory) or compressed "
        "(JPEG colour, PNG depth: about 10x less on a network link); default raw",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="robot-memory", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("launch", help="run a stack's nodes (sim, real, replay)")
    p.add_argument("stack", choices=["sim", "real", "replay"])
    p.add_argument(
        "overrides",
        nargs="*",
        help="node.param:=value, e.g. sim.seed:=3, memory.reset_on_start:=true (wipe the "
        "store), memory.respawn:=false, safety.respawn_delay_s:=0.5",
    )
    p.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    _host_arguments(p)
    p.set_defaults(func=_cmd_launch)

    for command, (_, text) in FORWARDED.items():
        p = sub.add_parser(command, help=text, add_help=False)
        p.add_argument("args", nargs=argparse.REMAINDER)

    p = sub.add_parser(
        "view",
        help="the running stack (or a bag being replayed) live in a browser: cameras, arm, "
        "memory's objects and relations, plan and skill (Rerun web viewer)",
    )
    p.add_argument("--web-port", type=int, default=9090, help="the page's port")
    p.add_argument("--grpc-port", type=int, default=9876, help="the stream's port")
    p.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    _host_arguments(p)
    p.set_defaults(func=_cmd_view)

    p = sub.add_parser(
        "demo", help="the sim stack does a task that needs memory; video, bag, report"
    )
    p.add_argument("--output", default="out/demo", help="folder for the run's files")
    p.add_argument(
        "--object", default="", help="object id to move (default: one out of view at home)"
    )
    p.add_argument("--place", default="bin", help="place id to move it to")
    p.add_argument(
        "--seed", type=int, default=None, help="scene randomization seed (default: the demo's)"
    )
    p.add_argument("--timeout", type=float, default=420.0, help="give up after S seconds")
    p.add_argument("--real-time-factor", type=float, default=1.0)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    _host_arguments(p)
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] and argv[0] in FORWARDED:  # every option, --help included, is theirs
        return _cmd_forwarded(argv[0], argv[1:])
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # launch's node.param:=value overrides may come after its options too
    if args.command == "launch" and all(":=" in text for text in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
