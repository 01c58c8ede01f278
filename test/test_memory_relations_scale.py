"""The spatial index changes how relations are found, never which: relations kept
incrementally through updates (moves, departures, merges, a rolled-back update)
equal a brute-force recomputation over every live object; and memory stays
bounded over a long stream with ghosts."""

from __future__ import annotations

import numpy as np
import pytest
from test_memory_core import frame, obs

from robot_memory.memory import MemoryConfig, SceneMemory
from robot_memory.memory.relations import ObjectArrays, relations_indexed, relations_of
from robot_memory.memory.spatial_index import ObjectIndex
from robot_memory.perception.observations import CameraView, ObservationFrame

COLOURS = ("red", "green", "blue", "white", "yellow", "orange")
DOWN = np.array([0.0, 1.0, 0.0, 0.0])


def brute_force(memory: SceneMemory) -> dict:
    """Every relation of every live object, each computed against all others."""
    live = memory.objects()  # absent ones excluded, as the relations do
    arr = ObjectArrays(live)
    out: dict = {}
    for i in range(len(live)):
        out.update(relations_of(arr, i, memory.cell, memory.config))
    return out


def kept(memory: SceneMemory) -> dict:
    return {k: v.confidence for k, v in memory.relations().items()}


def assert_same(memory: SceneMemory) -> None:
    expected, actual = brute_force(memory), kept(memory)
    assert actual.keys() == expected.keys(), (
        sorted(map(str, actual.keys() - expected.keys()))[:5],
        sorted(map(str, expected.keys() - actual.keys()))[:5],
    )
    for key, conf in expected.items():
        assert actual[key] == pytest.approx(conf, abs=1e-12), key


def random_scene(rng: np.random.Generator, n: int) -> list:
    """Small things, boxes that contain some of them, stacks, things in the bin."""
    scene = []
    for i in range(n):
        size = rng.uniform(0.02, 0.06, 3)
        label = f"{COLOURS[i % len(COLOURS)]} thing{i}"
        xy = rng.uniform([-0.55, -0.45], [0.55, 0.45])
        z = size[2] / 2
        kind = rng.random()
        if kind < 0.1:  # a container (last word "box"), big
            size = rng.uniform(0.09, 0.14, 3)
            label, z = f"{COLOURS[i % len(COLOURS)]} box{i}", size[2] / 2
        elif kind < 0.25 and scene:  # on top of an earlier one
            lo, hi = scene[rng.integers(len(scene))][1:]
            xy = (lo[:2] + hi[:2]) / 2 + rng.normal(0, 0.005, 2)
            z = hi[2] + size[2] / 2
        elif kind < 0.3:  # in the bin
            xy = rng.uniform([0.08, 0.28], [0.22, 0.42])
            z = 0.012 + size[2] / 2
        center = np.array([*xy, z])
        scene.append((label, center - size / 2, center + size / 2))
    return scene


def observe(items: list, idx) -> list:
    return [
        obs(items[i][0], (items[i][1] + items[i][2]) / 2, items[i][2] - items[i][1]) for i in idx
    ]


def test_indexed_relations_equal_brute_force_through_updates(monkeypatch):
    rng = np.random.default_rng(7)
    memory = SceneMemory(MemoryConfig(ghost_min_observations=0))
    items = random_scene(rng, 200)
    memory.update(frame(0.0, observe(items, range(len(items)))))
    assert len(memory.objects()) > 150
    assert_same(memory)
    edges = len(memory.relations())
    assert edges > 300 and {k[1] for k in memory.relations()} == {"in", "on", "near"}

    for k in range(1, 13):
        stamp = 0.5 * k
        for i in rng.choice(len(items), 4, replace=False):  # a few things move
            label, lo, hi = items[i]
            shift = np.array([*rng.uniform(-0.08, 0.08, 2), 0.0])
            items[i] = (label, lo + shift, hi + shift)
        if k % 4 == 0:  # a few leave: their place is seen empty from now on
            for i in rng.choice(len(items), 3, replace=False):
                items[i] = (items[i][0], items[i][1] + [0, 0, 5], items[i][2] + [0, 0, 5])
        seen = rng.choice(len(items), 40, replace=False)
        scene = [(lo, hi) for _, lo, hi in items]
        memory.update(frame(stamp, observe(items, seen), scene=scene))
        assert_same(memory)
    assert memory.stats["absent"] > 0

    # an update that fails at its commit is rolled back: relations and index agree
    before = kept(memory)

    def fail(stamp):
        raise RuntimeError("disk full")

    monkeypatch.setattr(memory, "_maybe_commit", fail)
    moved = [(items[0][0], items[0][1] + [0.1, 0, 0], items[0][2] + [0.1, 0, 0])]
    with pytest.raises(RuntimeError, match="disk full"):
        memory.update(frame(7.0, observe(moved, [0])))
    assert kept(memory) == before
    monkeypatch.undo()
    memory.update(frame(7.5, observe(items, rng.choice(len(items), 40, replace=False))))
    assert_same(memory)
    memory.close()


