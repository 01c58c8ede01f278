"""Queries against a memory built from synthetic frames, with the real
sentence-embedding model (loaded once for the module)."""

from __future__ import annotations

import numpy as np
import pytest
from test_memory_core import cube_on_table, frame, obs

from robot_memory.memory import SceneMemory, TextEmbedder
from robot_memory.schemas import MemoryQuery, SceneGraphMsg


@pytest.fixture(scope="module")
def embedder() -> TextEmbedder:
    return TextEmbedder()


@pytest.fixture
def memory(embedder):
    """t=0..0.2: cup, sphere, cube, cylinder on the table, block in the bin;
    t=5: the cube moved; t=6..: the cylinder's place is seen empty."""
    m = SceneMemory(embedder=embedder)
    cup = obs("white cup", (-0.2, 0.0, 0.045), size=(0.08, 0.08, 0.09))
    sphere = obs("green sphere", (0.0, -0.3, 0.025))
    cylinder = obs("blue cylinder", (-0.3, -0.3, 0.035), size=(0.044, 0.044, 0.07))
    block = obs("yellow block", (0.15, 0.35, 0.037), size=(0.04, 0.08, 0.05))
    static = [cup, sphere, block]
    for k in range(3):
        m.update(frame(0.1 * k, [*static, cylinder, cube_on_table(0.3, -0.3)]))
    m.update(frame(5.0, [*static, cylinder, cube_on_table(0.3, 0.0)]))
    for k in range(6):
        m.update(frame(6.0 + 0.5 * k, [*static, cube_on_table(0.3, 0.0)]))
    yield m
    m.close()


def ask(memory: SceneMemory, kind: str, **fields):
    return memory.answer(MemoryQuery(id="q", kind=kind, **fields))


def ids_by_label(memory: SceneMemory) -> dict[str, int]:
    return {o.label: o.id for o in memory.objects(include_absent=True)}


@pytest.mark.parametrize(
    ("text", "label"),
    [("mug", "white cup"), ("ball", "green sphere"), ("red thing", "red cube")],
)
def test_find_by_meaning_and_words(memory, text, label):
    answer = ask(memory, "find", text=text, top_k=3)
    assert answer.ok and answer.id == "q"
    assert answer.results[0]["label"] == label
    assert len(answer.results) == 3
    assert answer.results[0]["score"] > answer.results[1]["score"]


def test_last_seen_by_id_and_by_text(memory):
    ids = ids_by_label(memory)
    by_id = ask(memory, "last_seen", object_id=ids["blue cylinder"])
    assert by_id.ok and by_id.results[0]["last_seen"] == pytest.approx(5.0)
    assert by_id.results[0]["status"] == "absent"
    by_text = ask(memory, "last_seen", text="the cube")
    assert by_text.results[0]["id"] == ids["red cube"]
    assert by_text.results[0]["centroid"] == pytest.approx([0.3, 0.0, 0.025])
    assert by_text.results[0]["last_seen"] == pytest.approx(8.5)


def test_history_shows_the_move(memory):
    cube = ids_by_label(memory)["red cube"]
    answer = ask(memory, "history", object_id=cube)
    assert answer.ok
    poses = answer.results[0]["poses"]
    assert [p["stamp"] for p in poses] == [0.0, 5.0]
    assert poses[0]["position"] == pytest.approx([0.3, -0.3, 0.025])
    assert answer.results[0]["visibility"] == [[0.0, 0.2], [5.0, 8.5]]


def test_what_is_in_the_bin_and_on_the_right(memory):
    ids = ids_by_label(memory)
    in_bin = ask(memory, "in", target="bin")
    assert in_bin.ok and [r["id"] for r in in_bin.results] == [ids["yellow block"]]
    assert [r["id"] for r in ask(memory, "in", target="the bin").results] == [ids["yellow block"]]
    on_right = ask(memory, "on", target="table_right")
    assert {r["id"] for r in on_right.results} == {ids["green sphere"]}  # cylinder is absent
    on_table = {r["id"] for r in ask(memory, "on", target="table").results}
    assert on_table == {ids["green sphere"], ids["white cup"], ids["red cube"]}


def test_changed_since(memory):
    ids = ids_by_label(memory)
    changes = ask(memory, "changed_since", since=1.0).results
    kinds = {(c["change"], c["id"]) for c in changes}
    assert kinds == {("moved", ids["red cube"]), ("absent", ids["blue cylinder"])}
    moved = next(c for c in changes if c["change"] == "moved")
    assert moved["from"] == pytest.approx([0.3, -0.3, 0.025])
    assert moved["to"] == pytest.approx([0.3, 0.0, 0.025])
    assert {c["change"] for c in ask(memory, "changed_since", since=-1.0).results} >= {"added"}
    assert ask(memory, "changed_since", since=100.0).results == []


def test_graph_answer_is_a_scene_graph(memory):
    answer = ask(memory, "graph")
    graph = SceneGraphMsg.model_validate(answer.results[0])
    assert len(graph.objects) == 5 and graph.seq == memory.seq


