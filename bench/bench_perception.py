"""Bench: perception latency per 640x480 RGB-D frame, by stage, and label /
centroid accuracy per object and camera, on frames rendered by the sim.

Threads are limited as on the target machine (2 cores: numpy/BLAS, OpenCV,
Open3D and torch). The budget is 2 cameras at 10 Hz on one core's worth of
time per frame: 50 ms.

    MUJOCO_GL=egl .venv/bin/python bench/bench_perception.py --out out/bench_perception.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")

import numpy as np

BUDGET_MS = 1000.0 / (2 * 10)  # 2 cameras at 10 Hz -> 50 ms per frame
CAMERAS = ("front", "wrist")


def percentiles(values_s: list[float]) -> dict[str, float]:
    arr = np.asarray(values_s) * 1e3
    return {
        "n": int(arr.size),
        "p50_ms": float(np.percentile(arr, 50)),
        "p99_ms": float(np.percentile(arr, 99)),
    }


def render_frames(seeds: list[int], setting_name: str = "primitives") -> list[dict]:
    """Both cameras' frames of each seed's start, in one evaluation setting
    (the realistic one: household objects and RealSense-class depth noise)."""
    from robot_memory.sim.cameras import CameraRig
    from robot_memory.sim.depth_noise import depth_noise_named
    from robot_memory.sim.runner import RunnerConfig, SimulationRunner
    from robot_memory.sim.settings import setting_named

    setting = setting_named(setting_name)
    config = RunnerConfig(scene=setting.scene, camera_rate=0, ground_truth_rate=0, seed=seeds[0])
    runner = SimulationRunner(config)
    noise = depth_noise_named(setting.depth_noise)
    rig = CameraRig(runner.physics.model, 640, 480, CAMERAS, depth_noise=noise, seed=seeds[0])
    frames = []
    for seed in seeds:
        runner.reset(seed)
        names, q, _, _ = runner.physics.joint_state()
        truth = runner.ground_truth()
        for cam in CAMERAS:
            rgb, depth = rig.render(runner.physics, cam)
            pos, quat = rig.optical_pose(runner.physics, cam)
            frames.append(
                {
                    "seed": seed,
                    "camera": cam,
                    "rgb": rgb,
                    "depth": depth,
                    "K": rig.intrinsics(cam),
                    "position": pos,
                    "quaternion": quat,
                    "joints": dict(zip(names, q.tolist(), strict=True)),
                    "truth": truth,
                }
            )
    rig.close()
    return frames


def visible(frame: dict, position) -> bool:
    """Centre well inside the image and not hidden behind something nearer."""
    from robot_memory.perception.observations import quat_to_matrix

    cam = (np.asarray(position) - frame["position"]) @ quat_to_matrix(frame["quaternion"])
    if cam[2] <= 0.05:
        return False
    k, depth = frame["K"], frame["depth"]
    u, v = k[0, 0] * cam[0] / cam[2] + k[0, 2], k[1, 1] * cam[1] / cam[2] + k[1, 2]
    if not (60 <= u < depth.shape[1] - 60 and 60 <= v < depth.shape[0] - 60):
        return False
    seen = depth[int(v), int(u)]
    return bool(seen > 0 and seen > cam[2] - 0.05)


def run(frames: list[dict], repeats: int) -> dict:
    import cv2

    from robot_memory.perception import decode_color, decode_depth
    from robot_memory.perception.pipeline import STAGES, PerceptionPipeline

    try:
        import torch

        torch.set_num_threads(2)
    except ImportError:
        pass
    cv2.setNumThreads(2)
    pipeline = PerceptionPipeline()
    latency: dict[str, list[float]] = defaultdict(list)
    stages: dict[str, list[float]] = defaultdict(list)
    hits: dict[tuple[str, str], list[int]] = defaultdict(list)
    errors: dict[tuple[str, str], list[float]] = defaultdict(list)
    for rep in range(repeats):
        for f in frames:
            rgb_bytes, depth_bytes = f["rgb"].tobytes(), f["depth"].astype("<f4").tobytes()
            t0 = time.perf_counter()
            rgb = decode_color("rgb8", 480, 640, 640 * 3, rgb_bytes)
            depth = decode_depth("32FC1", 480, 640, 640 * 4, depth_bytes)
            t1 = time.perf_counter()
            out = pipeline.process(
                rgb, depth, f["K"], f["position"], f["quaternion"], 0.0, f["camera"], f["joints"]
            )
            t2 = time.perf_counter()
            latency[f["camera"]].append(t2 - t0)
            stages["decode"].append(t1 - t0)
            for name in STAGES:
                stages[name].append(pipeline.last_timings.get(name, 0.0))
            if rep > 0:
                continue
            for gt in f["truth"].objects:
                if gt.kind != "object" or not visible(f, gt.position):
                    continue
                key = (gt.label, f["camera"])
                dists = [np.linalg.norm(o.centroid - gt.position) for o in out.objects]
                if not dists:
                    hits[key].append(0)
                    continue
                best = out.objects[int(np.argmin(dists))]
                hits[key].append(int(best.label == gt.label and min(dists) < 0.03))
                errors[key].append(float(min(dists)))
    accuracy = {
        f"{label} / {cam}": {
            "seen": len(v),
            "label_ok": float(np.mean(v)),
            "mean_err_cm": float(np.mean(errors[(label, cam)]) * 100)
            if errors[(label, cam)]
            else None,
        }
        for (label, cam), v in sorted(hits.items())
    }
    return {
        "latency": {cam: percentiles(v) for cam, v in latency.items()},
        "stages": {name: percentiles(v) for name, v in stages.items()},
        "accuracy": accuracy,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="episodes to render")
    parser.add_argument("--repeats", type=int, default=3, help="passes over the frames")
    parser.add_argument("--setting", default="primitives", help="primitives | realistic")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args()
    frames = render_frames(list(range(1, args.seeds + 1)), args.setting)
    result = run(frames, args.repeats)
    result["budget_ms"] = BUDGET_MS
    result["setting"] = args.setting
    header = f"{'latency (decode + process)':32s} {'n':>4s} {'p50 ms':>8s} {'p99 ms':>8s}"
    print(f"{header} {'p99/budget':>10s}")
    for cam, row in result["latency"].items():
        ratio = row["p99_ms"] / BUDGET_MS
        print(f"  {cam:30s} {row['n']:4d} {row['p50_ms']:8.1f} {row['p99_ms']:8.1f} {ratio:10.2f}")
    print("stages")
    for name, row in result["stages"].items():
        print(f"  {name:30s} {row['n']:4d} {row['p50_ms']:8.1f} {row['p99_ms']:8.1f}")
    print(f"{'accuracy (label / camera)':40s} {'seen':>5s} {'label ok':>9s} {'err cm':>7s}")
    for key, row in result["accuracy"].items():
        err = f"{row['mean_err_cm']:.2f}" if row["mean_err_cm"] is not None else "-"
        print(f"  {key:38s} {row['seen']:5d} {row['label_ok']:9.0%} {err:>7s}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
