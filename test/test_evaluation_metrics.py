"""Scoring memory against ground truth: matching, snapshot metrics, visibility, report."""

from __future__ import annotations

import json
import os

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np
import pytest

from robot_memory.evaluation import (
    aggregate,
    match_objects,
    score_last_seen,
    score_snapshot,
    visible_objects,
    write_report,
)
from robot_memory.evaluation.metrics import is_covered
from robot_memory.evaluation.visibility import visible_fraction
from robot_memory.perception.observations import CameraView
from robot_memory.schemas import (
    GroundTruth,
    GroundTruthObject,
    MemoryAnswer,
    MemoryObjectMsg,
    PlaceMsg,
    RelationMsg,
    SceneGraphMsg,
)

CUBE = (0.05, 0.05, 0.05)


def gt(oid, pos, label=None, support="table", kind="object", size=CUBE, grasped=False):
    label = label or oid.replace("_", " ")
    return GroundTruthObject(
        id=oid, kind=kind, shape=label.split()[-1], color=label.split()[0], label=label,
        position=pos, quaternion=(1.0, 0.0, 0.0, 0.0), size=size, support=support,
        grasped=grasped,
    )  # fmt: skip


def truth(objects, stamp=1.0) -> GroundTruth:
    return GroundTruth(stamp=stamp, episode=0, seed=0, scene="tabletop", objects=objects)


def mem(mid, label, pos, status="visible", container=False, half=0.025) -> MemoryObjectMsg:
    c = np.asarray(pos)
    return MemoryObjectMsg(
        id=mid, label=label, color=label.split()[0], shape=label.split()[-1],
        centroid=tuple(c), bbox_min=tuple(c - half), bbox_max=tuple(c + half), confidence=0.9,
        observations=5, first_seen=0.0, last_seen=1.0, status=status, container=container,
    )  # fmt: skip


PLACES = [
    PlaceMsg(id="bin", kind="container", label="bin", bbox_min=(0.05, 0.25, 0.0),
             bbox_max=(0.25, 0.45, 0.08)),
    PlaceMsg(id="table_left", kind="table_region", label="left", bbox_min=(-0.6, 0.15, -0.04),
             bbox_max=(0.6, 0.5, 0.0)),
    PlaceMsg(id="table_centre", kind="table_region", label="middle",
             bbox_min=(-0.6, -0.15, -0.04), bbox_max=(0.6, 0.15, 0.0)),
    PlaceMsg(id="table_right", kind="table_region", label="right", bbox_min=(-0.6, -0.5, -0.04),
             bbox_max=(0.6, -0.15, 0.0)),
]  # fmt: skip


def graph(objects, relations=(), stamp=1.0) -> SceneGraphMsg:
    rels = [
        RelationMsg(subject=s, relation=r, target=t, confidence=1.0, first_confirmed=0.0,
                    last_confirmed=stamp)
        for s, r, t in relations
    ]  # fmt: skip
    return SceneGraphMsg(seq=1, stamp=stamp, objects=objects, places=PLACES, relations=rels)


def scene() -> GroundTruth:
    """Cube on the table with a cylinder on it, a sphere in the bin, a block under the
    cover, a prism on the right of the table; the bin, cover and table places."""
    return truth(
        [
            gt("red_cube", (0.10, -0.10, 0.025)),
            gt("blue_cylinder", (0.10, -0.10, 0.085), support="red_cube", size=(0.04, 0.04, 0.07)),
            gt("green_sphere", (0.15, 0.35, 0.037), support="bin"),
            gt("yellow_block", (-0.05, 0.05, 0.025)),
            gt("purple_prism", (0.20, -0.30, 0.025)),
            gt("bin", (0.15, 0.35, 0.04), kind="place", support="table", size=(0.2, 0.2, 0.08)),
            gt("cover", (-0.05, 0.05, 0.045), label="white cover", kind="place", support="table",
               size=(0.11, 0.11, 0.09)),
            gt("table", (0.0, 0.0, -0.02), label="brown table", kind="place", support=None,
               size=(1.2, 1.0, 0.04)),
        ]
    )  # fmt: skip


