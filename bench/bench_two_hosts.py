"""Bench: the stack split over two hosts (two network namespaces joined by a
veth pair) against one host, measured side by side in one run (issue 19:
observation-to-command latency within 1.5x of one host; 2 cameras x 10 Hz x
640x480 sustained without loss). Needs root (network namespaces).

1. **Camera streams**: the sim node publishes two RGB-D cameras at 10 Hz,
   640x480, for ``--stream-s`` seconds of sim time; a subscriber counts every
   colour and depth image by its stamp, once in the same namespace (one host:
   shared memory) and twice across the link (the sim on the robot host, the
   subscriber on the compute host: UDP), raw and with ``--image-transport
   compressed``. Lost = stamps the sim published that
   never arrived (the sim publishes every 0.1 s of sim time).
2. **Observation to command**: the demo's memory task, once on one host and
   twice split (raw, compressed) (``demo --host robot`` beside ``launch sim --host compute``); the
   safety node's own ``observation_to_command`` latency (from the joint state a
   chunk was computed on to the command it sends the arm) from ``/diagnostics``
   in each run's bag.

    sudo .venv/bin/python bench/bench_two_hosts.py --out out/bench/bench_two_hosts.json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from robot_memory.bringup.netns_hosts import NamespaceHosts, unavailable_reason
from robot_memory.bringup.ros_env import dds_environment, random_domain_id

CLI = [sys.executable, "-m", "robot_memory.cli"]
CONFIGURATIONS = [  # (name, split over the two namespaces, image transport)
    ("one host", False, "raw"),
    ("two hosts, raw", True, "raw"),
    ("two hosts, compressed", True, "compressed"),
]


def streams(transport: str) -> list[str]:
    color, depth = ("/compressed", "/compressedDepth") if transport == "compressed" else ("", "")
    return [
        topic
        for c in ("front", "wrist")
        for topic in (
            f"/camera/{c}/color/image_raw{color}",
            f"/camera/{c}/aligned_depth_to_color/image_raw{depth}",
        )
    ]


COUNTER = """
import json, sys, time, rclpy
from sensor_msgs.msg import CompressedImage, Image
from robot_memory.nodes.qos import SENSOR
rclpy.init(); node = rclpy.create_node("stream_counter")
seen = {t: set() for t in sys.argv[3:]}
kind = CompressedImage if sys.argv[2] == "compressed" else Image
for t in seen:
    node.create_subscription(kind, t, lambda m, t=t: seen[t].add(
        round(m.header.stamp.sec + m.header.stamp.nanosec * 1e-9, 3)), SENSOR)
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    rclpy.spin_once(node, timeout_sec=0.05)
print(json.dumps({t: sorted(s) for t, s in seen.items()}))
"""


def _env(network: bool, peers: list[str], domain: int) -> dict[str, str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "FASTDDS_DEFAULT_PROFILES_FILE")
    }
    return dds_environment(base, domain_id=domain, network=network, peers=peers)


def stream_loss(hosts: NamespaceHosts | None, seconds: float, transport: str) -> dict:
    """Sim node on the robot host, counter on the compute host (or both here)."""
    domain = random_domain_id()
    split = hosts is not None
    peers = (
        (lambda h: [hosts.addresses["compute" if h == "robot" else "robot"]])
        if split
        else (lambda h: [])
    )
    wrap = hosts.command if split else (lambda h, argv: argv)
    sim = subprocess.Popen(
        wrap(
            "robot",
            [
                *CLI,
                "launch",
                "sim",
                *(["--host", "robot"] if split else []),
                "--image-transport",
                transport,
                "sim.image_width:=640",
                "sim.image_height:=480",
                "sim.camera_rate:=10.0",
            ],
        ),
        env=_env(split, peers("robot"), domain),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        time.sleep(8.0)  # the sim up and publishing before the count starts
        before = hosts.link_bytes("compute")[0] if split else 0
        t0 = time.monotonic()
        out = subprocess.run(
            wrap(
                "compute",
                [sys.executable, "-c", COUNTER, str(seconds), transport, *streams(transport)],
            ),
            env=_env(split, peers("compute"), domain),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        wall = time.monotonic() - t0
        received = (hosts.link_bytes("compute")[0] - before) if split else 0
    finally:
        sim.send_signal(signal.SIGINT)
        sim.wait(timeout=30)
    seen = json.loads(out.strip().splitlines()[-1])
    per_stream = {}
    for topic, stamps in seen.items():
        inner = [s for s in stamps if stamps[0] + 0.5 <= s <= stamps[-1] - 0.5] if stamps else []
        expected = round((inner[-1] - inner[0]) / 0.1) + 1 if len(inner) > 1 else 0
        per_stream[topic] = {"received": len(inner), "expected": expected}
    got = sum(v["received"] for v in per_stream.values())
    want = sum(v["expected"] for v in per_stream.values())
    return {
        "streams": per_stream,
        "lost": want - got,
        "expected": want,
        "rate_hz_per_stream": got / len(per_stream) / max(wall - 1.0, 1e-9),
        "link_MB_per_s": received / 1e6 / wall if split else None,
    }


def demo_latency(hosts: NamespaceHosts | None, out: Path, transport: str) -> dict:
    """The demo's task; the safety node's observation_to_command from the bag."""
    domain = random_domain_id()
    compute = None
    if hosts is None:
        run = subprocess.run(
            [*CLI, "demo", "--output", str(out)],
            capture_output=True,
            text=True,
            env={**os.environ, "ROS_DOMAIN_ID": str(domain)},
        )
    else:
        ip = hosts.addresses
        compute = subprocess.Popen(
            hosts.command(
                "compute",
                [
                    *CLI,
                    "launch",
                    "sim",
                    "--host",
                    "compute",
                    "--peers",
                    ip["robot"],
                    "--image-transport",
                    transport,
                    "memory.reset_on_start:=true",
                    f"memory.store_path:={out / 'memory.sqlite'}",
                    f"planner.experience_path:={out / 'experience.json'}",
                    "planner.max_attempts:=3",
                    "policy.device:=cpu",
                ],
            ),
            env=_env(True, [ip["robot"]], domain),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        try:
            run = subprocess.run(
                hosts.command(
                    "robot",
                    [
                        *CLI,
                        "demo",
                        "--host",
                        "robot",
                        "--peers",
                        ip["compute"],
                        "--image-transport",
                        transport,
                        "--output",
                        str(out),
                    ],
                ),
                capture_output=True,
                text=True,
                env=_env(True, [ip["compute"]], domain),
            )
        finally:
            compute.send_signal(signal.SIGINT)
            compute.wait(timeout=30)
    (bag,) = out.glob("*/bag")
    p50, p99 = safety_latency(bag)
    return {"success": run.returncode == 0, "observation_to_command_ms_p50": p50, "p99": p99}


def safety_latency(bag: Path) -> tuple[float | None, float | None]:
    from rosbags.highlevel import AnyReader

    last: dict[str, float] = {}
    with AnyReader([bag]) as reader:
        conns = [c for c in reader.connections if c.topic == "/diagnostics"]
        for conn, _, raw in reader.messages(connections=conns):
            for status in reader.deserialize(raw, conn.msgtype).status:
                if "safety" not in status.name:
                    continue
                for kv in status.values:
                    if kv.key.startswith("observation_to_command.latency_ms_"):
                        last[kv.key.rsplit("_", 1)[1]] = float(kv.value)
    return last.get("p50"), last.get("p99")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--stream-s", type=float, default=20.0)
    p.add_argument("--skip-demo", action="store_true", help="the camera streams only")
    p.add_argument("--out", type=Path, default=Path("out/bench/bench_two_hosts.json"))
    args = p.parse_args()
    reason = unavailable_reason()
    if reason:
        print(f"bench_two_hosts: cannot make test hosts here: {reason}", file=sys.stderr)
        return 2
    os.environ.setdefault("MUJOCO_GL", "egl")
    report: dict = {}
    with NamespaceHosts.create() as hosts, tempfile.TemporaryDirectory() as tmp:
        for name, split, transport in CONFIGURATIONS:
            s = stream_loss(hosts if split else None, args.stream_s, transport)
            report[name] = {"streams": s}
            link = f", {s['link_MB_per_s']:.1f} MB/s over the link" if s["link_MB_per_s"] else ""
            print(
                f"{name}: 2 cameras x 640x480 x 10 Hz: {s['expected'] - s['lost']}/{s['expected']} "
                f"images ({s['lost']} lost), {s['rate_hz_per_stream']:.1f} Hz per stream{link}",
                flush=True,
            )
        if not args.skip_demo:
            for name, split, transport in CONFIGURATIONS:
                out = Path(tmp) / name.replace(" ", "_").replace(",", "")
                d = demo_latency(hosts if split else None, out, transport)
                report[name]["demo"] = d
                print(
                    f"{name}: demo {'succeeded' if d['success'] else 'FAILED'}; observation to "
                    f"command p50 {d['observation_to_command_ms_p50']} ms, p99 {d['p99']} ms",
                    flush=True,
                )
            one = report["one host"]["demo"]["observation_to_command_ms_p50"]
            for name, split, _ in CONFIGURATIONS:
                two = report[name]["demo"]["observation_to_command_ms_p50"]
                if split and one and two:
                    report[name]["latency_ratio_p50"] = two / one
                    print(
                        f"{name} / one host, observation to command p50: {two / one:.2f}x "
                        "(target <= 1.5x)"
                    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
