"""The offline planner backend: parsing, grounding with the real embedder, every
instruction family, experience rules, and that every plan validates (no ROS)."""

from __future__ import annotations

import numpy as np
import pytest
from test_memory_core import cube_on_table, frame, obs

from robot_memory import schemas
from robot_memory.cell import load_cell
from robot_memory.memory import SceneMemory
from robot_memory.memory.text_grounding import TextEmbedder
from robot_memory.planner.experience import Experience
from robot_memory.planner.language import parse_instruction
from robot_memory.planner.offline_backend import OfflinePlanner
from robot_memory.planner.plan import Plan, PlanningError
from robot_memory.planner.restore_plan import settled_origin
from robot_memory.planner.validation import validate_plan
from robot_memory.planner.world import PlanningContext, World
from robot_memory.schemas import (
    MemoryAnswer,
    MemoryObjectMsg,
    MemoryQuery,
    PlaceMsg,
    RelationMsg,
    SceneGraphMsg,
)

NOW = 100.0


def obj(
    oid: int,
    label: str,
    xyz: tuple[float, float, float],
    status: str = "visible",
    container: bool = False,
    size: float = 0.05,
    last_seen: float = NOW,
) -> MemoryObjectMsg:
    colour, shape = label.split()
    c = np.asarray(xyz)
    return MemoryObjectMsg(
        id=oid,
        label=label,
        color=colour,
        shape=shape,
        centroid=xyz,
        bbox_min=tuple(c - size / 2),  # type: ignore[arg-type]
        bbox_max=tuple(c + size / 2),  # type: ignore[arg-type]
        confidence=0.9 if status != "absent" else 0.1,
        observations=20,
        first_seen=1.0,
        last_seen=last_seen,
        status=status,  # type: ignore[arg-type]
        container=container,
    )


def rel(subject: int, relation: str, target: int | str, first: float = 1.0) -> RelationMsg:
    return RelationMsg(
        subject=subject,
        relation=relation,  # type: ignore[arg-type]
        target=target,
        confidence=0.9,
        first_confirmed=first,
        last_confirmed=NOW,
    )


PLACES = [
    PlaceMsg(id=p.id, kind=p.kind, label=p.label, bbox_min=p.bbox_min, bbox_max=p.bbox_max)  # type: ignore[arg-type]
    for p in load_cell().places
]


def scene(objects: list[MemoryObjectMsg], relations: list[RelationMsg] = ()) -> World:  # type: ignore[assignment]
    return World(
        SceneGraphMsg(seq=5, stamp=NOW, objects=objects, places=PLACES, relations=list(relations))
    )


def base_objects() -> list[MemoryObjectMsg]:
    return [
        obj(1, "red cube", (0.10, -0.10, 0.025)),
        obj(2, "blue cylinder", (0.20, 0.05, 0.035)),
        obj(3, "green sphere", (0.0, 0.10, 0.025)),
        obj(4, "yellow block", (-0.05, -0.20, 0.025)),
        obj(5, "orange capsule", (0.25, -0.25, 0.02)),
        obj(6, "purple prism", (0.15, 0.35, 0.03)),  # in the bin
        obj(7, "white box", (-0.05, 0.05, 0.045), container=True, size=0.11),
    ]


def base_world() -> World:
    return scene(base_objects(), [rel(6, "in", "bin")])


class CannedMemoryPort:
    """Test double for MemoryPort: answers history / relation_history /
    changed_since from canned data, nothing else."""

    def __init__(
        self,
        world: World,
        history: dict[int, list[tuple[float, tuple[float, float, float]]]] | None = None,
        relations: list[dict] | None = None,
    ) -> None:
        self.world = world
        self.history = history or {}
        self.relations = relations or []
        self.queries: list[MemoryQuery] = []

    def scene_graph(self) -> SceneGraphMsg:
        return self.world.graph

    def refresh(self) -> SceneGraphMsg:
        return self.world.graph

    def clear(self) -> None:
        self.history, self.relations = {}, []

    def query(self, query: MemoryQuery) -> MemoryAnswer:
        self.queries.append(query)
        results: list[dict] = []
        if query.kind == "history" and query.object_id in self.history:
            poses = self.history[query.object_id]
            results = [
                {
                    "id": query.object_id,
                    "poses": [{"stamp": s, "position": list(p)} for s, p in poses],
                }
            ]
        elif query.kind == "relation_history":
            results = [
                r for r in self.relations if not query.target or str(r["target"]) == query.target
            ]
        elif query.kind == "changed_since":
            for oid, poses in self.history.items():
                if np.linalg.norm(np.subtract(poses[-1][1], poses[0][1])) > 0.02:
                    results.append(
                        {
                            "change": "moved",
                            "id": oid,
                            "from": list(poses[0][1]),
                            "stamp": poses[-1][0],
                        }
                    )
        else:
            return MemoryAnswer(id=query.id, kind=query.kind, ok=False, error="not canned")
        return MemoryAnswer(id=query.id, kind=query.kind, ok=True, stamp=NOW, results=results)


