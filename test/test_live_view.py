"""The live view in a browser: the viewer node (real rclpy, real DDS) fed the
stack's topics from this process, Rerun's web viewer served from localhost,
and Debian's chromium, headless, driven by Playwright: the page loads, the
viewer app starts, and the recording the page itself holds (the viewer's own
``save_recording``, decoded with the ``rerun`` CLI) has the camera, the arm,
memory's boxes with their labels and status, the relations and the plan. The
screenshot is kept in the test's folder (its path is printed).

Skipped, with the reason, where chromium is not installed (``.ci/run``
installs it: ``apt-get install chromium``)."""

from __future__ import annotations

import base64
import io
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("rerun", reason="the [viewer] extra (rerun-sdk) is not installed")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

from geometry_msgs.msg import TransformStamped  # noqa: E402
from robot_memory_interfaces.msg import Plan as PlanMsg  # noqa: E402
from robot_memory_interfaces.msg import PlannerStatus, PolicyStatus, SceneGraph  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, JointState  # noqa: E402
from tf2_msgs.msg import TFMessage  # noqa: E402

from robot_memory.bringup.launch_spec import viewer_node  # noqa: E402
from robot_memory.bringup.launcher import Launcher  # noqa: E402
from robot_memory.nodes import conversions as conv  # noqa: E402
from robot_memory.nodes.memory_conversions import scene_graph_to_msg  # noqa: E402
from robot_memory.nodes.planner_conversions import plan_to_msg, planner_status_to_msg  # noqa: E402
from robot_memory.nodes.qos import COMMAND, LATCHED, SENSOR, STATUS, TF, TF_STATIC  # noqa: E402
from robot_memory.nodes.skill_conversions import policy_status_to_msg  # noqa: E402
from robot_memory.planner.plan import Plan, PlannerStatusMsg, PlanStep  # noqa: E402
from robot_memory.schemas import (  # noqa: E402
    MemoryObjectMsg,
    PlaceMsg,
    PolicyStatusMsg,
    RelationMsg,
    SceneGraphMsg,
)
from ros_helpers import Probe, spin_for  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# as the machine's notes say: no background networking (the closed network refuses it)
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader", "--use-angle=swiftshader",
    "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip
# The page's own recording, as base64 ("" until the viewer has one).
SAVE_RECORDING_JS = """() => {
  if (!window._handle) return "";
  let bytes;
  try { bytes = window._handle.save_recording(); } catch (e) { return ""; }
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000)
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(s);
}"""
EXPECTED = [  # what the page must hold: entity paths and the labels of memory's boxes
    "/cameras/front",
    "/world/cameras/front",
    "/world/robot",
    "/world/memory/objects",
    "/world/memory/relations",
    "/status",
    "#1 red cube (visible)",
    "#2 mug (remembered)",
    "put the mug in the bin",  # the plan, in the status panel
    "**->** 1. pick #2",  # its current step, marked
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graph(stamp: float) -> SceneGraphMsg:
    def obj(i: int, label: str, status: str, x: float) -> MemoryObjectMsg:
        c = [x, 0.1, 0.03]
        return MemoryObjectMsg(id=i, label=label, color="red", shape="box", centroid=c,
                               bbox_min=[x - 0.02, 0.08, 0.0], bbox_max=[x + 0.02, 0.12, 0.06],
                               confidence=0.9, observations=3, first_seen=0.0, last_seen=stamp,
                               status=status)  # fmt: skip

    bin_place = PlaceMsg(id="bin", kind="container", label="bin",
                         bbox_min=[0.3, -0.3, 0.0], bbox_max=[0.5, -0.1, 0.1])  # fmt: skip
    inside = RelationMsg(subject=2, relation="in", target="bin", confidence=0.9,
                         first_confirmed=0.0, last_confirmed=stamp)  # fmt: skip
    return SceneGraphMsg(seq=int(stamp * 10), stamp=stamp,
                         objects=[obj(1, "red cube", "visible", 0.0),
                                  obj(2, "mug", "remembered", 0.4)],
                         places=[bin_place], relations=[inside])  # fmt: skip


def _transform(parent: str, child: str, t: float, xyz) -> TransformStamped:
    msg = TransformStamped(header=conv.header(t, parent), child_frame_id=child)
    msg.transform.translation.x, msg.transform.translation.y, msg.transform.translation.z = xyz
    msg.transform.rotation.w = 1.0
    return msg


class StackTopics:
    """The topics a running stack publishes, from a probe node."""

    def __init__(self, probe: Probe) -> None:
        self.probe, self.t = probe, 1.0
        pub = probe.create_publisher
        self.image = pub(Image, "/camera/front/color/image_raw", SENSOR)
        self.info = pub(CameraInfo, "/camera/front/color/camera_info", SENSOR)
        self.tf = pub(TFMessage, "/tf", TF)
        self.tf_static = pub(TFMessage, "/tf_static", TF_STATIC)
        self.joints = pub(JointState, "/joint_states", COMMAND)
        self.graph = pub(SceneGraph, "/memory/scene_graph", LATCHED)
        self.policy = pub(PolicyStatus, "/policy/status", STATUS)
        self.plan = pub(PlanMsg, "/planner/plan", STATUS)
        self.planner = pub(PlannerStatus, "/planner/status", STATUS)
        camera = _transform("world", "front_color_optical_frame", 0.0, (0.0, -0.6, 0.5))
        self.tf_static.publish(TFMessage(transforms=[camera]))

    def publish(self) -> None:
        self.t += 0.25
        t = self.t
        links = [f"panda_link{i}" for i in range(8)] + ["panda_hand"]
        chain = [_transform("world", link, t, (-0.4, 0.0, 0.1 * i)) for i, link in enumerate(links)]
        self.tf.publish(TFMessage(transforms=chain))
        self.joints.publish(conv.joint_state(["panda_joint1"], [0.0], [0.0], [0.0], t))
        rgb = np.zeros((60, 80, 3), np.uint8)
        rgb[20:40, 30:50] = (230, 30, 30)  # a red cube in view
        self.info.publish(conv.camera_info(np.array([[80, 0, 40], [0, 80, 30], [0, 0, 1.0]]),
                                           80, 60, t, "front_color_optical_frame"))  # fmt: skip
        self.image.publish(conv.rgb_image(rgb, t, "front_color_optical_frame"))
        self.graph.publish(scene_graph_to_msg(_graph(t), "world"))
        status = PolicyStatusMsg(goal_id="g1", state="running", skill="pick", object_id=1,
                                 target="bin", chunks=int(t * 4), stamp=t)  # fmt: skip
        self.policy.publish(policy_status_to_msg(status))
        steps = [PlanStep(skill="pick", object_id=2), PlanStep(skill="place", target="bin")]
        plan = Plan(id="p1", instruction="put the mug in the bin", backend="offline", steps=steps)
        self.plan.publish(plan_to_msg(plan))
        self.planner.publish(
            planner_status_to_msg(
                PlannerStatusMsg(
                    plan_id="p1", state="executing", step=0, n_steps=2, skill="pick", stamp=t
                )
            )
        )
        spin_for(self.probe, 0.05)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                    "(apt-get install chromium; .ci/run installs it)")  # fmt: skip
