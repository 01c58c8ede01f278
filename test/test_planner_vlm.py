"""The VLM planner backend against a local chat-completions TEST DOUBLE (real HTTP,
the official openai client; no network, no model)."""

from __future__ import annotations

import base64
import logging

import numpy as np
import pytest
from chat_completions_test_double import ChatCompletionsTestDouble, ScriptedReply

from robot_memory.planner.experience import Experience
from robot_memory.planner.plan import Plan, PlanningError, PlanStep
from robot_memory.planner.validation import validate_plan
from robot_memory.planner.vlm_backend import VLMPlanner
from robot_memory.planner.vlm_config import VLMConfig, VLMConfigError
from robot_memory.planner.world import PlanningContext, World
from robot_memory.schemas import MemoryObjectMsg, PlaceMsg, RelationMsg, SceneGraphMsg

KEY = "sk-test-double-0123456789abcdef"
KEY_ENV = "ROBOT_MEMORY_TEST_VLM_KEY"


def obj(object_id: int, centroid, label: str, status="visible", container=False):
    c = np.asarray(centroid, dtype=float)
    return MemoryObjectMsg(
        id=object_id,
        label=label,
        color=label.split()[0],
        shape=label.split()[-1],
        centroid=tuple(c),
        bbox_min=tuple(c - 0.02),
        bbox_max=tuple(c + 0.02),
        confidence=0.9,
        observations=5,
        first_seen=0.0,
        last_seen=1.0,
        status=status,
        container=container,
    )


BIN = ((0.05, 0.25, 0.0), (0.25, 0.45, 0.08))
GRAPH = SceneGraphMsg(
    seq=3,
    stamp=1.0,
    objects=[
        obj(4, (0.1, -0.1, 0.02), "red cube"),
        obj(5, (0.2, 0.0, 0.02), "blue cube", status="absent"),
        obj(7, (0.0, 0.1, 0.03), "green cylinder", status="remembered"),
    ],
    places=[PlaceMsg(id="bin", kind="container", label="bin", bbox_min=BIN[0], bbox_max=BIN[1])],
    relations=[
        RelationMsg(
            subject=4, relation="on", target=7, confidence=0.5, first_confirmed=0, last_confirmed=1
        )
    ],
)
WORLD = World(GRAPH)
PICK_PLACE = {
    "kind": "motion",
    "steps": [
        {"skill": "pick", "object_id": 4, "target": None, "target_position": None,
         "goal_yaw": None, "why": "the red cube"},
        {"skill": "place", "object_id": 4, "target": "bin", "target_position": None,
         "goal_yaw": None, "why": "into the bin"},
    ],
    "answer": "", "answer_object_id": None, "answer_place": None, "notes": [],
}  # fmt: skip


def plan_with(**step_changes) -> dict:
    steps = [dict(s) for s in PICK_PLACE["steps"]]
    steps[0].update(step_changes)
    return {**PICK_PLACE, "steps": steps}


class FixedLookFallbackTestStub:
    """TEST STUB of a fallback backend: always one look at the bin."""

    name = "offline"

    def __init__(self) -> None:
        self.calls = 0

    def plan(self, ctx: PlanningContext) -> Plan:
        self.calls += 1
        step = PlanStep(skill="look", target="bin", why="test stub")
        return Plan(id="stub", instruction=ctx.instruction, backend=self.name, steps=[step])