@pytest.fixture(scope="module")
def embedder() -> TextEmbedder:
    return TextEmbedder()


@pytest.fixture(scope="module")
def planner(embedder: TextEmbedder) -> OfflinePlanner:
    return OfflinePlanner(embedder=embedder)


def run(planner: OfflinePlanner, text: str, world: World | None = None, **kw) -> Plan:
    world = world or base_world()
    plan = planner.plan(PlanningContext(instruction=text, world=world, **kw))
    assert plan.backend == "offline" and plan.id
    validate_plan(plan, world, kw.get("held"))
    return plan


def moves(plan: Plan) -> list[tuple]:
    return [(s.skill, s.object_id, s.target or s.target_position) for s in plan.steps]


# -- parsing (no embedder) --------------------------------------------------------
@pytest.mark.parametrize(
    "text, kinds",
    [
        ("Put the red cube in the bin.", ["move"]),
        ("where's the ball?", ["where"]),
        ("Where did the can go?", ["where"]),
        ("put everything back where it was", ["restore_all"]),
        ("please restore the scene", ["restore_all"]),
        (
            "put the red cube in the bin and then put the blue cylinder on the left",
            ["move", "move"],
        ),
        (
            "drop the cube in the bin; then move the ball to the middle of the table",
            ["move", "move"],
        ),
        ("throw the cube into the bin, then put the can on the right side", ["move", "move"]),
    ],
)
def test_parse_instruction_families(text: str, kinds: list[str]) -> None:
    assert [c.kind for c in parse_instruction(text)] == kinds


def test_parse_relative_clause_and_handover() -> None:
    (cmd,) = parse_instruction("Bring back the object that was under the box")
    assert cmd.obj.hidden_in == "box" and cmd.dest.handover
    (cmd,) = parse_instruction("put the thing that was in the cover in the bin")
    assert cmd.obj.hidden_in == "cover" and cmd.dest.text == "bin"
    (cmd,) = parse_instruction("put all the gray things in the bin")
    assert cmd.obj.every and cmd.obj.text == "gray"


@pytest.mark.parametrize("text", ["dance", "put the cube", ""])
def test_not_understood(planner: OfflinePlanner, text: str) -> None:
    with pytest.raises(PlanningError) as err:
        run(planner, text)
    assert err.value.reason == "not understood"


# -- 1. one object in the bin ------------------------------------------------------
def test_put_object_in_bin(planner: OfflinePlanner) -> None:
    plan = run(planner, "put the red cube in the bin")
    assert moves(plan) == [("pick", 1, None), ("place", 1, "bin")]
    assert plan.steps[0].why and plan.steps[1].why and any("#1" in n for n in plan.notes)


def test_grounding_reads_memory_s_label_votes(embedder: TextEmbedder) -> None:
    """A blue mug some views took for a box (votes: box 2.4, mug 1.7) beside the
    real blue box (box 4.8, prism 0.6): "the blue mug" is the mug, "the blue
    box" the real box (the mug's box name has less of its votes), not ambiguous."""
    from robot_memory.planner.grounding import Grounder

    def voted(oid: int, votes: dict[str, float], xyz) -> MemoryObjectMsg:
        label = max(votes, key=votes.__getitem__)
        return obj(oid, label, xyz).model_copy(update={"label_votes": votes})

    mug = voted(10, {"blue box": 2.43, "blue mug": 1.69}, (0.15, -0.33, 0.04))
    box = voted(14, {"blue box": 4.79, "blue prism": 0.64}, (0.28, 0.04, 0.03))
    world = World(SceneGraphMsg(seq=1, stamp=NOW, objects=[mug, box], places=PLACES, relations=[]))
    grounder = Grounder(embedder)
    assert grounder.ground("blue mug", world)[0].obj.id == 10
    assert grounder.ground("blue box", world)[0].obj.id == 14
    # without the votes the two are one name and nothing tells them apart
    bare = [o.model_copy(update={"label_votes": {}}) for o in (mug, box)]
    world = World(SceneGraphMsg(seq=1, stamp=NOW, objects=bare, places=PLACES, relations=[]))
    with pytest.raises(PlanningError, match="ambiguous"):
        grounder.ground("blue box", world)


def test_a_barely_seen_object_holds_its_shape_word_loosely(embedder: TextEmbedder) -> None:
    """A blue mug seen three times at the edge of a view, named "blue bowl" with
    0.6 votes in all, is "the blue mug" when nothing else blue is a mug; seen
    as a bowl for sure (6 votes) it is not, and a real blue mug wins over it."""
    from robot_memory.planner.grounding import Grounder

    def voted(oid: int, label: str, total: float, xyz) -> MemoryObjectMsg:
        return obj(oid, label, xyz).model_copy(update={"label_votes": {label: total}})

    others = [
        voted(11, "red mug", 4.5, (0.0, 0.09, 0.04)),
        voted(14, "blue bottle", 3.9, (0.05, 0.18, 0.06)),
        voted(9, "blue box", 5.1, (-0.12, 0.1, 0.03)),
    ]
    grounder = Grounder(embedder)

    def ground(*objects: MemoryObjectMsg) -> int:
        graph = SceneGraphMsg(seq=1, stamp=NOW, objects=list(objects), places=PLACES, relations=[])
        return grounder.ground("blue mug", World(graph))[0].obj.id

    assert ground(voted(16, "blue bowl", 0.6, (0.27, 0.07, 0.04)), *others) == 16
    with pytest.raises(PlanningError, match="no such object"):
        ground(voted(16, "blue bowl", 6.0, (0.27, 0.07, 0.04)), *others)
    mug = voted(20, "blue mug", 3.0, (0.2, -0.2, 0.04))
    assert ground(voted(16, "blue bowl", 0.6, (0.27, 0.07, 0.04)), mug, *others) == 20