@pytest.mark.parametrize(
    ("kind", "fields", "error"),
    [
        ("history", {"object_id": 999}, "unknown object id 999"),
        ("history", {}, "needs object_id"),
        ("last_seen", {"object_id": -3}, "unknown object id -3"),
        ("last_seen", {}, "needs object_id or text"),
        ("find", {"text": "   "}, "empty text"),
        ("in", {"target": "the moon"}, "unknown target"),
        ("on", {"target": "12345"}, "unknown object id 12345"),
        ("on", {}, "needs a target"),
        ("changed_since", {}, "needs since"),
    ],
)
def test_bad_queries_answer_not_ok(memory, kind, fields, error):
    answer = ask(memory, kind, **fields)
    assert not answer.ok and error in answer.error and answer.results == []


def test_changed_since_skips_only_objects_with_nothing_to_report(tmp_path):
    """The quick skip (newest pose older than since) gives what a full scan of
    every object's history gives, at every time of a simulated day."""
    from robot_memory.memory.queries import _xyz, changes_since
    from robot_memory.tasks.week_world import WeekConfig, WeekWorld

    world = WeekWorld(WeekConfig(seed=5, days=1, actions_per_day=25, day_length_s=500.0))
    world.run(lambda: SceneMemory(store_path=tmp_path / "m.sqlite"), close=False)
    memory = world.memory

    def full_scan(since: float) -> list[dict]:
        out = []
        for obj in memory.objects(include_absent=True):
            changes = []
            if obj.first_seen > since:
                changes.append({"change": "added", "stamp": obj.first_seen,
                                "to": _xyz(obj.centroid)})  # fmt: skip
            else:
                before = [xyz for s, xyz in obj.pose_history if s <= since]
                after = [(s, xyz) for s, xyz in obj.pose_history if s > since]
                if before and after:
                    start, (stamp, end) = np.array(before[-1]), after[-1]
                    if np.linalg.norm(np.array(end) - start) > memory.config.move_threshold:
                        changes.append({"change": "moved", "stamp": stamp, "from": _xyz(start),
                                        "to": _xyz(end)})  # fmt: skip
            if obj.status == "absent" and obj.absent_since is not None and obj.absent_since > since:
                changes.append({"change": "absent", "stamp": obj.absent_since})
            out += [{**c, "id": obj.id, "label": obj.label} for c in changes]
        return sorted(out, key=lambda e: (e["stamp"], e["id"]))

    try:
        reported = 0
        for since in np.linspace(0.0, 510.0, 60):
            got = changes_since(memory, float(since))
            assert got == full_scan(float(since)), since
            reported += len(got)
        assert reported > 50  # the day changed things
    finally:
        memory.close()


def test_find_by_kind_index_ranks_as_a_scan_of_every_object(tmp_path, embedder):
    """Text queries read only the best kinds from memory's kind index: the same
    objects, scores and order (ties by id) as scoring every object, after a
    simulated day and after a restart from the store."""
    from robot_memory.memory.query_targets import ABSENT_PENALTY, ranked
    from robot_memory.memory.text_grounding import score_labels
    from robot_memory.tasks.week_world import WeekConfig, WeekWorld

    world = WeekWorld(WeekConfig(seed=3, days=1, actions_per_day=25, day_length_s=500.0))
    path = tmp_path / "m.sqlite"
    world.run(lambda: SceneMemory(store_path=path, embedder=embedder), close=False)

    def full_scan(memory: SceneMemory, text: str, limit: int | None) -> list[tuple[float, int]]:
        objects = memory.objects(include_absent=True)
        scores = score_labels(
            embedder,
            text,
            [o.words[0] for o in objects],
            [o.words[1] for o in objects],
            [o.words[2] for o in objects],
        ) - ABSENT_PENALTY * np.array([o.status == "absent" for o in objects])
        order = np.argsort(-scores, kind="stable")[:limit]
        return [(float(scores[k]), objects[k].id) for k in order]

    texts = ["red mug", "a bowl", "something to drink from", "green", "box", "screwdriver"]
    memory = world.memory
    try:
        for _ in range(2):  # as built, then loaded back from the store
            absent = sum(o.status == "absent" for o in memory.objects(include_absent=True))
            assert len(memory.objects()) >= 5 and absent >= 1
            for text in texts:
                for limit in (1, 5, None):
                    got = [(s, o.id) for s, o in ranked(memory, text, limit=limit)]
                    want = full_scan(memory, text, limit)
                    assert [i for _, i in got] == [i for _, i in want], (text, limit)
                    assert [s for s, _ in got] == pytest.approx([s for s, _ in want])
            memory.close()
            memory = SceneMemory(store_path=path, embedder=embedder)
    finally:
        memory.close()
    # many objects of one kind: ties ordered by id, present before absent
    memory = SceneMemory(embedder=embedder)
    kinds = ["red mug", "blue mug", "green bowl"]
    row = [obs(kinds[k % 3], (-0.3 + 0.07 * k, 0.1, 0.025)) for k in range(9)]
    for k in range(3):
        memory.update(frame(0.1 * k, row))
    for k in range(8):  # the last three leave; their places are seen empty
        memory.update(
            frame(1.0 + 0.5 * k, row[:6], scene=[(o.bbox_min, o.bbox_max) for o in row[:6]])
        )
    assert sum(o.status == "absent" for o in memory.objects(include_absent=True)) == 3
    for text in ("red mug", "mug", "bowl"):
        for limit in (2, 4, None):
            got = [(s, o.id) for s, o in ranked(memory, text, limit=limit)]
            want = full_scan(memory, text, limit)
            assert [i for _, i in got] == [i for _, i in want], (text, limit)
    memory.close()