def test_live_view_in_headless_chromium(tmp_path: Path) -> None:
    # the rerun CLI and viewer keep their settings here: analytics off, nothing sent
    config = tmp_path / "config"
    (config / "rerun").mkdir(parents=True)
    (config / "rerun" / "analytics.json").write_text('{"analytics_enabled": false}')
    env = {**os.environ, "XDG_CONFIG_HOME": str(config)}
    web, grpc = _free_port(), _free_port()
    log = io.StringIO()
    rclpy.init()
    probe = Probe("viewer_probe")
    topics = StackTopics(probe)
    spec = viewer_node(web_port=web, grpc_port=grpc, cameras=["front"], image_rate_hz=10.0)
    launcher = Launcher([spec], output=log, env=env)
    launcher.start()
    text, shot = "", tmp_path / "live_view.png"
    try:
        with playwright.sync_playwright() as pw:
            # playwright gives it a new, empty profile folder of its own
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
            )
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            for _ in range(600):  # until the viewer serves its page
                launcher.check()
                topics.publish()
                try:
                    page.goto(
                        f"http://127.0.0.1:{web}/?url=rerun%2Bhttp%3A%2F%2F127.0.0.1%3A{grpc}%2Fproxy"
                    )
                    break
                except playwright.Error:
                    spin_for(probe, 0.2)
            page.wait_for_function("() => window._handle !== undefined", timeout=180_000)
            for _ in range(200):  # the stack keeps publishing; the page catches up
                launcher.check()
                topics.publish()
                data = page.evaluate(SAVE_RECORDING_JS)
                if data:
                    text = _print_recording(base64.b64decode(data), tmp_path, env)
                    if all(e in text for e in EXPECTED):
                        break
                page.wait_for_timeout(500)
            page.screenshot(path=str(shot))
            browser.close()
    finally:
        launcher.shutdown()
        probe.destroy_node()
        rclpy.try_shutdown()
    print(f"screenshot of the live view: {shot}")
    assert "viewer ready: open http://" in log.getvalue()
    missing = [e for e in EXPECTED if e not in text]
    assert not missing, (
        f"the page's recording lacks {missing}; viewer log:\n{log.getvalue()[-2000:]}"
    )
    assert shot.stat().st_size > 10_000


def _print_recording(rrd: bytes, folder: Path, env: dict[str, str]) -> str:
    path = folder / "page.rrd"
    path.write_bytes(rrd)
    rerun_cli = Path(sys.executable).parent / "rerun"  # the rerun-sdk wheel's CLI, in the venv
    out = subprocess.run([str(rerun_cli), "rrd", "print", "-vvv", str(path)],
                         capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    return out.stdout