@pytest.mark.parametrize(
    "text, oid, target",
    [
        ("throw the ball into the bin", 3, "bin"),
        ("drop the can in the trash", 2, "bin"),
        ("move the red block into the bin", 1, "bin"),
        ("could you place the pill in the bin please", 5, "bin"),
        ("put the blue cylinder on the left side of the table", 2, "table_left"),
        ("move the yellow brick to the middle of the table", 4, "table_centre"),
        ("put the green ball on the right", 3, "table_right"),
        ("put the orange capsule on the box", 5, "7"),
        ("pick up the red cube and put it in the bin", 1, "bin"),
        ("get rid of the can", 2, "bin"),
        ("move the purple prism over to the right side of the table", 6, "table_right"),
    ],
)
def test_paraphrases_and_synonyms(
    planner: OfflinePlanner, text: str, oid: int, target: str
) -> None:
    plan = run(planner, text)
    assert moves(plan) == [("pick", oid, None), ("place", oid, target)]


def test_two_moves_in_one_clause_and_next_to(planner: OfflinePlanner) -> None:
    plan = run(planner, "move the ball to the left side of the table and the can to the right side")
    assert moves(plan) == [
        ("pick", 3, None),
        ("place", 3, "table_left"),
        ("pick", 2, None),
        ("place", 2, "table_right"),
    ]
    plan = run(planner, "put the red cube next to the blue cylinder")
    spot = np.asarray(plan.steps[1].target_position)
    assert 0.07 <= np.linalg.norm(spot[:2] - (0.20, 0.05)) <= 0.15 and spot[2] == 0.0


def test_grasp_yaw_from_memory(planner: OfflinePlanner, monkeypatch: pytest.MonkeyPatch) -> None:
    objects = base_objects()
    if "yaw" in MemoryObjectMsg.model_fields:
        objects[0] = objects[0].model_copy(update={"yaw": 0.4})
    else:  # memory without the yaw field yet: its helper stands in
        monkeypatch.setattr(
            schemas, "grasp_yaw", lambda o: 0.4 if o.id == 1 else None, raising=False
        )
    plan = run(planner, "put the red cube in the bin", scene(objects))
    assert plan.steps[0].goal_yaw == pytest.approx(0.4)
    assert run(planner, "put the ball in the bin").steps[0].goal_yaw is None


# -- 2. all things of a colour ------------------------------------------------------
def test_all_of_a_colour_skips_the_bin_and_containers(planner: OfflinePlanner) -> None:
    objects = base_objects() + [
        obj(8, "red sphere", (-0.10, -0.25, 0.025)),
        obj(9, "red block", (0.12, 0.30, 0.03)),  # already in the bin
        obj(10, "red box", (0.25, 0.15, 0.045), container=True, size=0.11),
    ]
    plan = run(planner, "put all the red things in the bin", scene(objects, [rel(9, "in", "bin")]))
    assert moves(plan) == [
        ("pick", 1, None),
        ("place", 1, "bin"),
        ("pick", 8, None),
        ("place", 8, "bin"),
    ]
    # each its own spot in the bin, clear of the block and the prism already there
    # and of each other (a crowded bin: 4 things, spots only up to y 0.36)
    spots = [np.asarray(s.target_position) for s in plan.steps if s.skill == "place"]
    there = np.array([[0.12, 0.30], [0.15, 0.35]])
    for p in spots:
        assert 0.085 <= p[0] <= 0.215 and 0.285 <= p[1] <= 0.36 and p[2] == pytest.approx(0.08)
        assert np.linalg.norm(there - p[:2], axis=1).min() >= 0.045
    assert np.linalg.norm(spots[0][:2] - spots[1][:2]) >= 0.045


def test_things_put_in_the_bin_one_after_the_other_do_not_land_on_each_other(
    planner: OfflinePlanner,
) -> None:
    objects = [o for o in base_objects() if o.id != 6]  # an empty bin
    world = scene(objects)
    alone = run(planner, "put the red cube in the bin", world)
    assert alone.steps[1].target == "bin" and alone.steps[1].target_position is None
    plan = run(planner, "put the red cube in the bin, then put the ball in the bin", world)
    first, second = plan.steps[1], plan.steps[3]
    assert first.target == second.target == "bin" and first.target_position is None
    assert np.linalg.norm(np.subtract(second.target_position[:2], (0.15, 0.35))) >= 0.045
    both = run(planner, "put the red cube and the ball in the bin", world)
    a, b = (np.asarray(s.target_position) for s in both.steps if s.skill == "place")
    assert np.linalg.norm(a[:2] - b[:2]) >= 0.09


