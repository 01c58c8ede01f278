"""``robot-memory demo``: the sim stack with the scripted expert doing a
pick-and-place, recorded to a bag, with a picture of both camera views.

It launches the ``sim`` stack from the launch spec (its own ROS_DOMAIN_ID so it
never talks to other runs), starts the recorder, sends the task once every
sensor is up, shows progress and reports the outcome checked against ground
truth.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
import rclpy
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String
from tqdm import tqdm

from robot_memory.launch_spec import stack
from robot_memory.launcher import Launcher, NodeDiedError
from robot_memory.nodes.conversions import image_to_numpy
from robot_memory.nodes.qos import COMMAND, LATCHED, SENSOR
from robot_memory.ros_env import apply_to_current_process, random_domain_id
from robot_memory.schemas import (
    ExpertStatus,
    ExpertTask,
    PayloadError,
    SceneGraphMsg,
    dump_payload,
    parse_payload,
)

CAMERAS = ("front", "wrist")
RECORDED_TOPICS = [
    "/clock",
    "/joint_states",
    "/sim/ground_truth",
    "/arm_controller/joint_trajectory",
    "/gripper_controller/commands",
    "/expert/status",
    "/diagnostics",
    *(
        f"/camera/{cam}/{suffix}"
        for cam in CAMERAS
        for suffix in (
            "color/image_raw",
            "color/camera_info",
            "aligned_depth_to_color/image_raw",
            "pose",
        )
    ),
]


@dataclass
class DemoOptions:
    output: Path
    object_id: str = "red_cube"
    place_id: str = "bin"
    seed: int = 0
    timeout_s: float = 180.0
    real_time_factor: float = 1.0
    image_width: int = 640
    image_height: int = 480


class DemoMonitor(Node):
    def __init__(self) -> None:
        super().__init__("demo_monitor")
        self.images: dict[str, np.ndarray] = {}
        self.depths: dict[str, np.ndarray] = {}
        self.status: ExpertStatus | None = None
        self.have_joints = False
        for cam in CAMERAS:
            self.create_subscription(
                Image, f"/camera/{cam}/color/image_raw", self._store(self.images, cam), SENSOR
            )
            self.create_subscription(
                Image,
                f"/camera/{cam}/aligned_depth_to_color/image_raw",
                self._store(self.depths, cam),
                SENSOR,
            )
        self.graph: SceneGraphMsg | None = None
        self.create_subscription(String, "/expert/status", self.on_status, LATCHED)
        self.create_subscription(String, "/memory/scene_graph", self.on_graph, LATCHED)
        self.create_subscription(JointState, "/joint_states", self.on_joints, COMMAND)
        self.task_pub = self.create_publisher(String, "/expert/task", COMMAND)

    def _store(self, table: dict[str, np.ndarray], cam: str):
        def callback(msg: Image) -> None:
            table[cam] = image_to_numpy(msg)

        return callback

    def on_status(self, msg: String) -> None:
        try:
            self.status = parse_payload(ExpertStatus, msg.data)
        except PayloadError as err:
            self.get_logger().warn(f"bad expert status: {err}")

    def on_graph(self, msg: String) -> None:
        try:
            self.graph = parse_payload(SceneGraphMsg, msg.data)
        except PayloadError as err:
            self.get_logger().warn(f"bad scene graph: {err}")

    def on_joints(self, _msg: JointState) -> None:
        self.have_joints = True

    def ready(self) -> bool:
        return (
            self.have_joints
            and self.status is not None
            and all(cam in self.images for cam in CAMERAS)
        )


def camera_sheet(images: dict[str, np.ndarray], depths: dict[str, np.ndarray]) -> np.ndarray:
    """RGB views on top, colourised depth below, labelled (BGR for cv2)."""
    columns = []
    for cam in CAMERAS:
        rgb = cv2.cvtColor(images[cam], cv2.COLOR_RGB2BGR)
        depth = depths.get(cam)
        if depth is None:
            depth_vis = np.zeros_like(rgb)
        else:
            d = depth.astype(np.float32) * (1e-3 if depth.dtype == np.uint16 else 1.0)
            valid = np.isfinite(d) & (d > 0)
            near, far = np.percentile(d[valid], [2, 98]) if valid.any() else (0.0, 1.0)
            norm = np.clip((d - near) / max(far - near, 1e-6), 0, 1)
            depth_vis = cv2.applyColorMap((255 * (1 - norm)).astype(np.uint8), cv2.COLORMAP_TURBO)
            depth_vis[~valid] = 0
        for img, text in ((rgb, f"{cam} color"), (depth_vis, f"{cam} depth")):
            cv2.putText(img, text, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2)
        columns.append(np.vstack([rgb, depth_vis]))
    return np.hstack(columns)


def run_demo(opts: DemoOptions) -> int:
    run_dir = opts.output / datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=False)
    env = apply_to_current_process(domain_id=random_domain_id())
    print(f"[demo] output folder: {run_dir}")
    print(
        f"[demo] ROS_DOMAIN_ID={env['ROS_DOMAIN_ID']}; moving {opts.object_id} -> {opts.place_id}"
    )
    specs = stack(
        "sim",
        {
            "sim": {
                "seed": opts.seed,
                "real_time_factor": opts.real_time_factor,
                "image_width": opts.image_width,
                "image_height": opts.image_height,
            },
            "expert": {"object_id": "", "place_id": opts.place_id},
        },
    )
    log = open(run_dir / "nodes.log", "w")  # noqa: SIM115 - lives as long as the stack
    recorder: subprocess.Popen | None = None
    rclpy.init()
    monitor = DemoMonitor()
    t_start = time.monotonic()
    result = 1
    try:
        with Launcher(specs, env=env, output=log) as launched:
            recorder = subprocess.Popen(
                [sys.executable, "-m", "robot_memory.nodes.recorder_node"]
                + ["-o", str(run_dir / "bag"), "--no-progress", *RECORDED_TOPICS],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            result = _drive(monitor, launched, opts, t_start)
            _save_views(monitor, run_dir)
            _print_memory(monitor.graph)
    except (NodeDiedError, TimeoutError) as exc:
        print(f"[demo] ERROR: {exc}", file=sys.stderr)
        result = 1
    finally:
        if recorder is not None:
            recorder.send_signal(signal.SIGINT)
            try:
                recorder.wait(timeout=15)
            except subprocess.TimeoutExpired:
                recorder.kill()
        monitor.destroy_node()
        rclpy.try_shutdown()
        log.close()
    print(f"[demo] bag: {run_dir / 'bag'}")
    print(f"[demo] camera views: {run_dir / 'camera_views.png'}")
    print(f"[demo] node logs: {run_dir / 'nodes.log'}")
    print(f"[demo] {'SUCCESS' if result == 0 else 'FAILED'} in {time.monotonic() - t_start:.1f} s")
    return result


def _drive(monitor: DemoMonitor, launched: Launcher, opts: DemoOptions, t_start: float) -> int:
    deadline = t_start + opts.timeout_s
    print("[demo] waiting for the simulator, cameras and expert ...")
    while not monitor.ready():
        _spin(monitor, launched, deadline, "waiting for sensors")
    time.sleep(1.0)  # let the recorder discover every topic before the task starts
    task = ExpertTask(object_id=opts.object_id, place_id=opts.place_id)
    monitor.task_pub.publish(String(data=dump_payload(task)))
    bar = tqdm(total=100, desc="pick-and-place", unit="%", file=sys.stdout)
    sent_at = time.monotonic()
    shown_phase = ""
    while True:
        _spin(monitor, launched, deadline, "pick-and-place")
        status = monitor.status
        if status is None or status.object_id != opts.object_id:
            if time.monotonic() - sent_at > 5.0:  # task lost in discovery: send again
                monitor.task_pub.publish(String(data=dump_payload(task)))
                sent_at = time.monotonic()
            continue
        if (round(100 * status.progress), status.phase) != (bar.n, shown_phase):
            bar.n, shown_phase = round(100 * status.progress), status.phase
            bar.set_postfix_str(status.phase)  # refreshes the bar
        if status.state in ("succeeded", "failed"):
            bar.close()
            verdict = "succeeded" if status.state == "succeeded" else f"failed: {status.reason}"
            print(f"[demo] {opts.object_id} -> {opts.place_id} {verdict}")
            return 0 if status.state == "succeeded" else 1


def _spin(monitor: DemoMonitor, launched: Launcher, deadline: float, what: str) -> None:
    rclpy.spin_once(monitor, timeout_sec=0.05)
    launched.check()
    if time.monotonic() > deadline:
        raise TimeoutError(f"demo timed out while {what}")


def _print_memory(graph: SceneGraphMsg | None) -> None:
    """What the memory node remembers at the end, one line an object."""
    if graph is None:
        print("[demo] memory: no scene graph received")
        return
    relations: dict[int | str, list[str]] = {}
    for edge in graph.relations:
        if edge.relation != "near":
            relations.setdefault(edge.subject, []).append(f"{edge.relation} {edge.target}")
    print(f"[demo] memory (scene graph #{graph.seq}): {len(graph.objects)} objects")
    for obj in graph.objects:
        where = ", ".join(relations.get(obj.id, [])) or "-"
        print(f"[demo]   #{obj.id} {obj.label:15s} {obj.status:10s} {where}")


def _save_views(monitor: DemoMonitor, run_dir: Path) -> None:
    t_end = time.monotonic() + 1.0
    while time.monotonic() < t_end:  # a fresh frame after the last motion
        rclpy.spin_once(monitor, timeout_sec=0.05)
    if all(cam in monitor.images for cam in CAMERAS):
        cv2.imwrite(str(run_dir / "camera_views.png"), camera_sheet(monitor.images, monitor.depths))


if __name__ == "__main__":
    os.environ.setdefault("MUJOCO_GL", "egl")
    sys.exit(run_demo(DemoOptions(output=Path("out/demo"))))
