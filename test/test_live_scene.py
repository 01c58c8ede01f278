"""The live view's core without ROS or a browser: what the status panel says,
and what one scene graph puts in a Rerun recording (read back with the
``rerun`` CLI of the wheel)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

rr = pytest.importorskip("rerun", reason="the [viewer] extra (rerun-sdk) is not installed")

from robot_memory.planner.plan import Plan, PlannerStatusMsg, PlanStep  # noqa: E402
from robot_memory.schemas import (  # noqa: E402
    MemoryObjectMsg,
    PlaceMsg,
    PolicyStatusMsg,
    RelationMsg,
    SceneGraphMsg,
)
from robot_memory.viewer.live_scene import LiveScene, StatusText, viewer_url  # noqa: E402


def test_status_text_marks_the_current_step_and_says_why():
    status = StatusText()
    assert "waiting" in status.markdown()
    steps = [PlanStep(skill="pick", object_id=3),
             PlanStep(skill="place", target="bin", why="it goes there")]  # fmt: skip
    status.plan = Plan(id="p", instruction="tidy up", backend="offline", steps=steps)
    status.planner = PlannerStatusMsg(state="failed", step=1, n_steps=2, reason="ik miss")
    status.policy = PolicyStatusMsg(state="failed", skill="place", target="bin", chunks=4)
    text = status.markdown()
    assert "### tidy up" in text
    assert "- 1. pick #3" in text and "**->** 2. place -> bin: it goes there" in text
    assert "failed (ik miss), step 2/2" in text and "place -> bin: failed, 4 chunks" in text


def test_viewer_url_points_the_page_at_the_stream():
    url = viewer_url(9090, "rerun+http://127.0.0.1:9876/proxy", host="robot-pc")
    assert url == "http://robot-pc:9090/?url=rerun%2Bhttp%3A%2F%2Frobot-pc%3A9876%2Fproxy"


def test_a_scene_graph_becomes_labelled_boxes_and_relations(tmp_path: Path):
    rec = rr.RecordingStream("test")
    rec.save(str(tmp_path / "scene.rrd"))
    scene = LiveScene(rec)
    cube = MemoryObjectMsg(id=4, label="blue can", color="blue", shape="cylinder",
                           centroid=[0, 0, 0.05], bbox_min=[-0.03, -0.03, 0.0],
                           bbox_max=[0.03, 0.03, 0.1], confidence=0.8, observations=2,
                           first_seen=0.0, last_seen=1.0, status="absent")  # fmt: skip
    box = PlaceMsg(id="box", kind="container", label="white box",
                   bbox_min=[0.2, 0.0, 0.0], bbox_max=[0.3, 0.1, 0.1])  # fmt: skip
    near = RelationMsg(subject=4, relation="near", target="box", confidence=1.0,
                       first_confirmed=0.0, last_confirmed=1.0)  # fmt: skip
    on = near.model_copy(update={"relation": "on"})
    graph = SceneGraphMsg(seq=1, stamp=1.0, objects=[cube], places=[box], relations=[near, on])
    scene.scene_graph(graph)
    scene.robot(1.0, [np.zeros(3), np.ones(3)])
    scene.camera_image("front", 1.0, rgb=np.zeros((4, 6, 3), np.uint8))
    rec.flush()
    rec.disconnect()
    printed = subprocess.run(
        [str(Path(sys.executable).parent / "rerun"), "rrd", "print", "-vvv",
         str(tmp_path / "scene.rrd")],
        capture_output=True, text=True, timeout=120,
        env={"XDG_CONFIG_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    ).stdout  # fmt: skip
    assert "#4 blue can (absent)" in printed and "white box" in printed
    assert "/world/memory/relations" in printed and "/world/robot" in printed
    assert "/cameras/front" in printed


def test_the_browser_gets_frames_at_its_own_rate():
    scene = LiveScene(rr.RecordingStream("rates"), image_rate_hz=5.0, robot_rate_hz=10.0)
    sent = [t for t in np.arange(0.0, 1.0, 1 / 30) if scene.wants_image("front", t)]
    assert len(sent) == 5 and scene.wants_image("wrist", 0.0)  # per camera
    assert scene.wants_image("front", 0.0)  # a replay that starts again is shown
    assert [scene.wants_robot(t) for t in (0.0, 0.05, 0.1)] == [True, False, True]