def test_all_grey_matches_gray(planner: OfflinePlanner) -> None:
    objects = base_objects() + [obj(8, "gray cube", (-0.10, -0.25, 0.025))]
    plan = run(planner, "throw every grey object into the bin", scene(objects))
    assert [s.object_id for s in plan.steps] == [8, 8]


@pytest.mark.parametrize(
    "text", ["put all the purple things in the bin", "put all the pink things in the bin"]
)
def test_all_of_a_colour_nothing_to_do(planner: OfflinePlanner, text: str) -> None:
    with pytest.raises(PlanningError) as err:
        run(planner, text)
    assert err.value.reason == "nothing to do"


# -- 3. what was under the box --------------------------------------------------------
def history_row(subject: int, target: int, last: float, ended: float | None) -> dict:
    return {
        "subject": subject,
        "relation": "in",
        "target": target,
        "confidence": 0.9,
        "first_confirmed": 10.0,
        "last_confirmed": last,
        "ended": ended,
        "subject_label": "x",
        "target_label": "white box",
    }


@pytest.mark.parametrize(
    "text",
    [
        "bring back the object that was under the box",
        "Bring me the thing that was hidden under the cover",
        "give back what was in the box",
    ],
)
def test_bring_back_from_relation_history(planner: OfflinePlanner, text: str) -> None:
    world = base_world()
    memory = CannedMemoryPort(
        world, relations=[history_row(3, 7, 60.0, 61.0), history_row(4, 7, 20.0, 21.0)]
    )
    plan = run(planner, text, world, memory=memory)
    assert moves(plan) == [("pick", 3, None), ("place", 3, planner.handover_position)]
    assert any(q.kind == "relation_history" for q in memory.queries)


def test_the_box_among_several_is_the_one_memory_recalls_something_under(
    planner: OfflinePlanner,
) -> None:
    """A household cell: the cover (#7) and a large blue box (#8) both fit "the
    box" (and the cover is held twice, #9, its duplicate); only under #7 does
    memory recall anything, so that is the box meant."""
    objects = [
        *base_objects(),
        obj(8, "blue box", (0.2, -0.2, 0.045), container=True, size=0.11),
        obj(9, "white box", (-0.02, 0.05, 0.045), container=True, size=0.11),
    ]
    world = scene(objects, [rel(6, "in", "bin")])
    memory = CannedMemoryPort(world, relations=[history_row(3, 7, 60.0, 61.0)])
    plan = run(planner, "bring back the object that was under the box", world, memory=memory)
    assert moves(plan) == [("pick", 3, None), ("place", 3, planner.handover_position)]
    assert any("only #7 had something under it" in n for n in plan.notes)
    memory = CannedMemoryPort(world, relations=[])
    with pytest.raises(PlanningError) as err:
        run(planner, "bring back the object that was under the box", world, memory=memory)
    assert err.value.reason == "no such object" and "#8" in err.value.detail


def test_bring_back_still_covered(planner: OfflinePlanner) -> None:
    world = scene(base_objects(), [rel(3, "in", 7)])
    memory = CannedMemoryPort(world, relations=[history_row(3, 7, NOW, None)])
    with pytest.raises(PlanningError) as err:
        run(planner, "bring back the object that was under the box", world, memory=memory)
    assert err.value.reason == "object covered"


def test_bring_back_from_the_box_s_old_position(planner: OfflinePlanner) -> None:
    """No relation history: the object standing where the box used to be."""
    world = base_world()
    memory = CannedMemoryPort(
        world, history={7: [(5.0, (0.0, 0.10, 0.045)), (70.0, (-0.05, 0.05, 0.045))]}
    )
    plan = run(planner, "bring back the object that was under the box", world, memory=memory)
    assert [s.object_id for s in plan.steps] == [3, 3]


def test_bring_back_skips_merged_absent_and_box_pieces(planner: OfflinePlanner) -> None:
    """The newest ``in`` rows are a white piece of the box since merged into it
    (#10), a black shaded wall now gone (#11) and a white piece still there
    (#12): none of them was under the box; the present cube is."""
    objects = [
        *base_objects(),
        obj(11, "black capsule", (0.0, 0.2, 0.02), status="absent"),
        obj(12, "white cylinder", (-0.05, 0.05, 0.11)),
    ]
    world = scene(objects, [rel(6, "in", "bin")])
    memory = CannedMemoryPort(
        world,
        relations=[
            history_row(10, 7, 90.0, 90.0),
            history_row(11, 7, 80.0, 81.0),
            history_row(12, 7, 80.0, 81.0),
            history_row(1, 7, 80.0, 81.0),
        ],
    )
    plan = run(planner, "bring back the object that was under the box", world, memory=memory)
    assert moves(plan) == [("pick", 1, None), ("place", 1, planner.handover_position)]
    assert any("#10 (no longer in memory)" in n and "#11 (gone)" in n for n in plan.notes)


