"""Bench: replay evaluation against real time, and whether perception + memory
keep up with two 640x480 cameras at 10 Hz on this machine.

One run, side by side, on the same full-size scenario bag (640x480, 10 Hz,
front + wrist, recorded in-process if ``--bag`` is not given):

1. ``robot-memory eval`` with every frame at perception stride 2 and 4, and
   at a reduced frame rate with stride 4; speed = bag duration / wall time;
2. the per-frame cost of perception + memory (from the same runs) against the
   budget of 2 cameras x 10 Hz = 20 frames/s: capacity / required frames/s.

    .venv/bin/python bench/bench_replay_eval.py --output out/bench
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

REQUIRED_FPS = 20.0  # 2 cameras x 10 Hz


def record(bag_dir: Path, scenario: str) -> Path:
    from robot_memory.apps.record_scenarios import main as scenarios_main

    bag = bag_dir / scenario
    if not bag.exists():
        print(f"[bench] recording the full-size {scenario!r} scenario into {bag_dir} ...")
        code = scenarios_main(["--out", str(bag_dir), "--scenario", scenario, "--no-progress"])
        if code != 0:
            raise SystemExit(f"scenario recording failed ({code})")
    return bag


def run_eval(bag: Path, out: Path, camera_rate: float, stride: int) -> dict:
    from robot_memory.evaluation.bag_evaluation import EvalOptions, evaluate_bag

    t0 = time.monotonic()
    summary = evaluate_bag(
        EvalOptions(bag=bag, out=out, camera_rate=camera_rate, stride=stride, progress=False)
    )
    speed = summary["speed"]
    per_frame_ms = speed["perception_ms_per_frame"] + speed["memory_ms_per_frame"]
    return {
        "camera_rate": camera_rate,
        "stride": stride,
        "wall_s": time.monotonic() - t0,
        "x_real_time": speed["x_real_time"],
        "perception_ms_per_frame": speed["perception_ms_per_frame"],
        "memory_ms_per_frame": speed["memory_ms_per_frame"],
        "capacity_fps": 1e3 / per_frame_ms if per_frame_ms > 0 else float("inf"),
        "f1_final": summary.get("f1_final"),
        "loc_error_mean_cm": 100 * (summary.get("loc_error_mean") or 0.0),
        "permanence_accuracy": summary.get("permanence_accuracy"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, default=Path("out/bench"))
    parser.add_argument("--bag", type=Path, default=None, help="use this bag instead")
    parser.add_argument("--scenario", default="covered")
    parser.add_argument("--eval-rate", type=float, default=5.0, help="a reduced frame rate")
    args = parser.parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")
    args.output.mkdir(parents=True, exist_ok=True)
    bag = args.bag or record(args.output / "bags", args.scenario)
    settings = [(0.0, 2), (0.0, 4), (args.eval_rate, 4)]  # (frames/s/camera, pixel stride)
    rows = [
        run_eval(bag, args.output / f"eval_rate_{rate:g}_stride_{stride}", rate, stride)
        for rate, stride in settings
    ]
    print(f"\nbag: {bag}")
    print(
        f"{'frames/s/camera':>16} {'stride':>6} {'x real time':>12} "
        f"{'perception ms':>14} {'memory ms':>10} "
        f"{'capacity fps':>13} {'vs 20 fps':>10} {'F1':>6} {'loc cm':>7}"
    )
    for r in rows:
        rate = "all" if r["camera_rate"] == 0 else f"{r['camera_rate']:g}"
        print(
            f"{rate:>16} {r['stride']:>6} {r['x_real_time']:>12.2f} "
            f"{r['perception_ms_per_frame']:>14.1f} "
            f"{r['memory_ms_per_frame']:>10.1f} {r['capacity_fps']:>13.1f} "
            f"{r['capacity_fps'] / REQUIRED_FPS:>10.2f} {r['f1_final'] or 0:>6.3f} "
            f"{r['loc_error_mean_cm']:>7.2f}"
        )
    out = args.output / "bench_replay_eval.json"
    out.write_text(
        json.dumps({"bag": str(bag), "required_fps": REQUIRED_FPS, "runs": rows}, indent=2)
    )
    print(f"[bench] wrote {out}")


if __name__ == "__main__":
    main()
