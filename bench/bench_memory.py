"""Bench: the memory core's update and query latency and its memory growth.

1. Update latency p50/p99 with 10, 100 and 1,000 objects in memory, frames of
   six observations from a camera that sees the whole table (depth rendered
   from the remembered boxes, so permanence does its full work).
2. Query latency (find, last_seen, in, on, changed_since) with 10,000 objects in
   memory. The 10,000 objects are bulk-loaded, not fed through update() (whose
   association is O(objects) in Python per observation, so filling 10,000 through
   it takes many minutes): each object is built by
   ``MemoryObject.from_observation`` (what update() does for a new object), the
   relations by ``relations_indexed`` over a ``spatial_index.ObjectIndex`` (what
   update() does to refresh them), written with ``MemoryStore.commit`` and read
   back by ``SceneMemory(store_path=...)`` -- the restart path of the node.
3. RSS over a synthetic 30-minute stream at 10 Hz (18,000 frames, simulated time,
   run as fast as possible): ~6 of 8 objects seen per frame, one moving every
   10 s, one leaving the view for 20 s every 30 s, a one-off spurious detection
   every 7 s; with and without the SQLite store. RSS from /proc/self/status.

    .venv/bin/python bench/bench_memory.py --out out/bench/memory.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from robot_memory.memory import MemoryConfig, SceneMemory, TextEmbedder
from robot_memory.memory.object_node import MemoryObject
from robot_memory.memory.relations import RelationState, relations_indexed
from robot_memory.memory.spatial_index import ObjectIndex
from robot_memory.memory.store import MemoryStore
from robot_memory.perception.observations import CameraView, ObjectObservation, ObservationFrame
from robot_memory.schemas import MemoryQuery

COLOURS = ("red", "blue", "green", "yellow", "orange", "purple")
SHAPES = ("cube", "cylinder", "sphere", "block", "capsule", "prism")
DOWN = np.array([0.0, 1.0, 0.0, 0.0])  # optical z along world -z
SIZE = 0.02
QUERY_BUDGET_S = 10.0  # per query kind


def proc_status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1


def percentiles(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values) * 1e3
    return {
        "n": int(arr.size),
        "p50_ms": float(np.percentile(arr, 50)),
        "p99_ms": float(np.percentile(arr, 99)),
    }


def observation(label: str, center: np.ndarray, stamp: float, size: float = SIZE):
    half = size / 2
    xs, ys = np.meshgrid(np.linspace(-half, half, 4), np.linspace(-half, half, 4))
    pts = np.column_stack([xs.ravel(), ys.ravel(), np.full(16, half)]) + center
    color, shape = label.split()[0], label.split()[-1]
    return ObjectObservation(
        centroid=center.copy(),
        bbox_min=center - half,
        bbox_max=center + half,
        color=color,
        rgb=(0.5, 0.5, 0.5),
        shape=shape,
        label=label,
        confidence=0.9,
        camera="top",
        stamp=stamp,
        points=pts,
        n_points=16,
    )


def top_view(stamp: float, centers: np.ndarray, camera_z: float = 1.5) -> CameraView:
    """A downward camera over the table; depth: the table plus each box's top face."""
    h, w, f = 60, 80, 45.0
    K = np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1.0]])
    depth = np.full((h, w), camera_z, dtype=np.float32)
    view = CameraView("top", stamp, K, np.array([0.0, 0.0, camera_z]), DOWN, depth)
    if len(centers):
        u, v, z = view.project(centers + [0, 0, SIZE / 2])
        cols, rows = np.round(u).astype(int), np.round(v).astype(int)
        ok = (cols >= 0) & (cols < w) & (rows >= 0) & (rows < h)
        for r, c, d in zip(rows[ok], cols[ok], z[ok], strict=True):
            depth[r, c] = min(depth[r, c], d)
    return view


