"""``robot-memory eval BAG``: run perception and memory over a bag and score
them against the ``/sim/ground_truth`` recorded in it.

The bag is read in time order (no DDS, no real-time pacing: as fast as the
CPU allows). Each camera frame goes through the same path as in the nodes:
:class:`PerceptionPipeline`, the ``/perception/observations`` round trip through
the core's ``ObservationFrameMsg`` (what the typed message carries: depth in
integer millimetres, at most 32 points per object), :meth:`SceneMemory.update`.
Ground truth is ``robot_memory_interfaces/msg/GroundTruth`` (an older bag's
JSON ``std_msgs/String`` also reads); camera poses come from ``/tf`` +
``/tf_static`` (an older bag's ``/camera/<cam>/pose`` also reads).

At every ground-truth message (at most every ``--snapshot-period`` seconds of
bag time) the memory's scene graph is scored
(:mod:`robot_memory.evaluation.metrics`); at the end each object seen in the bag
is asked for with a ``last_seen`` query. Only objects that some camera actually
saw count (``seen_fraction`` of the object in one view, unoccluded): memory
can't be blamed for what was never in view, or only ever glimpsed at the image
edge.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from robot_memory.bag.reader import BagError
from robot_memory.cell import load_cell
from robot_memory.evaluation.metrics import (
    FrameScore,
    aggregate,
    score_last_seen,
    score_snapshot,
)
from robot_memory.evaluation.report import write_report
from robot_memory.evaluation.visibility import visible_objects
from robot_memory.memory import MemoryInputError, SceneMemory, TextEmbedder
from robot_memory.perception import PerceptionConfig, PerceptionInputError
from robot_memory.perception.observations import CameraView, frame_from_payload, frame_to_payload
from robot_memory.perception.pipeline import PerceptionPipeline
from robot_memory.replay.bag_frames import (
    WORLD_FRAME,
    BagPlan,
    CameraFrameEvent,
    GroundTruthEvent,
    inspect_bag,
    iter_bag_events,
)
from robot_memory.replay.bag_topics import GROUND_TRUTH_TOPIC, TopicMap, mapping_hint
from robot_memory.schemas import GroundTruth, MemoryQuery


@dataclass
class EvalOptions:
    bag: Path
    out: Path
    cameras: list[str] | None = None
    camera_rate: float = 0.0  # at most this many frames/s per camera (0: all); skipped undecoded
    stride: int = 2  # perception: back-project every n-th pixel (the node's parameter too)
    snapshot_period: float = 1.0  # score the graph at most this often [s of bag time]
    out_of_view_s: float = 1.0  # unseen this long by every camera = out of view
    seen_fraction: float = 0.6  # "seen" = this much of the object in one view, unoccluded
    cell_file: str = ""
    progress: bool = True
    topic_map: TopicMap = field(default_factory=TopicMap)  # bag topics -> contract names
    world_frame: str = WORLD_FRAME  # for camera poses from /tf


class EvalError(ValueError):
    """The bag cannot be evaluated; the message (one line) says why and what to do."""


class NothingEvaluatedError(EvalError):
    """The bag was read, but not one of its frames could be evaluated."""


@dataclass
class EvalState:
    truth_history: list[GroundTruth] = field(default_factory=list)
    scores: list[FrameScore] = field(default_factory=list)
    views: dict[str, CameraView] = field(default_factory=dict)
    last_visible: dict[str, float] = field(default_factory=dict)  # any part in view
    well_seen: set[str] = field(default_factory=set)  # once seen well enough to know it
    last_seen_at: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    rejected: Counter[str] = field(default_factory=Counter)
    frames: Counter[str] = field(default_factory=Counter)
    last_snapshot: float = float("-inf")
    perception_s: float = 0.0
    memory_s: float = 0.0
    bag_start: float | None = None
    bag_end: float = 0.0


def _seen_truth(truth: GroundTruth, seen: set[str]) -> GroundTruth:
    """Ground truth restricted to places and the objects some camera has seen."""
    keep = [o for o in truth.objects if o.kind == "place" or o.id in seen]
    return truth.model_copy(update={"objects": keep})


def check_bag(opts: EvalOptions) -> tuple[BagPlan, list[str]]:
    """What the bag offers, and notes on what it lacks; :class:`EvalError` when
    nothing in it can be evaluated (no camera with colour, depth, camera_info
    and a pose, or no ground truth), with the topics to map."""
    try:
        plan = inspect_bag(opts.bag, opts.topic_map)
    except BagError as err:
        raise EvalError(str(err)) from None
    if not plan.cameras:
        raise EvalError(
            f"no camera in {opts.bag}: no /camera/<cam>/color/image_raw (sensor_msgs/Image) "
            f"or .../image_raw/compressed (CompressedImage); {mapping_hint(plan.topics)}"
        )
    chosen = opts.cameras or sorted(plan.cameras)
    unknown = sorted(set(chosen) - set(plan.cameras))
    if unknown:
        raise EvalError(f"cameras {unknown} not in {opts.bag}; it has {sorted(plan.cameras)}")
    lacking = {cam: plan.cameras[cam].missing() for cam in chosen}
    lacking = {cam: parts for cam, parts in lacking.items() if parts}
    described = "; ".join(f"camera {c} lacks {', '.join(p)}" for c, p in lacking.items())
    if len(lacking) == len(chosen):
        raise EvalError(f"cannot evaluate {opts.bag}: {described}; {mapping_hint(plan.topics)}")
    if not plan.ground_truth:
        raise EvalError(
            f"{opts.bag} has no {GROUND_TRUTH_TOPIC} (robot_memory_interfaces/msg/GroundTruth, "
            "or an older bag's std_msgs/String JSON): "
            "nothing to score against (docs/evaluation.md, 'Your own bag')"
        )
    notes = [f"{described}; it is skipped"] if lacking else []
    notes += [f"topic {t} cannot be decoded: {why}" for t, why in plan.undecodable.items()]
    return plan, notes


def evaluate_bag(opts: EvalOptions) -> dict:
    plan, notes = check_bag(opts)
    for note in notes:
        print(f"robot-memory eval: note: {note}", file=sys.stderr)
    cameras = opts.cameras or sorted(c for c in plan.cameras if not plan.cameras[c].missing())
    cell = load_cell(opts.cell_file or None)
    pipeline = PerceptionPipeline(PerceptionConfig(stride=opts.stride), cell)
    memory = SceneMemory(cell=cell, store_path=None, embedder=TextEmbedder())
    state = EvalState()
    wall0 = time.monotonic()
    events = iter_bag_events(
        opts.bag,
        cameras=cameras,
        topic_map=opts.topic_map,
        world_frame=opts.world_frame,
        camera_rate=opts.camera_rate,
    )
    for n, event in enumerate(events):
        if isinstance(event, GroundTruthEvent):
            _on_truth(event, memory, state, opts)
        elif isinstance(event, CameraFrameEvent):
            _on_frame(event, pipeline, memory, state, opts)
        if opts.progress and n % 200 == 0:
            done = sum(state.frames.values())
            print(
                f"\r[eval] bag t={state.bag_end - (state.bag_start or 0):7.1f} s  "
                f"frames={done}  objects={len(memory.objects())}",
                end="",
                flush=True,
            )
    wall = time.monotonic() - wall0
    if opts.progress:
        print()
    if not state.truth_history:
        raise EvalError(f"{opts.bag} has no readable {GROUND_TRUTH_TOPIC}: nothing to score")
    if not state.frames:
        total = sum(state.rejected.values())
        reasons = ", ".join(f"{r} ({n})" for r, n in state.rejected.most_common(3))
        raise NothingEvaluatedError(
            f"none of the {total} camera frames could be evaluated: {reasons}"
        )
    seen = set(state.well_seen)
    answers = []
    final_truth = state.truth_history[-1]
    for obj in final_truth.objects:
        if obj.id in seen:
            query = MemoryQuery(id=obj.id, kind="last_seen", text=obj.label)
            answers.append((obj.id, memory.answer(query)))
    summary = aggregate(state.scores)
    summary["last_seen"] = score_last_seen(answers, state.truth_history)
    bag_s = state.bag_end - (state.bag_start or 0.0)
    summary["speed"] = {
        "bag_duration_s": bag_s,
        "wall_s": wall,
        "x_real_time": bag_s / wall if wall > 0 else float("inf"),
        "perception_ms_per_frame": 1e3 * state.perception_s / max(1, sum(state.frames.values())),
        "memory_ms_per_frame": 1e3 * state.memory_s / max(1, sum(state.frames.values())),
    }
    meta = {
        "bag": str(opts.bag),
        "frames": dict(state.frames),
        "cameras": {c: vars(plan.cameras[c]) for c in cameras},
        "notes": notes,
        "rejected_inputs": dict(state.rejected),
        "objects_seen": sorted(seen),
        "options": {
            "camera_rate": opts.camera_rate,
            "stride": opts.stride,
            "snapshot_period": opts.snapshot_period,
            "out_of_view_s": opts.out_of_view_s,
        },
    }
    final_graph = memory.snapshot()
    paths = write_report(
        opts.out, summary, state.scores, final_graph, _seen_truth(final_truth, seen), meta
    )
    memory.close()
    summary["report_files"] = {k: str(v) for k, v in paths.items()}
    return summary


def _on_truth(event: GroundTruthEvent, memory: SceneMemory, state: EvalState, opts) -> None:
    truth = event.truth
    if truth is None:
        state.rejected[f"ground truth: {event.error}"] += 1
        return
    state.truth_history.append(truth)
    # Which objects the cameras see now (views are at most one camera period old).
    views = list(state.views.values())
    for obj_id in visible_objects(truth, views):
        state.last_visible[obj_id] = truth.stamp
        state.last_seen_at[obj_id] = truth.get(obj_id).position
    state.well_seen |= visible_objects(truth, views, min_fraction=opts.seen_fraction)
    if truth.stamp - state.last_snapshot < opts.snapshot_period or not state.views:
        return
    state.last_snapshot = truth.stamp
    seen = set(state.well_seen)
    out_of_view = {  # -> where it was when last in view
        obj_id: state.last_seen_at[obj_id]
        for obj_id, t in state.last_visible.items()
        if obj_id in seen and truth.stamp - t >= opts.out_of_view_s
    }
    state.scores.append(score_snapshot(memory.snapshot(), _seen_truth(truth, seen), out_of_view))


def _on_frame(
    event: CameraFrameEvent,
    pipeline: PerceptionPipeline,
    memory: SceneMemory,
    state: EvalState,
    opts: EvalOptions,
) -> None:
    state.bag_start = event.stamp if state.bag_start is None else state.bag_start
    state.bag_end = max(state.bag_end, event.stamp)
    if event.missing:
        state.rejected[event.missing] += 1
        return
    t0 = time.monotonic()
    try:
        frame = pipeline.process(
            event.rgb,
            event.depth,
            event.intrinsics,
            event.position,
            event.quaternion,
            event.stamp,
            event.camera,
            event.joint_positions,
        )
    except PerceptionInputError as err:
        state.rejected[err.reason] += 1
        return
    t1 = time.monotonic()
    frame = frame_from_payload(frame_to_payload(frame))  # what the memory node receives
    try:
        memory.update(frame)
    except MemoryInputError as err:
        state.rejected[err.reason] += 1
        return
    state.perception_s += t1 - t0
    state.memory_s += time.monotonic() - t1
    state.frames[event.camera] += 1
    state.views[event.camera] = frame.view


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="robot-memory eval",
        description="Run perception + memory over a bag and score them against the bag's "
        "/sim/ground_truth. Writes report.json, report.md, map.png and metrics.png.",
    )
    p.add_argument("bag", type=Path, help="rosbag2 folder (MCAP or sqlite3)")
    p.add_argument("--out", type=Path, default=None, help="report folder (default out/eval/<bag>)")
    p.add_argument("--cameras", nargs="*", default=None, help="cameras to use (default: all)")
    p.add_argument(
        "--camera-rate",
        type=float,
        default=0.0,
        help="process at most N frames/s per camera (default 0: every frame)",
    )
    p.add_argument(
        "--stride", type=int, default=2, help="perception pixel stride (4 for speed at 640x480)"
    )
    p.add_argument("--snapshot-period", type=float, default=1.0, help="score every S s")
    p.add_argument("--out-of-view", type=float, default=1.0, help="unseen for S s = out of view")
    p.add_argument("--cell", default="", help="cell file (default: the shipped tabletop cell)")
    p.add_argument(
        "--camera",
        action="append",
        default=[],
        metavar="NAME=PREFIX",
        help="read camera NAME from PREFIX/color/image_raw[/compressed], "
        "PREFIX/aligned_depth_to_color/image_raw[/compressedDepth], PREFIX/color/camera_info, "
        "and the camera's pose from /tf (or an older bag's PREFIX/pose) (repeatable)",
    )
    p.add_argument(
        "--remap",
        action="append",
        default=[],
        metavar="FROM=TO",
        help="read bag topic FROM as TO, e.g. /rgb=/camera/front/color/image_raw (repeatable)",
    )
    p.add_argument(
        "--world-frame", default=WORLD_FRAME, help="frame of camera poses taken from /tf"
    )
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.bag.exists():
        print(f"robot-memory eval: error: no bag at {args.bag}", file=sys.stderr)
        return 2
    try:
        topic_map = TopicMap.parse(args.camera, args.remap)
    except ValueError as err:
        parser.error(str(err))
    out = args.out or Path("out/eval") / args.bag.resolve().name
    opts = EvalOptions(
        bag=args.bag,
        out=out,
        cameras=args.cameras,
        camera_rate=args.camera_rate,
        stride=args.stride,
        snapshot_period=args.snapshot_period,
        out_of_view_s=args.out_of_view,
        cell_file=args.cell,
        progress=not args.no_progress,
        topic_map=topic_map,
        world_frame=args.world_frame,
    )
    try:
        summary = evaluate_bag(opts)
    except (EvalError, BagError) as err:
        if opts.progress:
            print()
        print(f"robot-memory eval: error: {err}", file=sys.stderr)
        return 1 if isinstance(err, NothingEvaluatedError) else 2
    print(json.dumps({k: summary[k] for k in summary if k != "series"}, indent=2, default=str))
    print(f"[eval] report: {out / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
