"""Bench: memory over a simulated week: store growth per day, and query latency
on a week of events and on a full event log (20,000, its bound).

One process. A week (``robot_memory.tasks.week_world``: 5 days of 45 actions,
memory restarted each night) runs into a SQLite store; its size and event count
are read at every restart (growth per day). Then, on the week's memory, each
query kind the planner uses for questions about the past is timed
(``SceneMemory.answer``, the core the memory node's service calls), beside the
honest peer for the events query: the same rows read straight from the store's
indexed ``events`` table with sqlite3. Last, the event log is filled to its
bound by repeating the week's events at later times, and the same queries are
timed again; and the questions of the week are answered by the offline planner
(its whole path: parse, the events query, replay).

    .venv/bin/python bench/bench_week.py --out out/bench/bench_week.json
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from robot_memory.memory import SceneMemory
from robot_memory.schemas import MemoryQuery
from robot_memory.tasks.memory_port import SceneMemoryPort
from robot_memory.tasks.week_qa import ask, questions_for, week_planner
from robot_memory.tasks.week_world import WeekConfig, WeekWorld


def timed(fn, repeats: int) -> dict:
    fn()  # warm
    ms = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - start) * 1e3)
    a = np.array(ms)
    return {"p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99))}


def queries(memory: SceneMemory, now: float) -> dict[str, MemoryQuery]:
    some = next(o.id for o in memory.objects(include_absent=True))
    day = 1000.0
    return {
        "events (all)": MemoryQuery(id="q", kind="events"),
        "events of one object": MemoryQuery(id="q", kind="events", object_id=some),
        "events of a day": MemoryQuery(id="q", kind="events", since=now - day, until=now),
        "events into the bin": MemoryQuery(id="q", kind="events", text="put_in", target="bin"),
        "find": MemoryQuery(id="q", kind="find", text="red cube"),
        "in bin": MemoryQuery(id="q", kind="in", target="bin"),
        "history": MemoryQuery(id="q", kind="history", object_id=some),
        "changed_since": MemoryQuery(id="q", kind="changed_since", since=now - day),
        "relation_history": MemoryQuery(id="q", kind="relation_history"),
    }


def time_queries(memory: SceneMemory, now: float, repeats: int) -> dict:
    out = {}
    for name, q in queries(memory, now).items():
        answer = memory.answer(q)
        assert answer.ok, (name, answer.error)
        out[name] = {**timed(lambda q=q: memory.answer(q), repeats), "rows": len(answer.results)}
    return out


def sqlite_peer(store: Path, repeats: int) -> dict:
    """The events query's peer: the rows straight from the indexed table."""
    conn = sqlite3.connect(store)
    try:
        rows = conn.execute("SELECT * FROM events ORDER BY seq").fetchall()
        stats = timed(lambda: conn.execute("SELECT * FROM events ORDER BY seq").fetchall(), repeats)
        return {**stats, "rows": len(rows)}
    finally:
        conn.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--days", type=int, default=5)
    p.add_argument("--repeats", type=int, default=200)
    p.add_argument("--out", type=Path, default=Path("out/bench/bench_week.json"))
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_week_"))
    store = tmp / "memory.sqlite"
    sizes: list[tuple[int, int]] = []  # (bytes, events) at each restart

    def open_memory() -> SceneMemory:
        if store.exists():
            probe = sqlite3.connect(store)
            events = probe.execute("SELECT COUNT(*) FROM events").fetchone()[0]
            probe.close()
            sizes.append((store.stat().st_size, events))
        return SceneMemory(store_path=store)

    config = WeekConfig(seed=args.seed, days=args.days)
    start = time.perf_counter()
    world = WeekWorld(config)
    log = world.run(open_memory, close=False)
    week_s = time.perf_counter() - start
    memory = world.memory
    assert memory is not None
    sizes.append((store.stat().st_size, len(memory.events().entries)))
    growth = np.diff([0] + [s for s, _ in sizes]).tolist()
    print(f"week: {args.days} days, {len(log.truth)} true events, "
          f"{len(memory.events().entries)} memory events, {week_s:.0f} s")  # fmt: skip
    print("store after each day [kB]: " + ", ".join(f"{s / 1e3:.0f}" for s, _ in sizes))

    week_queries = time_queries(memory, log.end, args.repeats)
    peer = sqlite_peer(store, args.repeats)
    _, questions = questions_for(log, 8)
    asked = ask(questions, memory, SceneMemoryPort(memory), week_planner(config), args.seed, "full")
    answer_ms = np.array([a.latency_ms for a in asked[1:]])  # the first loads the text model

    # the event log at its bound: the week's events again and again, later each time
    log_events = memory.events()
    base = list(log_events.entries)
    span = log.end + 1.0
    k = 1
    while len(log_events.entries) < log_events.max_length:
        for e in base:
            log_events._keep(replace(e, seq=log_events.next_seq, stamp=e.stamp + k * span))
            log_events.next_seq += 1
        k += 1
    full_now = log.end + (k - 1) * span
    full_queries = time_queries(memory, full_now, max(20, args.repeats // 10))
    memory.close()

    result = {
        "seed": args.seed, "days": args.days, "true_events": len(log.truth),
        "memory_events": len(base), "week_s": week_s,
        "store_bytes_after_each_day": [s for s, _ in sizes],
        "store_growth_bytes_per_day": growth,
        "events_after_each_day": [n for _, n in sizes],
        "queries_week": week_queries, "sqlite_peer_all_events": peer,
        "queries_full_log": full_queries, "full_log_events": log_events.max_length,
        "question_answer_ms": {"p50": float(np.percentile(answer_ms, 50)),
                               "p99": float(np.percentile(answer_ms, 99)),
                               "questions": len(answer_ms)},
    }  # fmt: skip
    print(f"growth per day [kB]: {', '.join(f'{g / 1e3:.0f}' for g in growth)}")
    ev, sq = week_queries["events (all)"], peer
    print(f"events (all, {ev['rows']} rows): p50 {ev['p50_ms']:.2f} ms, p99 {ev['p99_ms']:.2f} ms;"
          f" sqlite3 SELECT of the same rows p50 {sq['p50_ms']:.2f} ms"
          f" (ratio {ev['p50_ms'] / sq['p50_ms']:.1f}x)")  # fmt: skip
    for label, table in (("week", week_queries), (f"{log_events.max_length} events", full_queries)):
        worst = max(table.items(), key=lambda kv: kv[1]["p99_ms"])
        print(f"{label}: slowest query p99 {worst[1]['p99_ms']:.2f} ms ({worst[0]})")
        for name, t in table.items():
            print(
                f"  {name:24s} p50 {t['p50_ms']:7.2f}  p99 {t['p99_ms']:7.2f} ms  {t['rows']} rows"
            )
    qa = result["question_answer_ms"]
    print(f"question answered (planner + memory): p50 {qa['p50']:.1f} ms, p99 {qa['p99']:.1f} ms")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