def grid(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` well-separated positions over the table, in layers of 3 cm."""
    per_layer = 36 * 30
    k = np.arange(n)
    layer, idx = k // per_layer, k % per_layer
    x = -0.55 + (idx % 36) * 0.031
    y = -0.45 + (idx // 36) * 0.031
    z = 0.01 + layer * 0.05
    return np.column_stack([x, y, z]) + rng.normal(0, 0.0005, (n, 3))


def populate(memory: SceneMemory, centers: np.ndarray, labels: list[str], view_fn) -> float:
    stamp, batch = 0.0, 60
    for start in range(0, len(centers), batch):
        sl = slice(start, start + batch)
        obs = [observation(lab, c, stamp) for lab, c in zip(labels[sl], centers[sl], strict=True)]
        memory.update(ObservationFrame(view_fn(stamp, centers[: start + batch]), obs))
        stamp += 0.1
    return stamp


def bench_update(n_objects: int, frames: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    memory = SceneMemory(embedder=TextEmbedder())
    centers = grid(n_objects, rng)
    labels = [f"colour{i} shape{i}" for i in range(n_objects)]  # distinct: no merging
    stamp = populate(memory, centers, labels, top_view)
    times = []
    for _ in range(frames):
        picked = rng.choice(n_objects, size=min(6, n_objects), replace=False)
        obs = [observation(labels[i], centers[i] + rng.normal(0, 0.001, 3), stamp) for i in picked]
        frame = ObservationFrame(top_view(stamp, centers), obs)
        t0 = time.perf_counter()
        memory.update(frame)
        times.append(time.perf_counter() - t0)
        stamp += 0.1
    out = {"objects": n_objects, "in_memory": memory.stats["objects"], **percentiles(times)}
    memory.close()
    return out


def bulk_load(path: Path, centers: np.ndarray, labels: list[str], config: MemoryConfig) -> None:
    """Write a memory of ``len(centers)`` objects to the store at ``path``, as
    update() would have built it from one sighting each (see the module doc)."""
    from robot_memory.cell import load_cell

    stamp = 1.0
    objects = {
        k + 1: MemoryObject.from_observation(k + 1, observation(lab, c, stamp), config)
        for k, (lab, c) in enumerate(zip(labels, centers, strict=True))
    }
    for o in objects.values():
        o.status = "remembered"
    index = ObjectIndex(config.near_distance / 2 * (1 + 1e-6))
    index.rebuild(objects)
    rel = relations_indexed(index, sorted(objects), load_cell(), config)
    store = MemoryStore(path)
    meta = {"next_id": len(objects) + 1, "seq": 1, "stamp": stamp, "camera_stamps": {"top": stamp}}
    states = {k: RelationState(v, stamp, stamp) for k, v in rel.items()}
    store.commit(meta, list(objects.values()), [], states, [])
    store.close()


def bench_queries(n_objects: int, repeats: int, embedder: TextEmbedder) -> dict:
    rng = np.random.default_rng(1)
    config = MemoryConfig(gating_distance=0.025)
    centers = grid(n_objects, rng)
    centers[:20] = np.column_stack(  # some things in the bin
        [rng.uniform(0.08, 0.22, 20), rng.uniform(0.28, 0.42, 20), np.full(20, 0.03)]
    )
    labels = [f"{COLOURS[i % 6]} {SHAPES[(i // 6) % 6]}" for i in range(n_objects)]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        bulk_load(Path(tmp) / "bulk.db", centers, labels, config)
        t1 = time.perf_counter()
        memory = SceneMemory(config, store_path=Path(tmp) / "bulk.db", embedder=embedder)
        t2 = time.perf_counter()
        ids = [o.id for o in memory.objects()]
        queries = {
            "find": lambda k: MemoryQuery(
                id="q", kind="find", text=["mug", "red thing", "ball"][k % 3]
            ),
            "last_seen": lambda k: MemoryQuery(
                id="q", kind="last_seen", object_id=ids[k % len(ids)]
            ),
            "in": lambda k: MemoryQuery(id="q", kind="in", target="bin"),
            "on": lambda k: MemoryQuery(
                id="q", kind="on", target=["table_left", "table_centre", "table_right"][k % 3]
            ),
            "changed_since": lambda k: MemoryQuery(id="q", kind="changed_since", since=0.5),
        }
        out: dict = {
            "objects": memory.stats["objects"],
            "relations": memory.stats["relations"],
            "build": "bulk load: from_observation + relations_indexed -> MemoryStore -> load",
            "build_s": t1 - t0,
            "load_s": t2 - t1,
        }
        for name, make in queries.items():
            times: list[float] = []
            for k in range(repeats):
                if sum(times) > QUERY_BUDGET_S:  # a slow kind: fewer repeats, n says how many
                    break
                q = make(k)
                t0 = time.perf_counter()
                answer = memory.answer(q)
                times.append(time.perf_counter() - t0)
                assert answer.ok, answer.error
            out[name] = percentiles(times)
        memory.close()
    return out


def bench_stream(minutes: float, rate: float, store_path: Path | None) -> dict:
    """A tabletop of 8 objects; every 10 s one moves; every 30 s one leaves the
    view for 20 s (off the table); every 7 s a spurious detection."""
    rng = np.random.default_rng(2)
    memory = SceneMemory(MemoryConfig(), store_path=store_path, embedder=TextEmbedder())
    labels = [f"{c} {s}" for c, s in zip(COLOURS, SHAPES, strict=True)] + ["white cup", "grey bowl"]
    centers = np.column_stack(
        [np.linspace(-0.4, 0.4, 8), rng.uniform(-0.3, 0.3, 8), np.full(8, SIZE / 2)]
    )
    rss_start = proc_status_kib("VmRSS")
    rss_peak = rss_start
    n_frames = int(minutes * 60 * rate)
    away: dict[int, np.ndarray] = {}  # object -> where it comes back to
    t0 = time.perf_counter()
    for k in range(n_frames):
        stamp = k / rate
        if k % int(10 * rate) == 0 and k:
            i = rng.integers(8)
            centers[i, :2] = rng.uniform([-0.5, -0.4], [0.5, 0.4])
        if k % int(30 * rate) == 0 and k:  # one leaves the view ...
            i = int(rng.integers(8))
            away[i] = centers[i].copy()
            centers[i, :2] = (3.0, 3.0)
        if k % int(30 * rate) == int(20 * rate):  # ... and comes back 20 s later
            for i, back in away.items():
                centers[i] = back
            away.clear()
        seen = [i for i in range(8) if rng.random() < 0.75 and i not in away]
        obs = [observation(labels[i], centers[i] + rng.normal(0, 0.001, 3), stamp) for i in seen]
        scene = centers[seen]
        if k % int(7 * rate) == 3:
            ghost = np.array([*rng.uniform([-0.5, -0.4], [0.5, 0.4]), SIZE / 2])
            obs.append(observation("pink blob", ghost, stamp))
            scene = np.vstack([scene, ghost])
        memory.update(ObservationFrame(top_view(stamp, scene), obs))
        if k % 100 == 0:
            rss_peak = max(rss_peak, proc_status_kib("VmRSS"))
    wall = time.perf_counter() - t0
    stats = memory.stats
    memory.close()
    return {
        "store": store_path is not None,
        "frames": n_frames,
        "sim_minutes": minutes,
        "wall_s": wall,
        "rss_start_mib": rss_start / 1024,
        "rss_end_mib": proc_status_kib("VmRSS") / 1024,
        "rss_peak_mib": max(rss_peak, proc_status_kib("VmRSS")) / 1024,  # sampled
        "rss_hwm_mib": proc_status_kib("VmHWM") / 1024,  # whole process so far
        "objects_end": stats["objects"],
        "points_end": stats["points_total"],
        "relations_end": stats["relations"],
        "db_mib": db_mib(store_path) if store_path else 0.0,
    }


def db_mib(path: Path) -> float:
    """The store on disk: the database and its WAL."""
    files = [path, path.with_name(path.name + "-wal")]
    return sum(f.stat().st_size for f in files if f.exists()) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--frames", type=int, default=200, help="timed updates per size")
    parser.add_argument("--query-objects", type=int, default=10000)
    parser.add_argument("--query-repeats", type=int, default=50)
    parser.add_argument("--stream-minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()

    results: dict = {"update": [], "stream": []}
    print(f"{'objects':>8} {'p50 ms':>8} {'p99 ms':>8}   update, 6 observations per frame")
    for n in args.sizes:
        r = bench_update(n, args.frames)
        results["update"].append(r)
        print(f"{n:>8} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f}")
    ups = {r["objects"]: r for r in results["update"]}
    if len(ups) > 1:
        lo, hi = min(ups), max(ups)
        ratio = ups[hi]["p50_ms"] / ups[lo]["p50_ms"]
        results["update_p50_ratio"] = {f"{hi}/{lo}": ratio}
        print(f"p50 ratio {hi} / {lo} objects: {ratio:.1f}x")
    embedder = TextEmbedder()
    embedder.encode(["warm up"])  # the model loads once, outside the timings
    q = bench_queries(args.query_objects, args.query_repeats, embedder)
    results["query"] = q
    print(f"\nqueries with {q['objects']} objects, {q['relations']} relations")
    print(f"  ({q['build']}: {q['build_s']:.1f} s, load {q['load_s']:.1f} s)")
    for name in ("find", "last_seen", "in", "on", "changed_since"):
        print(f"{name:>10} p50 {q[name]['p50_ms']:8.2f} ms  p99 {q[name]['p99_ms']:8.2f} ms")
    print(f"\nstream: {args.stream_minutes} min at {args.rate} Hz (simulated)")
    print(
        f"{'store':>6} {'wall s':>7} {'RSS0':>7} {'RSS1':>7} {'peak':>7} {'objs':>5} {'db MiB':>7}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for path in (None, Path(tmp) / "memory.db"):
            r = bench_stream(args.stream_minutes, args.rate, path)
            results["stream"].append(r)
            print(
                f"{'yes' if r['store'] else 'no':>6} {r['wall_s']:7.1f} {r['rss_start_mib']:7.1f} "
                f"{r['rss_end_mib']:7.1f} {r['rss_peak_mib']:7.1f} {r['objects_end']:>5} "
                f"{r['db_mib']:7.2f}"
            )
            r["rss_end_over_start"] = r["rss_end_mib"] / r["rss_start_mib"]
            print(f"{'':>6} RSS end / start {r['rss_end_over_start']:.2f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
        print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