def test_bring_back_only_box_pieces_in_history_falls_back_to_old_positions(
    planner: OfflinePlanner,
) -> None:
    world = base_world()
    memory = CannedMemoryPort(
        world,
        history={7: [(5.0, (0.0, 0.10, 0.045)), (70.0, (-0.05, 0.05, 0.045))]},
        relations=[history_row(10, 7, 90.0, 90.0)],
    )
    plan = run(planner, "bring back the object that was under the box", world, memory=memory)
    assert [s.object_id for s in plan.steps] == [3, 3]


def test_bring_back_ignores_what_came_to_the_box_s_old_spot_after_it_left(
    planner: OfflinePlanner,
) -> None:
    objects = [o for o in base_objects() if o.id != 3]
    objects.append(
        obj(3, "green sphere", (0.0, 0.10, 0.025)).model_copy(update={"first_seen": 50.0})
    )
    world = scene(objects, [rel(6, "in", "bin")])
    memory = CannedMemoryPort(
        world, history={7: [(5.0, (0.0, 0.10, 0.045)), (70.0, (-0.05, 0.05, 0.045))]}
    )
    with pytest.raises(PlanningError) as err:
        run(planner, "bring back the object that was under the box", world, memory=memory)
    assert err.value.reason == "no such object"


class SceneMemoryPort:
    """Test double for MemoryPort over a real SceneMemory (no observer, no ROS)."""

    def __init__(self, memory: SceneMemory) -> None:
        self.memory = memory

    def scene_graph(self) -> SceneGraphMsg:
        return self.memory.snapshot()

    refresh = scene_graph

    def query(self, query: MemoryQuery) -> MemoryAnswer:
        return self.memory.answer(query)

    def clear(self) -> None:
        self.memory.reset()


def test_bring_back_with_a_real_scene_memory(
    planner: OfflinePlanner, embedder: TextEmbedder
) -> None:
    """The cube seen, the white box put over it, then lifted away (memory's own relations)."""
    memory = SceneMemory(embedder=embedder)
    box = ("white box", (0.2, -0.2, 0.045))
    memory.update(frame(0.0, [cube_on_table(0.2, -0.2), cube_on_table(0.0, 0.15, "blue cylinder")]))
    for k in range(1, 5):
        memory.update(frame(0.5 * k, [obs(*box, size=(0.11, 0.11, 0.09))]))
    port, world = SceneMemoryPort(memory), World(memory.snapshot())
    cube = next(o.id for o in world.graph.objects if o.label == "red cube")
    with pytest.raises(PlanningError) as err:
        run(planner, "bring back the object that was under the box", world, memory=port)
    assert err.value.reason == "object covered"
    assert run(planner, "where is the red cube", world).answer_place.isdigit()
    lifted = [
        cube_on_table(0.2, -0.2),
        obs("white box", (-0.1, 0.3, 0.045), size=(0.11, 0.11, 0.09)),
    ]
    memory.update(frame(3.0, lifted))
    world = World(memory.snapshot())
    plan = run(planner, "bring back the object that was under the box", world, memory=port)
    assert [s.object_id for s in plan.steps] == [cube, cube]
    memory.close()


def test_handover_must_be_reachable() -> None:
    with pytest.raises(ValueError):
        OfflinePlanner(embedder=object(), handover_position=(0.6, 0.0, 0.0))  # type: ignore[arg-type]


# -- 4. everything back ---------------------------------------------------------------
def test_everything_back_in_a_safe_order(planner: OfflinePlanner) -> None:
    # the sphere went to where the cube was, the cube went elsewhere
    objects = base_objects()
    objects[0] = obj(1, "red cube", (0.0, 0.10, 0.025))
    objects[2] = obj(3, "green sphere", (-0.1, -0.05, 0.025))
    hist = {
        1: [(1.0, (-0.1, -0.05, 0.025)), (50.0, (0.0, 0.10, 0.025))],
        3: [(1.0, (0.25, 0.15, 0.025)), (40.0, (0.2, 0.0, 0.025)), (50.0, (-0.1, -0.05, 0.025))],
        4: [(1.0, (-0.05, -0.21, 0.025))],  # 1 cm: not moved
    }
    world = scene(objects, [rel(6, "in", "bin")])
    plan = run(
        planner, "put everything back where it was", world, memory=CannedMemoryPort(world, hist)
    )
    # the cube's old spot holds the sphere: the sphere goes first
    assert [(s.skill, s.object_id) for s in plan.steps] == [
        ("pick", 3),
        ("place", 3),
        ("pick", 1),
        ("place", 1),
    ]
    assert plan.steps[1].target_position == pytest.approx((0.25, 0.15, 0.0))
    assert plan.steps[3].target_position == pytest.approx((-0.1, -0.05, 0.0))