def test_duplicates_found_through_the_index_merge_as_before():
    memory = SceneMemory()
    a, b = obs("red cube", (0.0, 0.0, 0.025)), obs("red cube", (0.004, 0.0, 0.025))
    far = obs("red cube", (0.3, 0.0, 0.025))
    result = memory.update(frame(0.0, [a, b, far]))
    assert len(result.created) == 3
    kept_ids = sorted(o.id for o in memory.objects())
    assert kept_ids == [result.created[0], result.created[2]]
    assert memory.get(result.created[1]).merged_into == result.created[0]
    assert_same(memory)


def test_index_relations_of_every_object_equal_brute_force_off_centre_centroids():
    """Centroids need not be box centres (points are not uniform): the candidate
    radius must still cover every relation."""
    rng = np.random.default_rng(3)
    memory = SceneMemory()
    items = random_scene(rng, 200)
    observations = observe(items, range(len(items)))
    for o in observations:  # pull the centroid towards a corner, inside the box
        o.centroid = o.bbox_min + (o.bbox_max - o.bbox_min) * rng.uniform(0.05, 0.95, 3)
    memory.update(frame(0.0, observations))
    assert_same(memory)
    index = ObjectIndex(0.01)  # a tiny cell: queries span many cells
    index.rebuild(memory._objects)
    ids = sorted(index.slot_of)
    assert relations_indexed(index, ids, memory.cell, memory.config) == pytest.approx(
        brute_force(memory)
    )


def test_memory_stays_bounded_over_a_long_stream_with_ghosts():
    """2,000 frames (200 s at 10 Hz): 6 objects, one moving every 5 s, a one-off
    ghost every 2 s, 30 % of sightings missed. The camera sees the table, so
    ghosts and vacated places are seen empty."""
    rng = np.random.default_rng(11)
    cfg = MemoryConfig(max_points_per_object=200)
    memory = SceneMemory(cfg)
    labels = [f"{c} cube" for c in COLOURS]
    centers = np.column_stack(
        [np.linspace(-0.4, 0.4, 6), rng.uniform(-0.3, 0.3, 6), np.full(6, 0.025)]
    )
    h, w, f = 40, 60, 30.0
    K = np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1.0]])
    peak_objects = 0
    for k in range(2000):
        stamp = k / 10
        if k % 50 == 0 and k:
            centers[rng.integers(6), :2] = rng.uniform([-0.45, -0.35], [0.45, 0.35])
        seen = [i for i in range(6) if rng.random() < 0.7]
        sightings = [obs(labels[i], centers[i], stamp=stamp) for i in seen]
        boxes = [centers[i] for i in range(6)]
        if k % 20 == 7:
            ghost = np.array([*rng.uniform([-0.45, -0.35], [0.45, 0.35]), 0.025])
            sightings.append(obs("pink blob", ghost, stamp=stamp))
            boxes.append(ghost)
        depth = np.full((h, w), 1.0, dtype=np.float32)  # the table, 1 m below
        view = CameraView("top", stamp, K, np.array([0.0, 0.0, 1.0]), DOWN, depth)
        u, v, z = view.project(np.array(boxes) + [0, 0, 0.025])
        for r, c, d in zip(np.round(v).astype(int), np.round(u).astype(int), z, strict=True):
            if 0 <= r < h and 0 <= c < w:
                depth[max(r - 1, 0) : r + 2, max(c - 1, 0) : c + 2] = d
        memory.update(ObservationFrame(view, sightings))
        peak_objects = max(peak_objects, memory.stats["objects"])
    stats = memory.stats
    assert stats["updates"] == 2000
    assert peak_objects <= 6 + 16  # ghosts live at most ghost_max_age (30 s) + a sweep
    assert stats["objects"] <= 6 + 16
    assert stats["points_total"] <= stats["objects"] * cfg.max_points_per_object
    assert stats["relations"] <= stats["objects"] * (cfg.near_max_neighbours + 3)
    for o in memory.objects(include_absent=True):
        assert len(o.pose_history) <= cfg.history_length
        assert len(o.visibility) <= cfg.history_length
    assert {o.label for o in memory.objects(include_absent=True)} >= set(labels)
    assert_same(memory)
    memory.close()
