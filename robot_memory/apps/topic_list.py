"""``robot-memory topics``: what is up on the ROS graph, with types.

The pip-only world has no ``ros2 topic list -t`` / ``ros2 service list -t`` /
``ros2 action list -t``; this is their stand-in. After ``--wait`` seconds of
discovery it prints the nodes, then every topic (type, publishers and
subscribers), service and action. Actions are found from their hidden
``<name>/_action/send_goal`` services (``pkg/action/Name_SendGoal`` ->
``pkg/action/Name``); their hidden topics and services are folded into them.
ROS infrastructure (``/rosout``, ``/parameter_events``, the parameter services
every node has) is left out unless ``--all``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict, dataclass, field

ACTION_MARK = "/_action/"
PARAMETER_SERVICES = (
    "describe_parameters",
    "get_parameter_types",
    "get_parameters",
    "list_parameters",
    "set_parameters",
    "set_parameters_atomically",
    "get_type_description",
)
INFRASTRUCTURE_TOPICS = ("/rosout", "/parameter_events")


@dataclass
class Graph:
    """What discovery found: names -> types (and topic endpoint counts)."""

    nodes: list[str] = field(default_factory=list)
    topics: dict[str, dict] = field(default_factory=dict)  # name -> {type, publishers, subscribers}
    services: dict[str, str] = field(default_factory=dict)
    actions: dict[str, str] = field(default_factory=dict)


def classify(
    nodes: list[str],
    topics: list[tuple[str, list[str]]],
    services: list[tuple[str, list[str]]],
    counts: dict[str, tuple[int, int]],
    everything: bool = False,
) -> Graph:
    """Sort raw graph names into topics, services and actions (ROS-free)."""
    graph = Graph(nodes=sorted(nodes))
    for name, types in services:
        if ACTION_MARK in name:
            action, _, part = name.partition(ACTION_MARK)
            if part == "send_goal" and types:
                graph.actions[action] = types[0].removesuffix("_SendGoal")
            if not everything:
                continue
        elif not everything and name.rsplit("/", 1)[-1] in PARAMETER_SERVICES:
            continue
        graph.services[name] = ", ".join(types)
    for name, types in topics:
        if not everything and (ACTION_MARK in name or name in INFRASTRUCTURE_TOPICS):
            continue
        pubs, subs = counts.get(name, (0, 0))
        graph.topics[name] = {"type": ", ".join(types), "publishers": pubs, "subscribers": subs}
    return graph


def discover(wait_s: float, everything: bool) -> Graph:
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node(f"topic_list_{os.getpid()}")
    try:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.05)
        own = node.get_fully_qualified_name()
        nodes = [
            f"{ns.rstrip('/')}/{name}"
            for name, ns in node.get_node_names_and_namespaces()
            if f"{ns.rstrip('/')}/{name}" != own
        ]
        topics = node.get_topic_names_and_types()
        counts = {
            name: (node.count_publishers(name), node.count_subscribers(name)) for name, _ in topics
        }
        services = [
            (name, types)
            for name, types in node.get_service_names_and_types()
            if not name.startswith(f"{own}/")
        ]
        return classify(nodes, topics, services, counts, everything)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def render(graph: Graph) -> str:
    def block(title: str, rows: list[tuple[str, str]]) -> list[str]:
        if not rows:
            return [f"{title}: none"]
        width = max(len(name) for name, _ in rows)
        return [f"{title} ({len(rows)}):", *(f"  {n.ljust(width)}  {t}".rstrip() for n, t in rows)]

    topics = [
        (name, f"{t['type']}  [{t['publishers']} pub, {t['subscribers']} sub]")
        for name, t in sorted(graph.topics.items())
    ]
    return "\n".join(
        [
            *block("nodes", [(n, "") for n in graph.nodes]),
            *block("topics", topics),
            *block("services", sorted(graph.services.items())),
            *block("actions", sorted(graph.actions.items())),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="robot-memory topics",
        description="list the nodes, topics, services and actions that are up, with their types",
    )
    parser.add_argument("--wait", type=float, default=2.0, help="discovery time [s] (default 2)")
    parser.add_argument("--all", action="store_true", help="include ROS infrastructure")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    from robot_memory.bringup.ros_env import apply_to_current_process

    apply_to_current_process()
    graph = discover(args.wait, args.all)
    print(json.dumps(asdict(graph), indent=1) if args.json else render(graph))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