def test_everything_back_swap_sets_one_aside(planner: OfflinePlanner) -> None:
    objects = base_objects()
    objects[0] = obj(1, "red cube", (0.0, 0.10, 0.025))
    objects[2] = obj(3, "green sphere", (0.10, -0.10, 0.025))
    world = scene(objects, [rel(6, "in", "bin")])
    hist = {1: [(1.0, (0.10, -0.10, 0.025))], 3: [(1.0, (0.0, 0.10, 0.025))]}
    plan = run(
        planner,
        "put all the things back where they were",
        world,
        memory=CannedMemoryPort(world, hist),
    )
    assert [s.object_id for s in plan.steps] == [1, 1, 3, 3, 1, 1]
    assert plan.steps[-1].target_position == pytest.approx((0.10, -0.10, 0.0))
    assert any("aside" in n for n in plan.notes)


def test_everything_back_follows_an_object_seen_again_under_a_new_id(
    planner: OfflinePlanner,
) -> None:
    """The cylinder was moved unseen; memory marked it absent (#2) and made a new
    entry where it stands now (#12, history from there): the same colour and
    shape, seen later, so it goes back to #2's first pose."""
    objects = [o for o in base_objects() if o.id != 2]
    objects.append(obj(2, "blue cylinder", (0.20, 0.05, 0.035), status="absent", last_seen=30.0))
    new = obj(12, "blue cylinder", (-0.05, 0.15, 0.035)).model_copy(update={"first_seen": 60.0})
    objects.append(new)
    world = scene(objects, [rel(6, "in", "bin")])
    hist = {
        2: [(1.0, (0.20, 0.05, 0.035))],
        12: [(60.0, (-0.05, 0.15, 0.035))],
    }
    plan = run(
        planner, "put everything back where it was", world, memory=CannedMemoryPort(world, hist)
    )
    assert [(s.skill, s.object_id) for s in plan.steps] == [("pick", 12), ("place", 12)]
    assert plan.steps[1].target_position == pytest.approx((0.20, 0.05, 0.0))


def test_everything_back_joins_pieces_of_one_place_in_a_neighbouring_colour(
    planner: OfflinePlanner,
) -> None:
    """A white bowl memory saw as two grey pieces (shade) before it was moved
    unseen: both pieces are absent, the bowl stands elsewhere as a new white
    entry. Pieces within ONE_PLACE_M are one place, grey neighbours white, so
    the bowl goes back to the middle of the pieces."""
    objects = [o for o in base_objects() if o.id != 2]
    for oid, x in ((2, 0.19), (13, 0.22)):
        objects.append(obj(oid, "grey bowl", (x, 0.05, 0.03), status="absent", last_seen=30.0))
    new = obj(12, "white bowl", (-0.05, 0.15, 0.03)).model_copy(update={"first_seen": 60.0})
    objects.append(new)
    world = scene(objects, [rel(6, "in", "bin")])
    hist = {
        2: [(1.0, (0.19, 0.05, 0.03))],
        13: [(1.5, (0.22, 0.05, 0.03))],
        12: [(60.0, (-0.05, 0.15, 0.03))],
    }
    plan = run(
        planner, "put everything back where it was", world, memory=CannedMemoryPort(world, hist)
    )
    assert [(s.skill, s.object_id) for s in plan.steps] == [("pick", 12), ("place", 12)]
    assert plan.steps[1].target_position == pytest.approx((0.205, 0.05, 0.0))


def test_everything_back_two_absent_places_of_one_kind_are_ambiguous(
    planner: OfflinePlanner,
) -> None:
    """Two blue cylinders gone from two places and one seen anew: which one it
    is cannot be told, so nothing is guessed."""
    objects = [o for o in base_objects() if o.id != 2]
    for oid, x in ((2, 0.20), (13, -0.05)):
        objects.append(obj(oid, "blue cylinder", (x, 0.05, 0.035), status="absent", last_seen=30.0))
    new = obj(12, "blue cylinder", (-0.05, 0.15, 0.035)).model_copy(update={"first_seen": 60.0})
    objects.append(new)
    world = scene(objects, [rel(6, "in", "bin")])
    hist = {2: [(1.0, (0.20, 0.05, 0.035))], 13: [(1.0, (-0.05, 0.05, 0.035))]}
    hist[12] = [(60.0, (-0.05, 0.15, 0.035))]
    with pytest.raises(PlanningError):
        run(planner, "put everything back", world, memory=CannedMemoryPort(world, hist))


def test_everything_back_next_to_a_neighbour_that_was_there_all_along(
    planner: OfflinePlanner,
) -> None:
    """The cube stood 4 cm from the can (touching) and was moved unseen; the
    can never moved. The can is a neighbour, not something that took the
    cube's spot; an object put there after the cube left would be."""
    objects = base_objects()
    objects[0] = obj(1, "red cube", (0.0, 0.10, 0.025))
    objects[1] = obj(2, "blue cylinder", (0.24, 0.05, 0.035))
    world = scene(objects, [rel(6, "in", "bin")])
    hist = {
        1: [(1.0, (0.20, 0.05, 0.025)), (50.0, (0.0, 0.10, 0.025))],
        2: [(1.0, (0.24, 0.05, 0.035))],
    }
    plan = run(
        planner, "put everything back where it was", world, memory=CannedMemoryPort(world, hist)
    )
    assert [(s.skill, s.object_id) for s in plan.steps] == [("pick", 1), ("place", 1)]
    assert plan.steps[1].target_position == pytest.approx((0.20, 0.05, 0.0))
    # the same can, first seen after the cube left: it took the spot
    late = objects[1].model_copy(update={"first_seen": 55.0})
    world = scene([late if o.id == 2 else o for o in objects], [rel(6, "in", "bin")])
    hist[2] = [(55.0, (0.24, 0.05, 0.035))]
    with pytest.raises(PlanningError):
        run(planner, "put everything back", world, memory=CannedMemoryPort(world, hist))


