"""Bench: a memory query's round trip through the ``/memory/query`` service
(robot_memory_interfaces/srv/QueryMemory) against the old topic pair (JSON
``MemoryQuery`` on a ``std_msgs/String`` topic, JSON ``MemoryAnswer`` back on
another, matched by id), in one run.

Two processes over real DDS (loopback, the project's Fast DDS profile, a
domain of its own): a server holding one ``SceneMemory`` (``--objects``
objects on the table, filled through ``update()``) that answers both ways with
the same core ``queries.answer``; a client that asks each query kind
``--repeats`` times, the two transports interleaved, one query in flight at a
time. Both sides include their conversions: the service path
``query_to_request`` -> ``query_from_request`` -> ``answer`` ->
``answer_to_response`` -> ``answer_from_response``; the topic path
``dump_payload`` -> ``parse_payload`` -> ``answer`` -> ``dump_payload`` ->
``parse_payload`` (the old planner port's steps). The client waits the way the
planner does: an executor thread spins, the asking thread blocks on an event.

    .venv/bin/python bench/bench_query.py --out out/bench/bench_query.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np

from robot_memory.bringup.ros_env import apply_to_current_process, random_domain_id

QUERY_TOPIC, ANSWER_TOPIC = "/bench/memory/query_json", "/bench/memory/answer_json"
SERVICE = "/bench/memory/query"
READY = "bench-query-server-ready"


# -- server (its own process) ---------------------------------------------------------------
def build_memory(n_objects: int):
    from bench_memory import grid, populate, top_view

    from robot_memory.memory import SceneMemory, TextEmbedder

    colours = ("red", "blue", "green", "yellow", "orange", "purple")
    shapes = ("cube", "cylinder", "sphere", "block")
    memory = SceneMemory(embedder=TextEmbedder())
    centers = grid(n_objects, np.random.default_rng(0))
    labels = [f"{colours[i % 6]} {shapes[(i // 6) % 4]}" for i in range(n_objects)]
    populate(memory, centers, labels, top_view)
    memory.embedder.encode(["warm up"])
    return memory


def serve(n_objects: int) -> int:
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    from robot_memory_interfaces.srv import QueryMemory
    from std_msgs.msg import String

    from robot_memory.nodes.qos import COMMAND
    from robot_memory.nodes.query_conversions import answer_to_response, query_from_request
    from robot_memory.payload_codec import dump_payload, parse_payload
    from robot_memory.schemas import MemoryQuery

    memory = build_memory(n_objects)
    rclpy.init()
    node = rclpy.create_node("bench_query_server")
    answers = node.create_publisher(String, ANSWER_TOPIC, COMMAND)
    count = [0]

    def on_json(msg: String) -> None:  # the old memory node's on_query
        query = parse_payload(MemoryQuery, msg.data)
        answers.publish(String(data=dump_payload(memory.answer(query))))

    def on_service(request, response):  # the memory node's on_query
        count[0] += 1
        return answer_to_response(memory.answer(query_from_request(request, f"s{count[0]}")))

    node.create_subscription(String, QUERY_TOPIC, on_json, COMMAND)
    node.create_service(QueryMemory, SERVICE, on_service)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    ids = {o.label: o.id for o in memory.objects()}
    print(json.dumps({READY: True, "objects": len(memory.objects()), "ids": ids}), flush=True)
    try:
        while rclpy.ok():
            executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass  # terminated by the client
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        memory.close()
    return 0


# -- client ----------------------------------------------------------------------------------
class Client:
    """Both ways of asking, with an executor thread spinning for them."""

    def __init__(self) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from robot_memory_interfaces.srv import QueryMemory
        from std_msgs.msg import String

        from robot_memory.nodes.qos import COMMAND

        rclpy.init()
        self.node = rclpy.create_node("bench_query_client")
        self.String = String
        self.publisher = self.node.create_publisher(String, QUERY_TOPIC, COMMAND)
        self.node.create_subscription(String, ANSWER_TOPIC, self._on_answer, COMMAND)
        self.client = self.node.create_client(QueryMemory, SERVICE)
        self._cond = threading.Condition()
        self._answers: dict[str, str] = {}
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def _on_answer(self, msg) -> None:
        # the old port: decode enough to match the id, keep the text for the asker
        from robot_memory.payload_codec import payload_id

        with self._cond:
            self._answers[payload_id(msg.data, 50_000_000)] = msg.data
            self._cond.notify_all()

    def ready(self) -> bool:
        return (
            self.client.service_is_ready()
            and self.publisher.get_subscription_count() > 0
            and self.node.count_publishers(ANSWER_TOPIC) > 0
        )

    def via_topics(self, query, timeout_s: float = 30.0):
        from robot_memory.payload_codec import dump_payload, parse_payload
        from robot_memory.schemas import MemoryAnswer

        qid = f"{query.id}-{uuid.uuid4().hex[:8]}"
        self.publisher.publish(self.String(data=dump_payload(query.model_copy(update={"id": qid}))))
        with self._cond:
            if not self._cond.wait_for(lambda: qid in self._answers, timeout_s):
                raise TimeoutError(f"no answer to {qid}")
            text = self._answers.pop(qid)
        return parse_payload(MemoryAnswer, text).model_copy(update={"id": query.id})

    def via_service(self, query, timeout_s: float = 30.0):
        from robot_memory.nodes.query_conversions import answer_from_response, query_to_request

        done = threading.Event()
        future = self.client.call_async(query_to_request(query))
        future.add_done_callback(lambda _f: done.set())
        if not done.wait(timeout_s):
            raise TimeoutError("no service response")
        return answer_from_response(future.result(), query)

    def close(self) -> None:
        import rclpy

        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown()


def stats(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1e3
    return {
        "n": int(ms.size),
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
    }


def queries(ids: dict[str, int]):
    from robot_memory.schemas import MemoryQuery

    some_id = ids.get("red cube", next(iter(ids.values())))
    return {
        "last_seen": MemoryQuery(id="b", kind="last_seen", object_id=some_id),
        "find": MemoryQuery(id="b", kind="find", text="the red cube", top_k=5),
        "on": MemoryQuery(id="b", kind="on", target="table"),
        "changed_since": MemoryQuery(id="b", kind="changed_since", since=-1.0),
        "graph": MemoryQuery(id="b", kind="graph"),
    }


def run(args: argparse.Namespace) -> dict:
    apply_to_current_process(domain_id=random_domain_id())
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parent)}
    print(f"[bench_query] server: {args.objects} objects in memory (filling, loading the "
          "text model) ...", flush=True)  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--objects", str(args.objects)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    client = None
    try:
        line = ""
        while READY not in line:
            line = server.stdout.readline()
            if not line and server.poll() is not None:
                raise RuntimeError(f"the server exited with {server.returncode}")
        info = json.loads(line)
        client = Client()
        deadline = time.monotonic() + 30
        while not client.ready():
            if time.monotonic() > deadline:
                raise RuntimeError("the server's service and topics were not discovered in 30 s")
            time.sleep(0.05)
        results: dict[str, dict] = {}
        kinds = queries(info["ids"])
        total = len(kinds) * (args.repeats + args.warmup)
        done_count = 0
        for kind, query in kinds.items():
            times: dict[str, list[float]] = {"service": [], "topics": []}
            sizes = {}
            for i in range(args.warmup + args.repeats):
                order = ("service", "topics") if i % 2 == 0 else ("topics", "service")
                for way in order:
                    ask = client.via_service if way == "service" else client.via_topics
                    t0 = time.perf_counter()
                    answer = ask(query)
                    dt = time.perf_counter() - t0
                    if not answer.ok:
                        raise RuntimeError(f"{kind} via {way}: {answer.error}")
                    sizes[way] = len(answer.results)
                    if i >= args.warmup:
                        times[way].append(dt)
                done_count += 1
                if done_count % max(total // 20, 1) == 0:
                    print(f"[bench_query] {done_count}/{total} query pairs ({kind})", flush=True)
            assert sizes["service"] == sizes["topics"], sizes
            service, topics = stats(times["service"]), stats(times["topics"])
            results[kind] = {
                "results": sizes["service"],
                "service": service,
                "topics": topics,
                "ratio_p50": service["p50_ms"] / topics["p50_ms"],
                "ratio_p99": service["p99_ms"] / topics["p99_ms"],
            }
        return {
            "objects": info["objects"],
            "repeats": args.repeats,
            "cpus": os.cpu_count(),
            "load_avg": os.getloadavg()[0],
            "kinds": results,
        }
    finally:
        if client is not None:
            client.close()
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()


def report(out: dict) -> str:
    lines = [
        f"query round trip, {out['objects']} objects in memory, {out['repeats']} per kind and "
        f"way (ms; ratio = service / topic pair; load average {out['load_avg']:.1f} on "
        f"{out['cpus']} CPUs)",
        f"{'kind':14} {'results':>7}  {'service p50/p99':>16}  {'topics p50/p99':>16}  "
        f"{'ratio p50/p99':>13}",
    ]
    for kind, r in out["kinds"].items():
        s, t = r["service"], r["topics"]
        lines.append(
            f"{kind:14} {r['results']:>7}  {s['p50_ms']:7.2f} /{s['p99_ms']:7.2f}  "
            f"{t['p50_ms']:7.2f} /{t['p99_ms']:7.2f}  {r['ratio_p50']:5.2f} / {r['ratio_p99']:5.2f}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=50, help="objects in memory")
    parser.add_argument("--repeats", type=int, default=200, help="timed queries per kind and way")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.objects)
    out = run(args)
    print(report(out))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=1))
        print(f"[bench_query] written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
