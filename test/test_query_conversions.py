"""QueryMemory request/response <-> the core's MemoryQuery/MemoryAnswer: every
kind round-trips to results of exactly the core's shape (plain pytest, no DDS)."""

from __future__ import annotations

import math

import pytest
from robot_memory_interfaces.msg import MemoryObject, ObjectHistory
from test_memory_core import cube_on_table, frame, obs
from test_memory_relation_history import cover_then_lift

from robot_memory.memory import SceneMemory, TextEmbedder
from robot_memory.nodes.query_conversions import (
    answer_from_response,
    answer_to_response,
    query_from_request,
    query_to_request,
)
from robot_memory.schemas import MemoryAnswer, MemoryQuery, PayloadError

pytestmark = pytest.mark.ros  # needs the built robot_memory_interfaces


@pytest.fixture(scope="module")
def memory():
    """A cup, a sphere and a cube on the table, a block in the bin, a cylinder
    that went absent, the cube moved at t=5."""
    m = SceneMemory(embedder=TextEmbedder())
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


@pytest.fixture(scope="module")
def lifted():
    """A box put over a cube and lifted away: an ended ``in`` relation."""
    m = SceneMemory()
    cover_then_lift(m)
    yield m
    m.close()


def same(a, b, path="results") -> None:
    """Equal structure (dict keys, list lengths, types up to int/float) and
    values (floats to float32 precision)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), f"{path}: keys {list(a)} != {list(b)}"
        for key in a:
            same(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, (list, tuple)):
        assert type(b) is type(a) and len(a) == len(b), f"{path}: {a!r} != {b!r}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{path}[{i}]")
    elif isinstance(a, bool) or a is None or isinstance(a, str):
        assert a == b and type(a) is type(b), f"{path}: {a!r} != {b!r}"
    elif isinstance(a, int):
        assert b == a and isinstance(b, int), f"{path}: {a!r} != {b!r}"
    else:
        assert isinstance(b, float) and math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-7), (
            f"{path}: {a!r} != {b!r}"
        )


def round_trip(memory: SceneMemory, **fields) -> tuple[MemoryAnswer, MemoryAnswer]:
    query = MemoryQuery(id="q7", **fields)
    request = query_to_request(query)
    assert query_from_request(request, "q7") == query
    direct = memory.answer(query)
    assert direct.ok, direct.error
    return direct, answer_from_response(answer_to_response(direct), query)


def ids(memory: SceneMemory) -> dict[str, int]:
    return {o.label: o.id for o in memory.objects(include_absent=True)}


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "find", "text": "mug", "top_k": 4},
        {"kind": "last_seen", "text": "the cube"},
        {"kind": "on", "target": "table"},
        {"kind": "in", "target": "bin"},
        {"kind": "changed_since", "since": 1.0},
        {"kind": "relation_history"},
        {"kind": "events"},
        {"kind": "events", "text": "moved disappeared", "since": 1.0, "until": 9.0},
        {"kind": "graph"},
    ],
    ids=lambda f: "-".join(str(v) for v in f.values()),
)
def test_every_kind_round_trips_to_the_cores_shape(memory, fields):
    direct, back = round_trip(memory, **fields)
    assert direct.results, f"{fields}: the core found nothing to compare"
    assert (back.id, back.kind, back.ok, back.error) == ("q7", fields["kind"], True, "")
    assert back.stamp == pytest.approx(direct.stamp)
    same(direct.results, back.results)


def test_object_id_kinds_and_absent_and_yaw_fields_round_trip(memory):
    by_label = ids(memory)
    for kind in ("last_seen", "history"):
        for label in ("blue cylinder", "red cube", "yellow block"):
            direct, back = round_trip(memory, kind=kind, object_id=by_label[label])
            same(direct.results, back.results)
    (cylinder,) = round_trip(memory, kind="history", object_id=by_label["blue cylinder"])[1].results
    assert cylinder["status"] == "absent" and cylinder["absent_since"] is not None
    changes = round_trip(memory, kind="changed_since", since=0.5)[1].results
    assert {c["change"] for c in changes} >= {"moved", "absent"}
    assert all(("from" in c) == (c["change"] == "moved") for c in changes)
    in_bin = round_trip(memory, kind="relation_history", text="in")[1].results
    assert any(r["target"] == "bin" for r in in_bin)
    block = by_label["yellow block"]  # in the bin when first seen: it appeared, no put_in
    events = round_trip(memory, kind="events", object_id=block)[1].results
    assert [(e["kind"], e["object_id"], e["target"]) for e in events] == [
        ("appeared", block, "bin")
    ]
    (moved,) = round_trip(memory, kind="events", object_id=by_label["red cube"], text="moved")[
        1
    ].results
    assert moved["from_position"] is not None and moved["to_position"] is not None


def test_ended_relations_round_trip(lifted):
    for fields in ({}, {"text": "in", "target": "white box", "since": 2.5}):
        direct, back = round_trip(lifted, kind="relation_history", **fields)
        same(direct.results, back.results)
        assert any(r["ended"] is not None and isinstance(r["target"], int) for r in back.results)


def test_request_fields_and_defaults():
    q = MemoryQuery(id="a", kind="changed_since", since=12.25, object_id=3, top_k=9)
    req = query_to_request(q)
    assert (req.kind, list(req.object_id), req.top_k) == ("changed_since", [3], 9)
    assert (req.since[0].sec, req.since[0].nanosec) == (12, 250_000_000)
    empty = query_to_request(MemoryQuery(id="b", kind="graph"))
    assert (list(empty.object_id), list(empty.since)) == ([], [])
    empty.top_k = 0  # 0 on the wire: the default
    assert query_from_request(empty, "b").top_k == 5


@pytest.mark.parametrize(("field", "value"), [("kind", "teleport"), ("top_k", 1000)])
def test_a_bad_request_is_a_payload_error(field, value):
    req = query_to_request(MemoryQuery(id="a", kind="find", text="cube"))
    setattr(req, field, value)
    with pytest.raises(PayloadError) as err:
        query_from_request(req, "a")
    assert err.value.reason == "invalid payload"


def test_not_ok_and_unreadable_responses_are_answers_that_are_not_ok():
    query = MemoryQuery(id="z", kind="history", object_id=99)
    failed = MemoryAnswer(id="z", kind="history", ok=False, error="unknown object id 99", stamp=3)
    back = answer_from_response(answer_to_response(failed), query)
    assert (back.ok, back.error, back.results, back.stamp) == (False, failed.error, [], 3.0)

    resp = answer_to_response(MemoryAnswer(id="z", kind="history", ok=True, stamp=1.0))
    resp.histories = [ObjectHistory(status=42)]
    bad = answer_from_response(resp, query)
    assert not bad.ok and "unreadable response" in bad.error and "42" in bad.error

    graph = MemoryQuery(id="g", kind="graph")
    resp = answer_to_response(MemoryAnswer(id="g", kind="graph", ok=True))
    nan_object = MemoryObject()
    nan_object.centroid.x = float("nan")
    resp.graph.objects = [nan_object]
    bad = answer_from_response(resp, graph)
    assert not bad.ok and "unreadable response" in bad.error