@pytest.fixture
def double(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    with ChatCompletionsTestDouble(api_key=KEY) as d:
        yield d


def planner(double, fallback=None, **cfg) -> VLMPlanner:
    opts = {"timeout_s": 5.0, "max_retries": 1, "api_key_env": KEY_ENV, **cfg}
    config = VLMConfig(base_url=double.base_url, model="test-vlm", **opts)
    return VLMPlanner(config, fallback=fallback)


def ctx(**kw) -> PlanningContext:
    return PlanningContext(instruction="put the red cube in the bin", world=WORLD, **kw)


def test_valid_plan_is_used_and_the_request_carries_the_scene(double):
    image = np.zeros((48, 64, 3), np.uint8)
    image[:, :, 0] = 200
    exp = Experience(
        instruction="put the red cube away",
        skill="pick",
        object_label="red cube",
        reason="slipped",
        reflection="pick of the red cube failed (slipped)",
        rule="look_before_pick",
    )
    double.push_content(PICK_PLACE)
    stub = FixedLookFallbackTestStub()
    p = planner(double, fallback=stub)
    plan = p.plan(ctx(image=image, experiences=[exp]))
    assert plan.backend == "vlm:test-vlm"
    assert [s.skill for s in plan.steps] == ["pick", "place"]
    assert plan.steps[1].target == "bin" and plan.experiences == [exp.id]
    assert stub.calls == 0 and p.counters["vlm_plans"] == 1 and p.counters["fallbacks"] == 0
    (req,) = double.requests
    assert req.authorized and req.body["model"] == "test-vlm"
    assert req.messages[0]["role"] == "system" and "pick, place, look" in req.messages[0]["content"]
    text = "\n".join(req.texts())
    assert "put the red cube in the bin" in text and "green cylinder" in text
    assert exp.as_prompt_line() in text and "Hand: empty" in text
    (url,) = req.image_urls()
    assert url.startswith("data:image/jpeg;base64,")
    assert base64.b64decode(url.split(",", 1)[1])[:2] == b"\xff\xd8"  # a JPEG
    fmt = req.body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    step = fmt["json_schema"]["schema"]["properties"]["steps"]["items"]["properties"]
    assert step["skill"]["enum"] == ["pick", "place", "look"]
    assert step["object_id"]["enum"] == [4, 7, None]  # the absent 5 is not offered
    assert set(step["target"]["enum"]) == {"bin", "4", "7", "", None}


def test_text_only_server_and_json_object_mode(double):
    double.push_content(PICK_PLACE)
    p = planner(double, send_image=False, structured_output="json_object")
    plan = p.plan(ctx(image=np.zeros((8, 8, 3), np.uint8)))
    assert plan.backend == "vlm:test-vlm"
    (req,) = double.requests
    assert req.image_urls() == [] and isinstance(req.messages[1]["content"], str)
    assert req.body["response_format"] == {"type": "json_object"}


def test_garbage_then_garbage_falls_back_to_offline(double):
    double.push(ScriptedReply(content="not json"), ScriptedReply(content="Sure! Here is a plan:"))
    stub = FixedLookFallbackTestStub()
    p = planner(double, fallback=stub)
    plan = p.plan(ctx())
    assert plan.backend == "offline (vlm fallback: malformed json)"
    assert stub.calls == 1 and len(double.requests) == 2
    assert p.rejected_by_reason == {"malformed json": 2} and p.counters["retries"] == 1
    retry = double.requests[1].messages
    assert retry[-2] == {"role": "assistant", "content": "not json"}
    assert "rejected: malformed json" in retry[-1]["content"]


def test_hallucinated_object_id_is_rejected_and_nothing_of_it_runs(double):
    bad = plan_with(object_id=42)
    bad["steps"][1]["object_id"] = 42
    double.push_content(bad)
    double.push_content(bad)
    stub = FixedLookFallbackTestStub()
    p = planner(double, fallback=stub)
    plan = p.plan(ctx())
    assert plan.backend == "offline (vlm fallback: unknown object)"
    assert p.rejected_by_reason == {"unknown object": 2}
    assert "memory holds no object 42" in double.requests[1].messages[-1]["content"]
    executed = [s.object_id for s in plan.steps if s.skill in ("pick", "place")]
    assert executed == []  # only the stub's look: no skill ever touched object 42
    assert all(s.object_id in (None, *WORLD.objects) for s in plan.steps)


def test_rejected_then_corrected_plan_is_used(double):
    double.push_content(plan_with(object_id=5))  # remembered as gone
    double.push_content(PICK_PLACE)
    p = planner(double, fallback=FixedLookFallbackTestStub())
    plan = p.plan(ctx())
    assert plan.backend == "vlm:test-vlm" and p.rejected_by_reason == {"object absent": 1}
    assert "object absent" in double.requests[1].messages[-1]["content"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (plan_with(skill="shell"), "unknown skill"),
        (plan_with(skill="exec", why="import os; os.system('rm -rf /')"), "unknown skill"),
        (plan_with(code="__import__('os').system('true')"), "extra field"),
        ({**PICK_PLACE, "code": "print(1)"}, "extra field"),
        ({**PICK_PLACE, "backend": "vlm:other"}, "extra field"),
        ({**PICK_PLACE, "steps": [PICK_PLACE["steps"][0]]}, "ends holding"),
        ({**PICK_PLACE, "steps": "pick 4"}, "invalid plan"),
        ([1, 2], "malformed json"),
    ],
)
def test_unsafe_or_invalid_output_is_rejected(double, content, reason):
    double.push_content(content)
    p = planner(double, max_retries=0)
    with pytest.raises(PlanningError) as err:
        p.plan(ctx())
    assert err.value.reason == f"vlm {reason}"
    assert p.rejected_by_reason == {reason: 1} and p.counters["vlm_plans"] == 0


