"""Bench: the memory at building scale -- update and query latency, RSS and
store size at 10 / 100 / 1,000 / 10,000 / 100,000 objects, with growth ratios.

A building's memory: the objects are spread over a floor of ``--floor`` metres
square (random, at least 2 cm apart), except for the 6 on the table at the
origin, which is what the frames see: a camera 1.5 m over the table (a 60x80
depth image of the table and the boxes' tops) and all 6 observed every
frame with millimetre noise. Every memory is attached to a SQLite store (the
node's set-up) and filled by bulk load, not by update() (see bench_memory.py:
``MemoryObject.from_observation`` per object, relations over the spatial
index, ``MemoryStore.commit``, then ``SceneMemory(store_path=...)``: the
restart path).

All sizes live in one process and are run interleaved: each round runs one
update on every size in turn, so a busy moment of the machine hits every size
alike. Queries (``find``, ``changed_since``, ``last_seen``, ``in``, ``on``)
are timed the same way after the updates. Growth ratios are p50 over p50 of
the same run.

    .venv/bin/python bench/bench_memory_scale.py --out out/bench/bench_memory_scale.json
    .venv/bin/python bench/bench_memory_scale.py --sizes 100 10000 --frames 50   # quick
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from bench_memory import bulk_load, db_mib, observation, percentiles, proc_status_kib, top_view

from robot_memory.memory import MemoryConfig, SceneMemory, TextEmbedder
from robot_memory.perception.observations import ObservationFrame
from robot_memory.schemas import MemoryQuery

COLOURS = ("red", "blue", "green", "yellow", "orange", "purple", "white", "black")
KINDS = ("mug", "bowl", "bottle", "can", "box", "screwdriver", "book", "plant")
TABLE = 6  # objects on the table the camera sees, all of them observed every frame
QUERIES = ("find", "changed_since", "last_seen", "in", "on")


def floor_positions(n: int, floor: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` positions: the first TABLE on the table (a 3 x 2 grid), the rest
    on the floor outside a 2 m square around it, at least ~2 cm apart."""
    table = np.array([[-0.2 + 0.2 * (k % 3), -0.1 + 0.2 * (k // 3), 0.01] for k in range(TABLE)])
    rest = n - min(n, TABLE)
    cells = int(np.ceil(floor / 0.03))  # a jittered 3 cm lattice: never two in one spot
    picks: set[int] = set()
    while len(picks) < rest:
        for c in rng.integers(0, cells * cells, size=2 * (rest - len(picks))):
            ix, iy = divmod(int(c), cells)
            x, y = -floor / 2 + ix * 0.03, -floor / 2 + iy * 0.03
            if max(abs(x), abs(y)) > 1.0:
                picks.add(int(c))
            if len(picks) == rest:
                break
    lattice = np.array(sorted(picks), dtype=np.int64).reshape(-1)
    xy = np.column_stack([lattice // cells, lattice % cells]) * 0.03 - floor / 2
    xy = xy + rng.uniform(-0.005, 0.005, xy.shape)
    floor_pts = np.column_stack([xy, np.full(len(xy), 0.01)])
    return np.vstack([table[: min(n, TABLE)], floor_pts])


def labels_for(n: int) -> list[str]:
    return [f"{COLOURS[i % 8]} {KINDS[(i // 8) % 8]}" for i in range(n)]


class SizedMemory:
    """One memory of ``n`` objects in its own store, and the frames it sees."""

    def __init__(self, n: int, floor: float, folder: Path, config: MemoryConfig, embedder) -> None:
        rng = np.random.default_rng(n)
        self.n = n
        self.rng = rng
        self.centers = floor_positions(n, floor, rng)
        self.labels = labels_for(n)
        self.path = folder / f"memory_{n}.db"
        t0 = time.perf_counter()
        bulk_load(self.path, self.centers, self.labels, config)
        self.build_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        self.memory = SceneMemory(config, store_path=self.path, embedder=embedder)
        self.load_s = time.perf_counter() - t0
        self.stamp = 2.0
        self.update_s: list[float] = []
        self.query_s: dict[str, list[float]] = {k: [] for k in QUERIES}

    def frame(self) -> None:
        seen = range(min(self.n, TABLE))
        obs = [
            observation(self.labels[i], self.centers[i] + self.rng.normal(0, 0.001, 3), self.stamp)
            for i in seen
        ]
        frame = ObservationFrame(top_view(self.stamp, self.centers[: min(self.n, TABLE)]), obs)
        t0 = time.perf_counter()
        self.memory.update(frame)
        self.update_s.append(time.perf_counter() - t0)
        self.stamp += 0.1

    def query(self, kind: str, k: int) -> None:
        ids = (1, self.n // 2 + 1, self.n)
        q = {
            "find": MemoryQuery(id="q", kind="find", text=["red mug", "a bottle", "book"][k % 3]),
            "changed_since": MemoryQuery(id="q", kind="changed_since", since=self.stamp - 1.0),
            "last_seen": MemoryQuery(id="q", kind="last_seen", object_id=ids[k % 3]),
            "in": MemoryQuery(id="q", kind="in", target="bin"),
            "on": MemoryQuery(id="q", kind="on", target="table_centre"),
        }[kind]
        t0 = time.perf_counter()
        answer = self.memory.answer(q)
        self.query_s[kind].append(time.perf_counter() - t0)
        if not answer.ok:
            raise RuntimeError(f"{kind} at {self.n} objects: {answer.error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000, 10000, 100000])
    parser.add_argument("--frames", type=int, default=100, help="timed updates per size")
    parser.add_argument("--queries", type=int, default=30, help="timed queries per kind and size")
    parser.add_argument("--floor", type=float, default=200.0, help="side of the floor [m]")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()

    config = MemoryConfig()
    embedder = TextEmbedder()
    embedder.encode(["warm up"])  # the model loads once, outside the timings
    results: dict = {"floor_m": args.floor, "sizes": []}
    with tempfile.TemporaryDirectory() as tmp:
        memories = []
        for n in sorted(args.sizes):
            rss0 = proc_status_kib("VmRSS")
            # a building's memory keeps what it holds (the default cap is 20,000)
            sized = replace(config, max_objects=max(config.max_objects, 2 * n))
            m = SizedMemory(n, args.floor, Path(tmp), sized, embedder)
            gc.collect()
            m.rss_mib = (proc_status_kib("VmRSS") - rss0) / 1024
            print(
                f"built {n:>7} objects: bulk load {m.build_s:6.1f} s, store load {m.load_s:5.1f} s,"
                f" RSS +{m.rss_mib:.0f} MiB",
                flush=True,
            )
            memories.append(m)
        for m in memories:  # untimed: the first update of each warms its caches
            m.frame()
            m.update_s.clear()
        for k in range(args.frames):
            for m in memories:
                m.frame()
            if (k + 1) % max(1, args.frames // 5) == 0:
                print(f"  updates: round {k + 1}/{args.frames}", flush=True)
        for kind in QUERIES:  # untimed: label embeddings are computed once per memory
            for m in memories:
                m.query(kind, 0)
                m.query_s[kind].clear()
        for k in range(args.queries):
            for kind in QUERIES:
                for m in memories:
                    m.query(kind, k)
        print(f"\n{'objects':>8} {'update p50':>10} {'p99':>8}", end="")
        print("".join(f" {q + ' p50':>16}" for q in QUERIES), f" {'RSS MiB':>8} {'store MiB':>9}")
        for m in memories:
            up = percentiles(m.update_s)
            qs = {q: percentiles(m.query_s[q]) for q in QUERIES}
            row = {
                "objects": m.n,
                "in_memory": m.memory.stats["objects"],
                "update": up,
                "queries": qs,
                "rss_mib": m.rss_mib,
                "store_mib": db_mib(m.path),
                "bulk_load_s": m.build_s,
                "store_load_s": m.load_s,
            }
            results["sizes"].append(row)
            print(f"{m.n:>8} {up['p50_ms']:>8.2f}ms {up['p99_ms']:>6.2f}ms", end="")
            print("".join(f" {qs[q]['p50_ms']:>14.2f}ms" for q in QUERIES), end="")
            print(f" {row['rss_mib']:>8.0f} {row['store_mib']:>9.1f}")
        for m in memories:
            m.memory.close()
    by_n = {r["objects"]: r for r in results["sizes"]}
    ratios = {}
    for lo, hi in ((100, 10000), (1000, 10000), (10000, 100000), (10, 100000)):
        if lo in by_n and hi in by_n:
            r = {"update": by_n[hi]["update"]["p50_ms"] / by_n[lo]["update"]["p50_ms"]}
            for q in QUERIES:
                r[q] = by_n[hi]["queries"][q]["p50_ms"] / by_n[lo]["queries"][q]["p50_ms"]
            ratios[f"{hi}/{lo}"] = r
    results["p50_ratios"] = ratios
    if ratios:
        print(f"\ngrowth (p50 / p50, same run){'':>4}" + "".join(f" {q:>14}" for q in QUERIES))
        for name, r in ratios.items():
            print(f"{name:>13}   update {r['update']:6.1f}x", end="")
            print("".join(f" {r[q]:>13.1f}x" for q in QUERIES))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
        print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
