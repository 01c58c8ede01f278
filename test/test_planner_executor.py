"""Planner core: plan validation, execution, replanning after an injected failure,
and experience memory changing a later plan (no ROS, no simulator)."""

from __future__ import annotations

import json

import pytest
from planner_test_doubles import SymbolicWorldTestDouble, memory_object

from robot_memory.planner.executor import ExecutorConfig, PlanExecutor
from robot_memory.planner.experience import ExperienceMemory
from robot_memory.planner.plan import Plan, PlanStep
from robot_memory.planner.validation import PlanValidationError, parse_plan, validate_plan
from robot_memory.planner.world import RelationMsg, World
from robot_memory.schemas import MemoryObjectMsg


def scene() -> SymbolicWorldTestDouble:
    return SymbolicWorldTestDouble(
        objects={
            1: memory_object(1, "red cube", (0.1, -0.1, 0.025)),
            2: memory_object(2, "green sphere", (0.0, 0.1, 0.025)),
            3: memory_object(3, "white box", (0.2, -0.2, 0.045), container=True),
        }
    )


def pick_place(oid: int, target: str = "bin") -> list[PlanStep]:
    return [
        PlanStep(skill="pick", object_id=oid),
        PlanStep(skill="place", object_id=oid, target=target),
    ]


class FixedPlanBackendTestDouble:
    """A backend that returns one fixed plan (stands in for a VLM's answer)."""

    name = "fixed-plan test double"

    def __init__(self, steps: list[PlanStep]) -> None:
        self.steps = steps
        self.calls = 0

    def plan(self, ctx) -> Plan:
        self.calls += 1
        return Plan(
            id=f"p{self.calls}", instruction=ctx.instruction, backend=self.name, steps=self.steps
        )


# -- validation ---------------------------------------------------------------------
def test_validation_accepts_a_grounded_pick_and_place() -> None:
    world = World(scene().scene_graph())
    plan = Plan(id="a", instruction="x", backend="t", steps=pick_place(1))
    assert validate_plan(plan, world) is plan


@pytest.mark.parametrize(
    ("steps", "reason"),
    [
        (pick_place(42), "unknown object"),
        ([PlanStep(skill="place", object_id=1, target="bin")], "not holding"),
        ([PlanStep(skill="pick", object_id=1)], "ends holding"),
        (pick_place(1, target="the moon"), "unknown target"),
        (pick_place(1, target="99"), "unknown target"),
        (
            [
                PlanStep(skill="pick", object_id=1),
                PlanStep(skill="place", object_id=1, target_position=(2.0, 0.0, 0.0)),
            ],
            "target out of reach",
        ),
        (
            pick_place(1)
            + [PlanStep(skill="pick", object_id=2), PlanStep(skill="pick", object_id=1)],
            "hand not empty",
        ),
    ],
)
def test_validation_rejects(steps: list[PlanStep], reason: str) -> None:
    world = World(scene().scene_graph())
    with pytest.raises(PlanValidationError) as err:
        validate_plan(Plan(id="a", instruction="x", backend="t", steps=steps), world)
    assert err.value.reason == reason


def test_validation_rejects_picking_a_covered_object() -> None:
    s = scene()
    s.relations.append(
        RelationMsg(
            subject=2,
            relation="in",
            target=3,
            confidence=0.9,
            first_confirmed=1.0,
            last_confirmed=2.0,
        )
    )
    with pytest.raises(PlanValidationError) as err:
        validate_plan(
            Plan(id="a", instruction="x", backend="t", steps=pick_place(2)), World(s.scene_graph())
        )
    assert err.value.reason == "object covered"


def _plan_json(step: dict) -> str:
    return json.dumps({"id": "a", "instruction": "x", "backend": "v", "steps": [step]})


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json at all", "malformed json"),
        (_plan_json({"skill": "shell", "object_id": 1}), "unknown skill"),
        (_plan_json({"skill": "pick", "object_id": 1, "code": "rm -rf /"}), "invalid plan"),
        (_plan_json({"skill": "pick", "object_id": "1; drop"}), "invalid plan"),
        ("[1, 2]", "malformed json"),
    ],
)
def test_parse_plan_rejects_garbage(text: str, reason: str) -> None:
    with pytest.raises(PlanValidationError) as err:
        parse_plan(text)
    assert err.value.reason == reason