def test_settled_origin_follows_a_first_view_converging_not_a_move() -> None:
    """A partial first view 3 cm off, refined while watched, then moved while
    nobody looked: the origin is the refined pose, known there until the move."""
    row = {
        "poses": [
            {"stamp": 1.0, "position": [0.20, 0.03, 0.03]},
            {"stamp": 1.2, "position": [0.20, 0.045, 0.03]},
            {"stamp": 1.4, "position": [0.20, 0.06, 0.03]},
            {"stamp": 9.0, "position": [0.20, 0.105, 0.03]},  # 4.5 cm, after a gap
        ],
        "visibility": [[1.0, 2.0], [9.0, 10.0]],
    }
    origin = settled_origin(row, moved_threshold=0.04)
    assert origin is not None
    assert origin.position[:2] == pytest.approx((0.20, 0.06))
    assert origin.until == 9.0
    # the same 5 cm step while it was watched all along: the estimate drifting
    row["visibility"] = [[1.0, 10.0]]
    origin = settled_origin(row, moved_threshold=0.04)
    assert origin is not None and origin.position[:2] == pytest.approx((0.20, 0.105))
    assert origin.until == float("inf")


def test_everything_back_nothing_moved(planner: OfflinePlanner) -> None:
    world = base_world()
    hist = {o.id: [(1.0, o.centroid)] for o in world.graph.objects}
    with pytest.raises(PlanningError) as err:
        run(
            planner, "put everything back where it was", world, memory=CannedMemoryPort(world, hist)
        )
    assert err.value.reason == "nothing to do"


# -- 5. where is ------------------------------------------------------------------------
def test_where_is_in_the_bin(planner: OfflinePlanner) -> None:
    objects = base_objects()
    objects[5] = obj(6, "purple prism", (0.15, 0.35, 0.03), status="remembered", last_seen=88.0)
    plan = run(planner, "where is the purple prism?", scene(objects, [rel(6, "in", "bin")]))
    assert plan.kind == "answer" and plan.answer_object_id == 6 and plan.answer_place == "bin"
    assert "in the bin" in plan.answer and "12 s ago" in plan.answer
    assert plan.answer_position == pytest.approx((0.15, 0.35, 0.03))


def test_where_did_it_go_moved_and_covered(planner: OfflinePlanner) -> None:
    world = scene(base_objects(), [rel(3, "in", 7)])
    memory = CannedMemoryPort(world, {3: [(1.0, (0.2, -0.2, 0.025)), (50.0, (0.0, 0.10, 0.025))]})
    plan = run(planner, "where did the ball go?", world, memory=memory)
    assert plan.answer_place == "7" and "white box" in plan.answer and "moved" in plan.answer
    plan = run(planner, "where's the can", world)
    assert plan.answer_place == "table_centre" and plan.answer_object_id == 2


def test_where_is_gone_and_unknown(planner: OfflinePlanner) -> None:
    objects = base_objects()
    objects[3] = obj(4, "yellow block", (-0.05, -0.20, 0.025), status="absent", last_seen=40.0)
    plan = run(planner, "where is the yellow block", scene(objects))
    assert "gone" in plan.answer and plan.answer_object_id == 4
    with pytest.raises(PlanningError) as err:
        run(planner, "where is the banana?")
    assert err.value.reason == "no such object"


# -- 6. two steps ----------------------------------------------------------------------
def test_two_steps(planner: OfflinePlanner) -> None:
    text = (
        "put the red cube in the bin and then put the blue cylinder on the left side of the table"
    )
    plan = run(planner, text)
    assert moves(plan) == [
        ("pick", 1, None),
        ("place", 1, "bin"),
        ("pick", 2, None),
        ("place", 2, "table_left"),
    ]
    plan = run(planner, "put the red cube in the bin, then put all the red things in the bin")
    assert [s.object_id for s in plan.steps] == [1, 1]  # the second sees the cube in the bin


# -- grounding failures -----------------------------------------------------------------
def test_ambiguous_lists_candidates(planner: OfflinePlanner) -> None:
    objects = base_objects() + [obj(8, "red sphere", (-0.10, -0.25, 0.025))]
    with pytest.raises(PlanningError) as err:
        run(planner, "put the red thing in the bin", scene(objects))
    assert err.value.reason == "ambiguous" and "#1" in err.value.detail and "#8" in err.value.detail