def test_truncated_output_is_rejected(double):
    double.push_content('{"kind": "motion", "steps": [{"skill": "pi', finish_reason="length")
    stub = FixedLookFallbackTestStub()
    plan = planner(double, fallback=stub, max_retries=0).plan(ctx())
    assert plan.backend == "offline (vlm fallback: truncated output)"


def test_timeout_retries_then_falls_back(double):
    double.push_sleep(3.0, PICK_PLACE)
    double.push_sleep(3.0, PICK_PLACE)
    stub = FixedLookFallbackTestStub()
    p = planner(double, fallback=stub, timeout_s=0.3, max_retries=1)
    plan = p.plan(ctx())
    assert plan.backend == "offline (vlm fallback: timeout)"
    assert p.errors_by_reason == {"timeout": 2} and len(double.requests) == 2
    assert p.diagnostics()["last_failure"] == "timeout"


def test_http_500_then_success_is_retried_and_used(double):
    double.push_status(500)
    double.push_content(PICK_PLACE)
    p = planner(double, fallback=FixedLookFallbackTestStub())
    plan = p.plan(ctx())
    assert plan.backend == "vlm:test-vlm"
    assert p.errors_by_reason == {"http 500": 1} and p.counters["retries"] == 1


def test_wrong_key_is_not_retried(double, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-wrong")
    double.push_content(PICK_PLACE)
    p = planner(double, fallback=FixedLookFallbackTestStub(), max_retries=3)
    plan = p.plan(ctx())
    assert plan.backend == "offline (vlm fallback: http 401)"
    assert len(double.requests) == 1 and not double.requests[0].authorized


def test_api_key_never_in_logs_errors_repr_or_counters(double, caplog):
    caplog.set_level(logging.DEBUG)
    double.push_status(500, echo_auth_in_error=True)  # a proxy that leaks the header
    double.push_sleep(3.0)
    p = planner(double, timeout_s=0.3, max_retries=1)
    with pytest.raises(PlanningError) as err:
        p.plan(ctx())
    assert double.requests[0].authorized  # the key was sent, as a bearer header
    assert err.value.reason == "vlm timeout"
    seen = [caplog.text, str(err.value), repr(err.value), repr(p), str(p.config), repr(p.config)]
    seen += [str(p.diagnostics()), str(p.config.as_dict())]
    assert any("scripted HTTP 500" in s for s in seen)  # the leaky error was logged...
    for s in seen:
        assert KEY not in s  # ...with the key redacted
    assert "***" in caplog.text


def test_no_fallback_raises_planning_error(double):
    double.push_content("not json")
    with pytest.raises(PlanningError, match="vlm malformed json"):
        planner(double, max_retries=0).plan(ctx())


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"base_url": "localhost:8000"}, "base_url must be an http(s) URL"),
        ({"model": " "}, "model must name the served model"),
        ({"timeout_s": 0}, "timeout_s must be in (0, 600]"),
        ({"max_retries": -1}, "max_retries must be an integer in [0, 10]"),
        ({"temperature": 3.0}, "temperature must be in [0, 2]"),
        ({"structured_output": "xml"}, "structured_output must be one of"),
        ({"max_tokens": 2}, "max_tokens must be an integer"),
        ({"send_image": "yes"}, "send_image must be true or false"),
    ],
)
def test_config_validation_errors_are_clear(changes, message):
    with pytest.raises(VLMConfigError) as err:
        VLMConfig(**{"model": "m", **changes})
    assert message in str(err.value)