# -- execution ------------------------------------------------------------------------
def test_executor_runs_verifies_and_reports_progress() -> None:
    world = scene()
    statuses = []
    ex = PlanExecutor(
        FixedPlanBackendTestDouble(pick_place(1)), world, world, on_status=statuses.append
    )
    result = ex.run("put the red cube in the bin")
    assert result.state == "succeeded", result.reason
    assert [g.skill for g in world.goals] == ["pick", "place", "look"]  # look = verification
    assert World(world.scene_graph()).in_place(world.objects[1], "bin")
    states = [s.state for s in statuses]
    assert states[0] == "planning" and "executing" in states and "verifying" in states
    assert states[-1] == "succeeded" and statuses[-1].progress == 1.0


def test_invalid_plan_is_rejected_and_nothing_moves() -> None:
    world = scene()
    backend = FixedPlanBackendTestDouble(pick_place(77))  # a hallucinated id
    result = PlanExecutor(backend, world, world).run("put the unicorn in the bin")
    assert result.state == "rejected" and "unknown object" in result.reason
    assert world.goals == []


class SilentMemoryTestDouble(SymbolicWorldTestDouble):
    """Memory that has published no scene graph (not started, or not matched)."""

    def scene_graph(self):  # type: ignore[override]
        return None


def test_no_scene_graph_is_refused_as_memory_unavailable_not_unknown_object() -> None:
    world = SilentMemoryTestDouble(scene().objects)
    backend = FixedPlanBackendTestDouble(pick_place(1))
    result = PlanExecutor(backend, world, world).run("put the red cube in the bin")
    assert result.state == "rejected"
    assert result.reason == "memory unavailable: no scene graph from memory yet", result.reason
    assert world.goals == []


def test_replan_after_an_injected_failure() -> None:
    world = scene()
    world.fail["pick"] = 1
    plans: list[Plan] = []
    ex = PlanExecutor(FixedPlanBackendTestDouble(pick_place(2)), world, world, on_plan=plans.append)
    result = ex.run("put the green sphere in the bin")
    assert result.state == "succeeded", result.reason
    assert result.replans == 1 and len(plans) == 2 and plans[1].attempt == 1
    # the replan looks at the object again before the second pick
    assert [g.skill for g in world.goals] == ["pick", "look", "pick", "place", "look"]
    assert ex.counters["replans"] == 1


def test_replan_follows_an_object_that_memory_gave_a_new_id() -> None:
    world = scene()
    world.fail["pick"] = 1
    world.knock_to_new_id = True
    ex = PlanExecutor(FixedPlanBackendTestDouble(pick_place(2)), world, world)
    result = ex.run("put the green sphere in the bin")
    assert result.state == "succeeded", result.reason
    picks = [g.object_id for g in world.goals if g.skill == "pick"]
    assert picks == [2, 4]  # the retry picks the sphere under its new id
    assert World(world.scene_graph()).in_place(world.objects[4], "bin")


def test_a_pick_takes_memorys_yaw_of_the_moment() -> None:
    """The plan took memory's yaw from far views; a look before the pick changed
    it: the pick uses memory's yaw then (a yaw not memory's is kept)."""
    world = scene()
    world.objects[1] = world.objects[1].model_copy(update={"yaw": -1.2})
    steps = [PlanStep(skill="look", object_id=1), *pick_place(1)]
    steps[1] = steps[1].model_copy(update={"goal_yaw": -1.2})
    real_run = world.run

    def look_corrects_the_yaw(goal):
        if goal.skill == "look" and goal.object_id == 1:
            world.objects[1] = world.objects[1].model_copy(update={"yaw": None})
        return real_run(goal)

    world.run = look_corrects_the_yaw
    result = PlanExecutor(FixedPlanBackendTestDouble(steps), world, world).run("pick it")
    assert result.state == "succeeded", result.reason
    (pick,) = [g for g in world.goals if g.skill == "pick"]
    assert pick.goal_yaw is None
    world = scene()
    world.objects[1] = world.objects[1].model_copy(update={"yaw": 0.3})
    steps[1] = steps[1].model_copy(update={"goal_yaw": 0.9})  # the planner's own yaw
    PlanExecutor(FixedPlanBackendTestDouble(steps), world, world).run("pick it")
    assert [g.goal_yaw for g in world.goals if g.skill == "pick"] == [0.9]