def test_a_household_kind_is_not_taken_for_another_of_the_same_colour(
    planner: OfflinePlanner,
) -> None:
    """The blue bottle is in the bin, unseen: memory holds a blue mug and a blue
    box. "The blue bottle" is neither (the colour alone used to pick the mug)."""
    objects = [
        obj(1, "blue mug", (0.10, 0.20, 0.04)),
        obj(2, "blue box", (0.00, -0.20, 0.03)),
        obj(3, "green bottle", (0.15, -0.10, 0.06)),
    ]
    with pytest.raises(PlanningError) as err:
        run(planner, "put the blue bottle in the bin", scene(objects))
    assert err.value.reason == "no such object"
    steps = run(planner, "put the blue mug in the bin", scene(objects)).steps
    assert [s.object_id for s in steps] == [1, 1]


def test_a_primitive_cylinder_is_still_a_can(planner: OfflinePlanner) -> None:
    steps = run(planner, "put the blue can in the bin", scene(base_objects())).steps
    assert steps[0].object_id == next(o.id for o in base_objects() if o.label == "blue cylinder")


def test_a_black_handle_seen_as_grey_is_the_black_one(planner: OfflinePlanner) -> None:
    """Shading turns black grey on camera: a neighbouring colour costs a third
    of a wrong one, so the grey screwdriver wins over the red one."""
    objects = [
        obj(1, "grey screwdriver", (0.10, 0.20, 0.015)),
        obj(2, "red screwdriver", (0.00, -0.20, 0.015)),
    ]
    steps = run(planner, "put the black screwdriver in the bin", scene(objects)).steps
    assert [s.object_id for s in steps] == [1, 1]


def test_prefers_present_over_absent(planner: OfflinePlanner) -> None:
    objects = base_objects() + [obj(8, "red cube", (-0.10, -0.25, 0.025), status="absent")]
    assert [
        s.object_id for s in run(planner, "put the red cube in the bin", scene(objects)).steps
    ] == [1, 1]


@pytest.mark.parametrize(
    "text, reason",
    [
        ("put the banana in the bin", "no such object"),
        ("put the box in the bin", "not movable"),
        ("put the red cube in the sink", "no such place"),
        ("put the purple prism in the bin", "nothing to do"),
    ],
)
def test_refusals(planner: OfflinePlanner, text: str, reason: str) -> None:
    with pytest.raises(PlanningError) as err:
        run(planner, text)
    assert err.value.reason == reason


def test_gone_object_is_refused(planner: OfflinePlanner) -> None:
    objects = base_objects()
    objects[0] = obj(1, "red cube", (0.10, -0.10, 0.025), status="absent")
    with pytest.raises(PlanningError) as err:
        run(planner, "put the red cube in the bin", scene(objects))
    assert err.value.reason == "object gone"


# -- experience ---------------------------------------------------------------------------
def test_experience_inserts_a_look_before_pick(planner: OfflinePlanner) -> None:
    exp = Experience(
        instruction="put the red cube in the bin",
        skill="pick",
        object_label="red cube",
        object_shape="cube",
        object_colour="red",
        reason="grasp missed",
        reflection="pick of the red cube failed; look first",
        rule="look_before_pick",
    )
    other = Experience(
        instruction="x", skill="place", object_label="blue cylinder", object_shape="cylinder"
    )
    text = "put the red cube in the bin and then put the blue cylinder in the bin"
    plan = run(planner, text, experiences=[exp, other])
    assert [(s.skill, s.object_id) for s in plan.steps] == [
        ("look", 1),
        ("pick", 1),
        ("place", 1),
        ("pick", 2),
        ("place", 2),
    ]
    assert plan.steps[0].why.startswith(f"experience {exp.id}")
    assert plan.experiences == [exp.id, other.id]


def test_held_object_is_placed_without_a_pick(planner: OfflinePlanner) -> None:
    plan = run(planner, "put the red cube in the bin", held=1)
    assert moves(plan) == [("place", 1, "bin")]


def test_a_table_region_place_goes_to_a_clear_spot(planner: OfflinePlanner) -> None:
    """The region's own point is (0.0, -0.3); the box stands right there: the
    place goes to the nearest spot clear of it and of everything else, and the
    step keeps the region for verification."""
    objects = [o for o in base_objects() if o.id != 7]
    objects.append(obj(7, "white box", (-0.06, -0.30, 0.045), container=True, size=0.11))
    plan = run(planner, "put the green sphere on the right side of the table", scene(objects, []))
    place = plan.steps[-1]
    assert place.target == "table_right" and place.target_position is not None
    spot = np.asarray(place.target_position[:2])
    box_lo, box_hi = np.array([-0.115, -0.355]) - 0.05, np.array([-0.005, -0.245]) + 0.05
    assert not np.all((spot >= box_lo) & (spot <= box_hi))  # clear of the box
    others = [np.asarray(o.centroid[:2]) for o in objects if o.id not in (3, 7)]
    assert min(np.linalg.norm(spot - t) for t in others) >= 0.09
    assert -0.5 <= spot[1] <= -0.15  # still in the right side of the table
