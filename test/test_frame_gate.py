"""The perception frame gate: a frame stride per camera, staggered (ROS-free)."""

from __future__ import annotations

import numpy as np
import pytest

from robot_memory.perception.frame_gate import FrameGate


def feed(gate: FrameGate, stamps, cameras=("front", "wrist")) -> list[tuple[str, float]]:
    return [(cam, t) for t in stamps for cam in cameras if gate.admit(cam, t)]


def test_30hz_cameras_at_10hz_keep_every_third_frame_staggered():
    gate = FrameGate(["front", "wrist"], 10.0)
    stamps = 1_700_000_000.0 + np.arange(90) / 30.0  # 3 s of two synchronised 30 Hz cameras
    admitted = feed(gate, stamps)
    front = np.array([t for cam, t in admitted if cam == "front"])
    wrist = np.array([t for cam, t in admitted if cam == "wrist"])
    assert len(front) == len(wrist) == 30
    assert np.allclose(np.diff(front), 0.1, atol=1e-6)
    assert np.allclose(np.diff(wrist), 0.1, atol=1e-6)
    # never the same instant: the worker gets one frame, then the other a frame later
    assert np.allclose(wrist - front, 1 / 30, atol=1e-6)
    assert gate.admitted == 60 and gate.skipped == 120


def test_rate_zero_admits_every_frame():
    gate = FrameGate(["front"], 0.0)
    assert all(gate.admit("front", t) for t in np.arange(50) / 30.0)


def test_jittered_stamps_keep_the_rate():
    rng = np.random.default_rng(3)
    stamps = np.arange(300) / 30.0 + rng.normal(0.0, 0.002, 300)  # 2 ms of jitter
    gate = FrameGate(["front"], 10.0)
    admitted = [i for i, t in enumerate(stamps) if gate.admit("front", t)]
    assert np.all(np.diff(admitted) == 3)  # every third frame, never two in a row


def test_missing_frames_do_not_break_the_phase():
    gate = FrameGate(["front"], 10.0)
    stamps = [i / 30.0 for i in range(60) if not 10 <= i < 25]  # 0.5 s without frames
    admitted = [t for _, t in feed(gate, stamps, ("front",))]
    assert admitted[:4] == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert admitted[4] == pytest.approx(25 / 30.0)  # the first frame back
    assert np.allclose(np.diff(admitted[5:]), 0.1, atol=1e-6)


def test_time_going_back_restarts_the_schedule():
    gate = FrameGate(["front", "wrist"], 10.0)
    feed(gate, 50.0 + np.arange(30) / 30.0)
    again = feed(gate, np.arange(30) / 30.0)  # a bag looping to its start
    front = [t for cam, t in again if cam == "front"]
    assert len(front) == 10 and front[0] == 0.0


@pytest.mark.parametrize("rate", [-1.0, float("nan"), float("inf")])
def test_bad_rate_is_refused(rate):
    with pytest.raises(ValueError, match="rate_hz"):
        FrameGate(["front"], rate)