def test_replan_searches_for_an_object_knocked_out_of_view() -> None:
    world = scene()
    world.fail["pick"] = 1
    world.knock_to_new_id = world.knock_out_of_view = True
    statuses = []
    ex = PlanExecutor(
        FixedPlanBackendTestDouble(pick_place(2)), world, world, on_status=statuses.append
    )
    result = ex.run("put the green sphere in the bin")
    assert result.state == "succeeded", result.reason
    looks = [g for g in world.goals if g.skill == "look"]
    # where it was last seen first, then the table regions until memory has it again
    assert looks[0].target_position is not None and looks[1].target.startswith("table_")
    assert [g.object_id for g in world.goals if g.skill == "pick"] == [2, 4]
    assert any("searching for the green sphere" in s.message for s in statuses)
    assert ex.counters["search_looks"] == 2


def test_an_object_knocked_over_is_found_again_though_memory_no_longer_names_it() -> None:
    """A missed grasp tips the green sphere over; memory calls what lies there a
    "green object". It is found again: unnamed, of its colour, first seen after
    the sphere, within reach of a push. Older, farther or other-coloured
    unnamed things are not taken for it."""
    from robot_memory.planner.recovery import PUSHED_M, find_again

    def seen_since(oid: int, label: str, xyz, first_seen: float = 3.0, **kw) -> MemoryObjectMsg:
        o = memory_object(oid, label, xyz, **kw)
        return o.model_copy(update={"first_seen": first_seen, "last_seen": first_seen + 1})

    world = scene()
    sphere = world.objects[2]  # last seen at t = 2
    world.objects[2] = sphere.model_copy(update={"status": "absent"})
    near = (0.1, 0.1, 0.02)  # 10 cm from where the sphere stood
    far = (0.0, 0.15 + PUSHED_M, 0.02)
    world.objects[4] = seen_since(4, "green object", near, first_seen=1.0)  # there before
    world.objects[5] = seen_since(5, "red object", near)
    world.objects[6] = seen_since(6, "green object", far)
    plan = Plan(id="p", instruction="x", backend="t", steps=pick_place(2))
    assert find_again(World(world.scene_graph()), sphere, world, plan) is None
    world.objects[7] = seen_since(7, "green object", near)
    assert find_again(World(world.scene_graph()), sphere, world, plan).id == 7
    # a name that still votes for its kind counts too; another kind alone does not
    votes = {"green can": 2.0, "green sphere": 1.0}
    world.objects[7] = seen_since(7, "green can", near, label_votes=votes)
    assert find_again(World(world.scene_graph()), sphere, world, plan).id == 7
    world.objects[7] = seen_since(7, "green can", near)
    assert find_again(World(world.scene_graph()), sphere, world, plan) is None


def test_a_failed_look_does_not_end_the_task() -> None:
    world = scene()
    world.fail["look"] = 1  # the look before the pick (from the plan) does not reach its pose
    steps = [PlanStep(skill="look", object_id=2), *pick_place(2)]
    ex = PlanExecutor(FixedPlanBackendTestDouble(steps), world, world)
    result = ex.run("put the green sphere in the bin")
    assert result.state == "succeeded", result.reason
    assert ex.counters["look_failed"] == 1


def test_a_place_memory_cannot_confirm_anywhere_does_not_end_the_task() -> None:
    """The cube is placed but memory never sees it again (a search finds nothing):
    the sphere is still put away, and the result says which place went unseen."""
    world = scene()
    world.lost_after_place = {1}
    steps = [*pick_place(1, "table_left"), *pick_place(2)]
    ex = PlanExecutor(FixedPlanBackendTestDouble(steps), world, world)
    result = ex.run("tidy up")
    assert result.state == "succeeded"
    assert "not seen after its place: red cube" in result.reason
    assert next(r.outcome for r in result.steps if r.step.skill == "place") == "not_verified"
    assert [g.object_id for g in world.goals if g.skill == "pick"] == [1, 2]
    assert ex.counters["place_unverified"] == 1 and ex.counters["search_looks"] >= 1
    assert World(world.scene_graph()).in_place(world.objects[2], "bin")


def test_a_failed_place_skill_still_ends_the_task_when_the_object_is_lost() -> None:
    world = scene()
    world.fail["place"] = 1
    real_run = world.run

    def place_fails_and_memory_loses_the_cube(goal):
        outcome = real_run(goal)
        if goal.skill == "place":  # dropped somewhere memory never sees
            world.objects[1] = world.objects[1].model_copy(update={"status": "absent"})
        return outcome

    world.run = place_fails_and_memory_loses_the_cube
    ex = PlanExecutor(FixedPlanBackendTestDouble(pick_place(1)), world, world)
    result = ex.run("put the red cube in the bin")
    assert result.state == "failed" and "could not find the red cube again" in result.reason


