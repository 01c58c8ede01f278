"""``robot-memory query <kind> ...``: ask the running memory node over its
``/memory/query`` service (robot_memory_interfaces/srv/QueryMemory).

The pip-only world has no ``ros2 service call``; this is its stand-in::

    robot-memory query find --text "red cube" [--top-k 3]
    robot-memory query last_seen --object-id 7      (or --text mug)
    robot-memory query history --object-id 7
    robot-memory query in --target bin               (on / in: a place, "table", an id or words)
    robot-memory query changed_since --since 12.5
    robot-memory query events --text "moved put_in" --since 100 --until 200
    robot-memory query relation_history [--object-id 7] [--target "white box"] [--text in]
    robot-memory query graph [--json]

Prints a table by default, the answer as JSON (the core's ``MemoryAnswer``:
``id``, ``kind``, ``ok``, ``error``, ``stamp``, ``results``) with ``--json``.
Exit codes: 0 answered, 1 memory answered ``ok`` false (the error on stderr),
2 a bad query or no memory node answering within ``--timeout``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from robot_memory.payload_codec import validate_payload
from robot_memory.schemas import MemoryAnswer, MemoryQuery, PayloadError

SERVICE = "/memory/query"
KINDS = (
    "find", "last_seen", "history", "on", "in", "changed_since", "relation_history", "events",
    "graph",
)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="robot-memory query",
        description=f"ask the running memory node ({SERVICE} service) and print the answer",
    )
    p.add_argument("kind", choices=KINDS)
    p.add_argument("--text", default="", help="find / last_seen: words; relation_history: in, on")
    p.add_argument("--object-id", type=int, default=None, help="a memory object id")
    p.add_argument("--target", default="", help="on / in / relation_history: place, id or words")
    p.add_argument("--since", type=float, default=None, help="changed_since etc. [s, stamp time]")
    p.add_argument("--until", type=float, default=None, help="events: up to [s, stamp time]")
    p.add_argument("--top-k", type=int, default=5, help="find: how many (1..100)")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    p.add_argument(
        "--timeout", type=float, default=10.0, help="give up after S seconds (default 10)"
    )
    return p


def call(query: MemoryQuery, timeout_s: float) -> MemoryAnswer | str:
    """Ask the memory node; the answer, or why there is none."""
    import time

    import rclpy
    from rclpy.signals import SignalHandlerOptions
    from robot_memory_interfaces.srv import QueryMemory

    from robot_memory.nodes.query_conversions import answer_from_response, query_to_request

    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node(f"memory_query_{os.getpid()}")
    try:
        client = node.create_client(QueryMemory, SERVICE)
        deadline = time.monotonic() + timeout_s
        while not client.service_is_ready():
            if time.monotonic() > deadline:
                return (
                    f"no memory node answers {SERVICE} within {timeout_s:g} s "
                    "(is the stack up, on the same ROS_DOMAIN_ID?)"
                )
            rclpy.spin_once(node, timeout_sec=0.05)
        future = client.call_async(query_to_request(query))
        rclpy.spin_until_future_complete(
            node, future, timeout_sec=max(deadline - time.monotonic(), 0.1)
        )
        if not future.done() or future.result() is None:
            return f"the memory node did not answer within {timeout_s:g} s"
        return answer_from_response(future.result(), query)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


# -- tables ---------------------------------------------------------------------------------
def _f(value: Any, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _xyz(v: Sequence[float] | None) -> str:
    return "-" if v is None else "(" + ", ".join(f"{x:+.3f}" for x in v) + ")"


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in [header, ["-" * w for w in widths], *rows]]  # fmt: skip
    return "\n".join(lines)


def _objects(kind: str, results: list[dict]) -> str:
    header = ["id", "label", "status", "centroid [m]", "conf", "last_seen", "relations"]
    if kind == "find":
        header.insert(2, "score")
    if kind in ("on", "in"):
        header[2:2] = [kind, "rel.conf"]
    rows = []
    for r in results:
        rels = ", ".join(f"{x['relation']} {x['target']}" for x in r["relations"]) or "-"
        row = [r["id"], r["label"], r["status"], _xyz(r["centroid"]), _f(r["confidence"]),
               _f(r["last_seen"]), rels]  # fmt: skip
        if kind == "find":
            row.insert(2, _f(r["score"], 3))
        if kind in ("on", "in"):
            row[2:2] = [r["target"], _f(r["relation_confidence"])]
        rows.append(row)
    return table(rows, header)


def _history(results: list[dict]) -> str:
    out = []
    for h in results:
        out.append(
            f"{h['id']} {h['label']}: {h['status']}, first seen {_f(h['first_seen'])} s, "
            f"last seen {_f(h['last_seen'])} s"
            + (f", absent since {_f(h['absent_since'])} s" if h["absent_since"] is not None else "")
            + (f", merged into {h['merged_into']}" if h["merged_into"] is not None else "")
        )
        out.append(table([[_f(p["stamp"]), _xyz(p["position"])] for p in h["poses"]],
                         ["stamp [s]", "position [m]"]))  # fmt: skip
        spans = ", ".join(f"{_f(a)}-{_f(b)}" for a, b in h["visibility"]) or "-"
        out.append(f"visible [s]: {spans}")
    return "\n".join(out)


def _changes(results: list[dict]) -> str:
    rows = [[_f(c["stamp"]), c["change"], c["id"], c["label"], _xyz(c.get("from")),
             _xyz(c.get("to"))] for c in results]  # fmt: skip
    return table(rows, ["stamp [s]", "change", "id", "label", "from", "to"])


def _relations(results: list[dict]) -> str:
    rows = [
        [f"{r['subject']} {r['subject_label']}", r["relation"],
         f"{r['target']} {r['target_label']}", _f(r["confidence"]), _f(r["first_confirmed"]),
         _f(r["last_confirmed"]), "still holds" if r["ended"] is None else _f(r["ended"])]
        for r in results
    ]  # fmt: skip
    return table(rows, ["subject", "relation", "target", "conf", "first", "last", "ended"])


def _graph(results: list[dict]) -> str:
    g = results[0]
    objects = [
        [o["id"], o["label"], o["status"], _xyz(o["centroid"]), _f(o["confidence"]),
         _f(o["last_seen"])] for o in g["objects"]
    ]  # fmt: skip
    relations = [[r["subject"], r["relation"], r["target"], _f(r["confidence"])]
                 for r in g["relations"]]  # fmt: skip
    return "\n".join(
        [
            f"scene graph seq {g['seq']} at {_f(g['stamp'])} s: {len(g['objects'])} objects, "
            f"{len(g['places'])} places, {len(g['relations'])} relations",
            table(objects, ["id", "label", "status", "centroid [m]", "conf", "last_seen"]),
            table(relations, ["subject", "relation", "target", "conf"]),
        ]
    )


def _events(results: list[dict]) -> str:
    rows = [
        [e["seq"], _f(e["stamp"]), e["kind"], e["object_id"] if e["object_id"] is not None else "",
         e["label"], e["target_label"] or (e["target"] or ""), e["cause"], e["session"]]
        for e in results
    ]  # fmt: skip
    return table(rows, ["seq", "stamp", "kind", "id", "label", "target", "cause", "session"])


def render(answer: MemoryAnswer) -> str:
    """The human-readable form of an ``ok`` answer."""
    if not answer.results:
        return f"{answer.kind}: nothing (memory at {answer.stamp:.2f} s)"
    kind, results = answer.kind, answer.results
    if kind == "history":
        return _history(results)
    if kind == "changed_since":
        return _changes(results)
    if kind == "relation_history":
        return _relations(results)
    if kind == "events":
        return _events(results)
    if kind == "graph":
        return _graph(results)
    return _objects(kind, results)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        query = validate_payload(
            MemoryQuery,
            {
                "id": f"cli-{os.getpid()}",
                "kind": args.kind,
                "text": args.text,
                "object_id": args.object_id,
                "target": args.target,
                "since": args.since,
                "until": args.until,
                "top_k": args.top_k,
            },
        )
    except PayloadError as err:
        print(f"robot-memory query: {err.detail}", file=sys.stderr)
        return 2
    from robot_memory.bringup.ros_env import apply_to_current_process

    apply_to_current_process()
    answer = call(query, args.timeout)
    if isinstance(answer, str):
        print(f"robot-memory query: {answer}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(answer.model_dump(mode="json"), indent=1))
    elif answer.ok:
        print(render(answer))
    if not answer.ok:
        print(f"robot-memory query: memory says: {answer.error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