def perfect_memory(t: GroundTruth) -> list[MemoryObjectMsg]:
    objs = [mem(i + 1, o.label, o.position) for i, o in enumerate(t.objects[:5])]
    cover = t.get("cover").position
    objs.append(mem(6, "white box", (cover[0], cover[1], cover[2] + 0.03), container=True))
    return objs


GOOD_RELATIONS = [
    (1, "on", "table_centre"), (2, "on", 1), (3, "in", "bin"), (4, "in", 6),
    (5, "on", "table_right"), (6, "on", "table_centre"),
]  # fmt: skip


def test_perfect_memory_scores_one():
    t = scene()
    s = score_snapshot(graph(perfect_memory(t), GOOD_RELATIONS), t, out_of_view=set())
    assert (s.precision, s.recall, s.f1) == (1.0, 1.0, 1.0)
    assert s.n_truth == 5 and s.n_memory == 5
    assert s.loc_errors == pytest.approx([0.0] * 5, abs=1e-12)
    assert (s.relation_correct, s.relation_total) == (5, 5)
    assert s.duplicate_ratio == 0.0


def test_shifted_object_is_a_false_negative_and_a_false_positive():
    t = scene()
    objs = perfect_memory(t)
    objs[0] = mem(1, "red cube", (0.14, -0.10, 0.025))  # 4 cm off
    m = match_objects(graph(objs), t)
    assert m.false_negatives == ["red_cube"] and m.false_positives == [1]
    s = score_snapshot(graph(objs, GOOD_RELATIONS), t, set())
    assert s.precision == pytest.approx(0.8) and s.recall == pytest.approx(0.8)
    # the cylinder's support has no memory counterpart: not scorable
    assert (s.relation_correct, s.relation_total) == (3, 3)
    # 2.5 cm off still matches, with its error reported
    objs[0] = mem(1, "red cube", (0.125, -0.10, 0.025))
    s = score_snapshot(graph(objs), t, set())
    assert s.f1 == 1.0 and max(s.loc_errors) == pytest.approx(0.025)


def test_wrong_label_is_not_matched_unless_labels_are_ignored():
    t = scene()
    objs = perfect_memory(t)
    objs[0] = mem(1, "red cylinder", t.get("red_cube").position)
    assert "red_cube" in match_objects(graph(objs), t).false_negatives
    assert "red_cube" not in match_objects(graph(objs), t, require_label=False).false_negatives
    objs[0] = mem(1, "Red  CUBE", t.get("red_cube").position)  # case and spacing do not matter
    assert match_objects(graph(objs), t).false_negatives == []


def test_duplicate_counts_as_false_positive():
    t = scene()
    objs = [*perfect_memory(t), mem(7, "red cube", (0.10, -0.05, 0.025))]
    m = match_objects(graph(objs), t)
    assert m.duplicates == [7] and m.false_positives == [7]
    s = score_snapshot(graph(objs), t, set())
    assert s.precision == pytest.approx(5 / 6) and s.duplicate_ratio == pytest.approx(1 / 6)
    far = [*perfect_memory(t), mem(7, "red cube", (0.10, 0.10, 0.025))]  # 20 cm: not a duplicate
    m = match_objects(graph(far), t)
    assert m.duplicates == [] and m.false_positives == [7]


def test_absent_and_grasped_objects_are_not_scored():
    t = scene()
    objs = [*perfect_memory(t), mem(7, "orange capsule", (0.3, 0.3, 0.02), status="absent")]
    assert score_snapshot(graph(objs), t, set()).precision == 1.0
    t.objects[0] = gt("red_cube", (0.0, 0.0, 0.3), support=None, grasped=True)
    # memory following the cube in the hand: neither a match nor a false positive
    s = score_snapshot(graph(perfect_memory(t)), t, set())
    assert s.n_truth == 4 and s.recall == 1.0 and s.precision == 1.0
    # a red cube memory still holds on the table, 30 cm below the hand: a false positive
    left_behind = [*perfect_memory(t)[1:], mem(1, "red cube", (0.0, 0.0, 0.025))]
    s = score_snapshot(graph(left_behind), t, set())
    assert s.precision == pytest.approx(4 / 5)


