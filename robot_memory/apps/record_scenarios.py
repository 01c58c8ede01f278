"""``robot-memory scenarios``: record scenario bags (sim + scripted expert,
in-process, deterministic): each script of
:mod:`robot_memory.apps.scenario_scripts` drives a
:class:`~robot_memory.apps.scenarios.ScenarioSession` and its bag is written
with the script's event log beside it.

``--setting realistic`` records the household cell (mugs, bowls, cans, ...,
same-colour twins, touching objects) with RealSense-class depth noise and the
cameras' extrinsics 3 mm / 0.3 degrees off; ``primitives`` (the default) the
coloured primitives with perfect depth."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from robot_memory.apps.scenario_scripts import SCRIPTS
from robot_memory.apps.scenarios import (
    SCENARIOS,
    ScenarioConfig,
    ScenarioResult,
    ScenarioSession,
    bag_size,
)
from robot_memory.bag.writer import STORAGES
from robot_memory.sim.depth_noise import DEPTH_NOISE_MODELS
from robot_memory.sim.settings import SETTINGS


def record_scenario(
    name: str, out_dir: str | Path, config: ScenarioConfig, progress: bool = False
) -> ScenarioResult:
    """Run scenario ``name`` and write its bag to ``out_dir/name`` (plus
    ``out_dir/name.json``, the script's event log)."""
    if name not in SCRIPTS:
        raise ValueError(f"unknown scenario {name!r}; choose one of {sorted(SCRIPTS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    bag_path = out / name
    wall0 = time.monotonic()
    bar = tqdm(desc=name, unit="sim s", disable=not progress, file=sys.stderr)
    session = ScenarioSession(bag_path, config, bar)
    try:
        SCRIPTS[name](session)
    finally:
        session.close()
        bar.close()
    result = ScenarioResult(
        scenario=name,
        bag=bag_path,
        storage=config.storage,
        seed=config.seed,
        sim_duration_s=session.time,
        wall_s=time.monotonic() - wall0,
        bag_bytes=bag_size(bag_path),
        counts=session.bag.counts,
        events=session.events,
    )
    sidecar = {**asdict(result), "bag": str(bag_path), "config": asdict(config)}
    (out / f"{name}.json").write_text(json.dumps(sidecar, indent=1, default=_jsonable))
    return result


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    return str(value)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="robot-memory scenarios",
        description="Record scenario bags (sim + scripted expert, in-process, deterministic).",
    )
    p.add_argument("--out", required=True, type=Path, help="output folder (one bag per scenario)")
    p.add_argument("--scenario", choices=[*SCENARIOS, "all"], default="all")
    p.add_argument("--small", action="store_true", help="short 320x240 @ 5 Hz versions")
    p.add_argument(
        "--setting",
        choices=sorted(SETTINGS),
        default="primitives",
        help="primitives: the coloured primitives, perfect depth; realistic: household "
        "objects, RealSense depth noise, cameras 3 mm / 0.3 deg off (flags below override)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--width", type=int, default=None, help="default 640 (small: 320)")
    p.add_argument("--height", type=int, default=None, help="default 480 (small: 240)")
    p.add_argument("--camera-rate", type=float, default=None, help="Hz; default 10 (small: 5)")
    p.add_argument("--storage", choices=sorted(STORAGES), default="mcap")
    p.add_argument("--depth-encoding", choices=["16UC1", "32FC1"], default="16UC1")
    p.add_argument(
        "--depth-noise",
        choices=list(DEPTH_NOISE_MODELS),
        default=None,
        help="realsense: a D400-class camera's depth noise, holes and quantization "
        "(default: the setting's)",
    )
    p.add_argument(
        "--extrinsic-error",
        type=float,
        nargs=2,
        metavar=("MM", "DEG"),
        default=None,
        help="camera mounts in /tf_static off by this much (default: the setting's)",
    )
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setting = SETTINGS[args.setting]
    noise = args.depth_noise or setting.depth_noise
    error = tuple(args.extrinsic_error or setting.extrinsic_error)
    config = ScenarioConfig.for_size(
        args.small,
        scene=setting.scene,
        seed=args.seed,
        width=args.width,
        height=args.height,
        camera_rate=args.camera_rate,
        storage=args.storage,
        depth_encoding=args.depth_encoding,
        depth_noise=noise,
        extrinsic_error=error,
    )
    names = SCENARIOS if args.scenario == "all" else (args.scenario,)
    for name in names:
        if (args.out / name).exists():
            print(f"error: {args.out / name} exists; bags are never overwritten", file=sys.stderr)
            return 2
    for name in names:
        result = record_scenario(name, args.out, config, progress=not args.no_progress)
        print(result.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