def test_gives_up_after_max_attempts() -> None:
    world = scene()
    world.fail["pick"] = 5
    ex = PlanExecutor(
        FixedPlanBackendTestDouble(pick_place(2)),
        world,
        world,
        config=ExecutorConfig(max_attempts=2),
    )
    result = ex.run("put the green sphere in the bin")
    assert result.state == "failed" and "injected failure" in result.reason
    assert [g.skill for g in world.goals].count("pick") == 2


def test_memoryless_ablation_clears_memory_before_planning_and_each_step() -> None:
    world = scene()
    ex = PlanExecutor(FixedPlanBackendTestDouble(pick_place(1)), world, world)
    result = ex.run("put the red cube in the bin", memoryless=True)
    assert result.state == "succeeded"
    assert world.cleared == 1 + 2  # before planning, before the pick, before the place


def test_failure_is_recorded_and_persisted(tmp_path) -> None:
    world = scene()
    world.fail["pick"] = 1
    exp = ExperienceMemory(tmp_path / "experience.json")
    PlanExecutor(FixedPlanBackendTestDouble(pick_place(2)), world, world, exp).run(
        "put the green sphere in the bin"
    )
    again = ExperienceMemory(tmp_path / "experience.json")
    assert len(again.entries) == 1
    e = again.entries[0]
    assert (e.skill, e.object_shape, e.object_colour, e.rule) == (
        "pick",
        "sphere",
        "green",
        "look_before_pick",
    )
    assert "injected failure" in e.reason


# -- experience memory changes a later plan (real offline planner + MiniLM) ---------------
@pytest.fixture(scope="module")
def embedder():
    from robot_memory.memory.text_grounding import TextEmbedder

    return TextEmbedder()


def test_experience_changes_a_later_plan(tmp_path, embedder) -> None:
    from robot_memory.planner.offline_backend import OfflinePlanner

    planner = OfflinePlanner(embedder=embedder)
    path = tmp_path / "experience.json"
    # without experience: pick, place (+ the verification look)
    world = scene()
    fresh = PlanExecutor(planner, world, world, ExperienceMemory(path, embedder))
    first = fresh.run("put the green sphere in the bin")
    assert first.state == "succeeded"
    assert [s.skill for s in first.plans[0].steps] == ["pick", "place"]
    assert first.plans[0].experiences == []
    # a failure of the pick is reflected on and persisted
    world = scene()
    world.fail["pick"] = 1
    failed_once = PlanExecutor(planner, world, world, ExperienceMemory(path, embedder))
    assert failed_once.run("put the green sphere in the bin").state == "succeeded"
    # a later session (new process: the file is read again), other words, same object
    world = scene()
    later = PlanExecutor(planner, world, world, ExperienceMemory(path, embedder))
    result = later.run("throw the green ball into the bin")
    assert result.state == "succeeded", result.reason
    plan = result.plans[0]
    assert [s.skill for s in plan.steps] == ["look", "pick", "place"]
    assert plan.steps[0].object_id == 2 and plan.experiences
    # an unrelated object is not affected by the sphere's lesson
    world = scene()
    other = PlanExecutor(planner, world, world, ExperienceMemory(path, embedder))
    cube = other.run("put the red cube in the bin").plans[0]
    assert [s.skill for s in cube.steps] == ["pick", "place"] and cube.experiences == []


def test_an_object_seen_again_may_read_a_neighbouring_colour_or_shape_word() -> None:
    from robot_memory.planner.recovery import same_kind

    def o(label: str) -> MemoryObjectMsg:
        return memory_object(1, label, (0.1, 0.1, 0.02))

    assert same_kind(o("black screwdriver"), o("grey screwdriver"))  # shading
    assert same_kind(o("red cube"), o("red box"))  # one shape family
    assert not same_kind(o("red mug"), o("blue mug"))
    assert not same_kind(o("red mug"), o("red can"))
    # a bottle seen from its top, taken for a can, with a third of its votes as a bottle
    top_view = o("blue can").model_copy(update={"label_votes": {"blue can": 4, "blue bottle": 2}})
    bottle = o("blue bottle").model_copy(update={"label_votes": {"blue bottle": 9}})
    assert same_kind(top_view, bottle) and same_kind(bottle, top_view)
    stray = o("blue can").model_copy(update={"label_votes": {"blue can": 9, "blue bottle": 1}})
    assert not same_kind(stray, bottle)  # a tenth of the votes is no name