def test_cover_is_ignored_not_a_false_positive():
    t = scene()
    m = match_objects(graph(perfect_memory(t)), t)
    assert m.ignored == [6] and m.ignored_places == {6: "cover"} and m.false_positives == []
    objs = perfect_memory(t)[:5] + [mem(6, "white box", (0.4, 0.0, 0.05), container=True)]
    m = match_objects(graph(objs), t)
    assert m.ignored == [] and m.false_positives == [6]


def test_relations_table_bin_cover_and_stack():
    t = scene()
    objs = perfect_memory(t)
    wrong = [
        (1, "in", "bin"),  # on the table, said in the bin
        (2, "on", "table_centre"),  # on the cube, said on the table
        (3, "on", "table_left"),  # in the bin, no `in`
        (4, "on", "table_centre"),  # under the cover, no `in` the box
        (5, "on", "table_right"),  # right
    ]
    s = score_snapshot(graph(objs, wrong), t, set())
    assert (s.relation_correct, s.relation_total) == (1, 5)
    # No relation at all for an object on the table is fine; stacked on the wrong object is not.
    s = score_snapshot(graph(objs, [(2, "on", 5), (3, "in", "bin"), (4, "in", 6)]), t, set())
    assert (s.relation_correct, s.relation_total) == (4, 5)


def test_permanence_out_of_view():
    t = scene()
    objs = perfect_memory(t)
    objs[3] = mem(4, "yellow block", t.get("yellow_block").position, status="remembered")
    s = score_snapshot(graph(objs), t, {"yellow_block", "not_in_scene"})
    assert (s.permanence_correct, s.permanence_total) == (1, 1)
    objs[3] = mem(4, "yellow block", t.get("yellow_block").position, status="absent")
    s = score_snapshot(graph(objs), t, {"yellow_block"})
    assert (s.permanence_correct, s.permanence_total) == (0, 1)
    objs[3] = mem(4, "yellow block", (-0.05, 0.10, 0.025), status="remembered")  # 5 cm off
    assert score_snapshot(graph(objs), t, {"yellow_block"}).permanence_correct == 0


def test_hungarian_beats_greedy():
    # m1 is slightly nearer to A, but only the crossed assignment matches both.
    t = truth(
        [gt("cube_a", (0.0, 0.0, 0.025), "red cube"), gt("cube_b", (0.04, 0, 0.025), "red cube")]
    )
    objs = [mem(1, "red cube", (0.019, 0.0, 0.025)), mem(2, "red cube", (-0.025, 0.0, 0.025))]
    m = match_objects(graph(objs), t)
    assert sorted((a, b) for a, b, _ in m.pairs) == [(1, "cube_b"), (2, "cube_a")]
    assert m.false_negatives == [] and m.false_positives == []


def test_aggregate():
    t = scene()
    good = score_snapshot(graph(perfect_memory(t), GOOD_RELATIONS), t, {"yellow_block"})
    objs = perfect_memory(t)
    objs[0] = mem(1, "red cube", (0.12, -0.10, 0.025))
    half = score_snapshot(graph(objs[1:]), t, {"yellow_block"})  # red cube missing
    summary = aggregate([good, half])
    assert summary["snapshots"] == 2
    assert summary["f1_final"] == pytest.approx(half.f1) and half.f1 < 1.0
    assert summary["f1_mean"] == pytest.approx((1.0 + half.f1) / 2)
    assert summary["loc_error_max"] == pytest.approx(0.0, abs=1e-12)
    assert summary["permanence_accuracy"] == 1.0 and summary["permanence_total"] == 2
    assert summary["relation_total"] == 5 + 3
    assert json.dumps(summary)
    errs = aggregate([score_snapshot(graph(objs), t, set())])
    assert errs["loc_error_mean"] == pytest.approx(0.02 / 5)
    empty = aggregate([])
    assert empty["snapshots"] == 0 and empty["f1_final"] is None