def test_config_refuses_an_inline_key_without_echoing_it():
    with pytest.raises(VLMConfigError) as err:
        VLMConfig(model="m", api_key_env=KEY + "-not/a/name")
    assert "NAME of an environment variable" in str(err.value) and KEY not in str(err.value)
    with pytest.raises(VLMConfigError, match="api_key is not a config field") as err:
        VLMConfig.from_dict({"model": "m", "api_key": KEY})
    assert KEY not in str(err.value)
    with pytest.raises(VLMConfigError, match=r"unknown VLM config field\(s\) \['modle'\]"):
        VLMConfig.from_dict({"modle": "m"})


def test_config_from_env(monkeypatch):
    monkeypatch.setenv("ROBOT_MEMORY_VLM_BASE_URL", "http://gpu-box:11434/v1")
    monkeypatch.setenv("ROBOT_MEMORY_VLM_MODEL", "qwen2.5vl:7b")
    monkeypatch.setenv("ROBOT_MEMORY_VLM_TIMEOUT_S", "7.5")
    monkeypatch.setenv("ROBOT_MEMORY_VLM_MAX_RETRIES", "0")
    monkeypatch.setenv("ROBOT_MEMORY_VLM_SEND_IMAGE", "false")
    cfg = VLMConfig.from_env(structured_output="json_object")
    assert (cfg.base_url, cfg.model, cfg.timeout_s, cfg.max_retries) == (
        "http://gpu-box:11434/v1",
        "qwen2.5vl:7b",
        7.5,
        0,
    )
    assert cfg.send_image is False and cfg.structured_output == "json_object"
    monkeypatch.setenv("ROBOT_MEMORY_VLM_TIMEOUT_S", "soon")
    with pytest.raises(VLMConfigError, match="ROBOT_MEMORY_VLM_TIMEOUT_S"):
        VLMConfig.from_env()


def test_fallback_to_the_real_offline_planner(double):
    offline = pytest.importorskip("robot_memory.planner.offline_backend")
    double.push_content("not json")
    p = planner(double, fallback=offline.OfflinePlanner(), max_retries=0)
    plan = p.plan(ctx())
    assert plan.backend.endswith("(vlm fallback: malformed json)")
    assert plan.backend.startswith("offline")
    validate_plan(plan, WORLD)  # a real plan over the same world: pick 4, place in the bin
    assert [(s.skill, s.object_id) for s in plan.steps][:2] == [("pick", 4), ("place", 4)]


class RecordingSkillsTestDouble:
    """A skill port that only records what it was asked to run (a test double)."""

    def __init__(self) -> None:
        self.goals: list = []

    def run(self, goal):
        from robot_memory.planner.world import SkillOutcome

        self.goals.append(goal)
        return SkillOutcome("succeeded")


class FixedGraphMemoryTestDouble:
    """A memory port over the fixed GRAPH (a test double)."""

    def scene_graph(self):
        return GRAPH

    def refresh(self):
        return GRAPH

    def query(self, query):
        from robot_memory.schemas import MemoryAnswer

        return MemoryAnswer(id=query.id, kind=query.kind, ok=False, error="not in this double")

    def clear(self) -> None:
        pass


BAD_OUTPUTS = [
    "not json at all",
    '{"kind": "motion", "steps": [',  # cut off
    plan_with(object_id=42),  # hallucinated id
    plan_with(object_id=5),  # remembered as gone
    plan_with(skill="shell"),
    plan_with(skill="exec", why="import os; os.system('rm -rf /')"),
    plan_with(code="__import__('os').system('true')"),
    {**PICK_PLACE, "code": "print(1)"},
    {**PICK_PLACE, "steps": [PICK_PLACE["steps"][1]]},  # place without a pick
    {**PICK_PLACE, "steps": [PICK_PLACE["steps"][0]]},  # ends holding
    plan_with(skill="place", target_position=[5.0, 0.0, 0.0]),  # off the table
    {**PICK_PLACE, "steps": "pick 4"},
    [1, 2],
]


@pytest.mark.parametrize("content", BAD_OUTPUTS)
def test_bad_vlm_output_causes_zero_executions_through_the_executor(double, content):
    from robot_memory.planner.executor import PlanExecutor

    double.push_content(content)
    skills = RecordingSkillsTestDouble()
    p = planner(double, max_retries=0)  # no fallback: the VLM's answer or nothing
    result = PlanExecutor(p, FixedGraphMemoryTestDouble(), skills).run("put the red cube away")
    assert result.state == "rejected", result.reason
    assert skills.goals == []
    assert sum(p.rejected_by_reason.values()) == 1
