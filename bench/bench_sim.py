"""Bench: the simulator's real-time factor and image latency through DDS.

Measured side by side in one run, printed as ratios, written as JSON:

1. Real-time factor of the sim core (physics + rendering two RGB-D cameras)
   at 320x240 and 640x480 and several camera rates, against physics alone.
2. Image latency through DDS: a raw rclpy publisher -> subscriber in another
   process (the floor) against the sim node's path (render, convert, publish),
   for 640x480 rgb8.

    .venv/bin/python bench/bench_sim.py --output out/bench
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from robot_memory.bringup.ros_env import apply_to_current_process, random_domain_id

FLOOR_PUBLISHER = """
import time, numpy as np, rclpy
from sensor_msgs.msg import Image
from rclpy.qos import qos_profile_sensor_data
rclpy.init(); node = rclpy.create_node('floor_publisher')
pub = node.create_publisher(Image, '/bench/image', qos_profile_sensor_data)
data = np.random.default_rng(0).integers(0, 255, {h}*{w}*3, dtype=np.uint8).tobytes()
end = time.time() + {seconds}
while time.time() < end:
    msg = Image(height={h}, width={w}, encoding='rgb8', step={w}*3)
    now = time.time()
    msg.header.stamp.sec, msg.header.stamp.nanosec = int(now), int((now % 1) * 1e9)
    msg.data = data
    pub.publish(msg); time.sleep(1.0 / {rate})
rclpy.shutdown()
"""


def percentiles(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values) * 1e3
    if arr.size == 0:
        return {"n": 0}
    return {
        "n": int(arr.size),
        "p50_ms": float(np.percentile(arr, 50)),
        "p99_ms": float(np.percentile(arr, 99)),
    }


def bench_rtf(sim_seconds: float, panda_visual: str) -> list[dict]:
    from robot_memory.sim.cameras import CameraRig
    from robot_memory.sim.runner import RunnerConfig, SimulationRunner

    rows = []
    runner = SimulationRunner(RunnerConfig(camera_rate=0.0, panda_visual=panda_visual))
    t0 = time.perf_counter()
    runner.run_for(sim_seconds)
    physics_rtf = sim_seconds / (time.perf_counter() - t0)
    rows.append({"config": "physics only", "rtf": physics_rtf})
    print(f"  physics only: RTF {physics_rtf:.1f}")
    for width, height in ((320, 240), (640, 480)):
        rig = CameraRig(runner.physics.model, width, height, ("front", "wrist"))
        for rate in (5.0, 15.0, 30.0):
            steps_per_frame = max(1, round(1.0 / rate / runner.timestep))
            n_frames = int(sim_seconds * rate)
            t0 = time.perf_counter()
            for _ in range(n_frames):
                runner.advance(steps_per_frame)
                for cam in ("front", "wrist"):
                    rig.render(runner.physics, cam)
            wall = time.perf_counter() - t0
            rtf = n_frames * steps_per_frame * runner.timestep / wall
            row = {"config": f"2 cams {width}x{height} @ {rate:g} Hz", "rtf": rtf}
            row["vs_physics_only"] = rtf / physics_rtf
            rows.append(row)
            print(
                f"  {row['config']}: RTF {rtf:.2f} ({row['vs_physics_only']:.2f} of physics only)"
            )
        rig.close()
    return rows


def bench_latency(seconds: float) -> dict:
    import rclpy
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import Image

    from robot_memory.bringup.launch_spec import stack
    from robot_memory.bringup.launcher import Launcher
    from robot_memory.nodes.conversions import from_time
    from robot_memory.nodes.qos import SENSOR

    rclpy.init()
    node = rclpy.create_node("latency_bench")
    floor: list[float] = []
    node.create_subscription(
        Image,
        "/bench/image",
        lambda m: floor.append(time.time() - from_time(m.header.stamp)),
        SENSOR,
    )
    pub = subprocess.Popen(
        [sys.executable, "-c", FLOOR_PUBLISHER.format(h=480, w=640, seconds=seconds, rate=15)],
        env=os.environ,
    )
    while pub.poll() is None:
        rclpy.spin_once(node, timeout_sec=0.05)

    # The sim path: the clock message for time t goes out right before the
    # images rendered at t, so image arrival minus clock arrival is the render
    # + convert + publish + transport time of the sim node.
    clock_arrival: dict[float, float] = {}
    sim_path: list[float] = []

    def on_clock(m: Clock) -> None:
        clock_arrival[round(from_time(m.clock), 4)] = time.monotonic()

    def on_image(m: Image) -> None:
        t = clock_arrival.get(round(from_time(m.header.stamp), 4))
        if t is not None:
            sim_path.append(time.monotonic() - t)

    node.create_subscription(Clock, "/clock", on_clock, 100)
    node.create_subscription(Image, "/camera/front/color/image_raw", on_image, SENSOR)
    params = {"image_width": 640, "image_height": 480, "camera_rate": 15.0, "cameras": ["front"]}
    specs = [s for s in stack("sim", {"sim": params}) if s.name == "sim"]
    with Launcher(specs, output=None) as launched:
        end = time.monotonic() + seconds + 20
        while len(sim_path) < seconds * 10 and time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.05)
            launched.check()
    node.destroy_node()
    rclpy.shutdown()
    result = {"raw_dds_floor": percentiles(floor), "sim_node_path": percentiles(sim_path)}
    if floor and sim_path:
        result["ratio_p50"] = result["sim_node_path"]["p50_ms"] / result["raw_dds_floor"]["p50_ms"]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", default="out/bench")
    parser.add_argument("--sim-seconds", type=float, default=3.0)
    parser.add_argument("--latency-seconds", type=float, default=8.0)
    parser.add_argument("--panda-visual", default="auto")
    args = parser.parse_args()
    apply_to_current_process(domain_id=random_domain_id())
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    print(f"[bench] real-time factor (in-process, panda_visual={args.panda_visual})")
    rtf = bench_rtf(args.sim_seconds, args.panda_visual)
    print("[bench] 640x480 rgb8 image latency through DDS")
    latency = bench_latency(args.latency_seconds)
    for key in ("raw_dds_floor", "sim_node_path"):
        print(f"  {key}: {latency[key]}")
    if "ratio_p50" in latency:
        print(f"  sim node path / raw floor (p50): {latency['ratio_p50']:.2f}x")
    result = {"cpu_count": os.cpu_count(), "real_time_factor": rtf, "image_latency": latency}
    path = out / "bench_sim.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"[bench] wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