def test_score_last_seen():
    before = scene()
    after = scene()
    after.stamp = 5.0
    after.objects[0] = gt("red_cube", (0.15, 0.35, 0.037), support="bin")

    def answer(pos, stamp, ok=True):
        results = [{"object_id": 1, "position": list(pos), "stamp": stamp}] if ok else []
        return MemoryAnswer(id="q", kind="last_seen", ok=ok, stamp=6.0, results=results)

    res = score_last_seen(
        [
            ("red_cube", answer((0.10, -0.10, 0.03), 1.2)),  # right, at the time it was seen
            ("red_cube", answer((0.10, -0.10, 0.025), 4.8)),  # stale: it is in the bin by then
            ("purple_prism", answer((0.0, 0.0, 0.0), 0.0, ok=False)),
        ],
        [before, after],
    )
    assert res["answers"] == 3 and res["correct"] == 1
    assert res["accuracy"] == pytest.approx(1 / 3)
    assert [r["correct"] for r in res["per_object"]["red_cube"]] == [True, False]
    assert res["per_object"]["red_cube"][0]["error"] == pytest.approx(0.005)


# -- visibility: a camera 1 m above the table looking straight down ---------------------
BOXES = {  # axis-aligned boxes rendered into the synthetic depth image: min, max
    "table": ((-0.6, -0.5, -0.04), (0.6, 0.5, 0.0)),
    "shelf": ((-0.2, -0.1, 0.30), (0.0, 0.1, 0.32)),  # occludes what is under it
}
FX, W = 100.0, 64
K = np.array([[FX, 0.0, (W - 1) / 2], [0.0, FX, (W - 1) / 2], [0.0, 0.0, 1.0]])
CAM_POS = np.array([0.0, 0.0, 1.0])
CAM_QUAT = np.array([0.0, 1.0, 0.0, 0.0])  # optical z = world -z, x = world x


def render_depth(boxes: list[tuple]) -> np.ndarray:
    """Z-depth image of axis-aligned boxes by ray casting (slab test)."""
    cols, rows = np.meshgrid(np.arange(W), np.arange(W))
    rays_opt = np.stack([(cols - K[0, 2]) / FX, (rows - K[1, 2]) / FX, np.ones_like(cols)], -1)
    rot = np.diag([1.0, -1.0, -1.0])
    d = rays_opt.reshape(-1, 3) @ rot.T
    d = np.where(np.abs(d) < 1e-12, 1e-12, d)
    depth = np.full(len(d), np.inf)
    for lo, hi in boxes:
        t1, t2 = (np.array(lo) - CAM_POS) / d, (np.array(hi) - CAM_POS) / d
        near, far = np.minimum(t1, t2).max(1), np.maximum(t1, t2).min(1)
        hit = (near <= far) & (near > 0)
        depth[hit] = np.minimum(depth[hit], near[hit])
    depth[~np.isfinite(depth)] = 0.0
    return depth.reshape(W, W).astype(np.float32)


def test_visibility_visible_occluded_out_of_frame():
    objects = [
        gt("red_cube", (0.10, 0.0, 0.025)),  # in the open
        gt("blue_cube", (-0.10, 0.0, 0.025)),  # under the shelf
        gt("green_cube", (2.0, 0.0, 0.025)),  # outside the image
        gt("yellow_cube", (0.30, 0.0, 0.025)),  # at the image edge: partly in view
        gt("white_cover", (0.1, 0.2, 0.045), kind="place", size=(0.11, 0.11, 0.09)),
    ]
    boxes = [*BOXES.values()] + [
        (tuple(np.subtract(o.position, 0.025)), tuple(np.add(o.position, 0.025)))
        for o in objects[:4]
    ]
    view = CameraView("top", 1.0, K, CAM_POS, CAM_QUAT, render_depth(boxes))
    t = truth(objects)
    assert visible_objects(t, [view]) == {"red_cube", "yellow_cube"}
    assert visible_objects(t, [view], min_fraction=0.99) == {"red_cube"}
    edge = visible_fraction(t.get("yellow_cube"), view)
    assert 0.3 < edge < 0.99
    # Without the shelf the blue cube is seen; with no views nothing is.
    clear = [BOXES["table"]] + boxes[2:]
    view_clear = CameraView("top", 1.0, K, CAM_POS, CAM_QUAT, render_depth(clear))
    assert "blue_cube" in visible_objects(t, [view_clear])
    assert visible_objects(t, []) == set()
    # A second camera that sees the blue cube makes it visible overall.
    assert "blue_cube" in visible_objects(t, [view, view_clear])


def test_visibility_in_the_sim_cell():
    """Real renders: the best-seen object disappears from view once under the cover."""
    from robot_memory.perception.segmentation import coarse_depth
    from robot_memory.sim.cameras import CameraRig
    from robot_memory.sim.runner import RunnerConfig, SimulationRunner

    runner = SimulationRunner(RunnerConfig(seed=3, panda_visual="primitive"))
    rig = CameraRig(runner.physics.model, 320, 240)

    def views() -> list[CameraView]:
        out = []
        for cam in ("front", "wrist"):
            _, depth = rig.render(runner.physics, cam)
            pos, quat = rig.optical_pose(runner.physics, cam)
            grid, k = coarse_depth(depth, rig.intrinsics(cam), 80, 60)
            out.append(CameraView(cam, runner.time, k, pos, quat, grid))
        return out

    t, vs = runner.ground_truth(), views()
    seen = visible_objects(t, vs)
    assert 2 <= len(seen) < len([o for o in t.objects if o.kind == "object"])  # some out of frame
    best = max(seen, key=lambda oid: max(visible_fraction(t.get(oid), v) for v in vs))
    runner.move_object(best, t.get("cover").position[:2])
    t = runner.ground_truth()
    assert t.get(best).position[2] < 0.05  # under the cover, not on it
    assert is_covered(t.get(best), t.get("cover"))
    assert best not in visible_objects(t, views())
    assert seen - {best} <= visible_objects(t, views())


def test_write_report(tmp_path):
    t = scene()
    objs = [*perfect_memory(t), mem(7, "red cube", (0.10, -0.05, 0.025), status="remembered")]
    scores = [
        score_snapshot(graph(perfect_memory(t), GOOD_RELATIONS, stamp=s), t, {"yellow_block"})
        for s in (1.0, 2.0)
    ]
    scores.append(score_snapshot(graph(objs, GOOD_RELATIONS, stamp=3.0), t, {"yellow_block"}))
    summary = aggregate(scores)
    summary["last_seen"] = {"accuracy": 1.0, "answers": 5}
    summary["speed"] = {"x_real_time": 3.0}
    meta = {"bag": "/tmp/some_bag", "rejected_inputs": {"frame: invalid payload": 2}}
    paths = write_report(tmp_path / "out", summary, scores, graph(objs), t, meta)
    assert set(paths) == {"json", "markdown", "map", "metrics"}
    for p in paths.values():
        assert p.is_file() and p.stat().st_size > 0
    for key in ("map", "metrics"):
        assert paths[key].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads(paths["json"].read_text())
    assert {"summary", "series", "meta", "targets", "passed"} <= set(doc)
    assert len(doc["series"]) == 3 and doc["meta"]["bag"] == "/tmp/some_bag"
    assert doc["passed"] is False
    verdicts = {r["metric"]: r["pass"] for r in doc["targets"]}
    assert verdicts["Duplicates (final snapshot)"] is False
    assert verdicts["Speed (x real time)"] is False
    assert verdicts["Object permanence"] is True
    md = paths["markdown"].read_text()
    for row in ("| F1 (final snapshot) |", "| Localization error, mean |", "| Object permanence |",
                "| Last seen within 3 cm |", "| Speed (x real time) | 3.0x | >= 5x | FAIL |",
                "![map](map.png)", "![metrics](metrics.png)"):  # fmt: skip
        assert row in md
