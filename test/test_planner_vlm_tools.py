"""The VLM planner with memory as tools, against the local chat-completions TEST
DOUBLE (real HTTP, the official openai client) and a real SceneMemory: the
model learns ids by calling memory's queries; an unknown tool, bad arguments
and a model that never stops calling tools are refused with a reason."""

from __future__ import annotations

import json

import pytest
from chat_completions_test_double import ChatCompletionsTestDouble
from test_memory_core import frame, obs

from robot_memory.memory import SceneMemory
from robot_memory.planner.vlm_backend import VLMPlanner
from robot_memory.planner.vlm_config import VLMConfig
from robot_memory.planner.vlm_tools import TOOLS
from robot_memory.planner.world import PlanningContext, World
from robot_memory.schemas import MemoryAnswer, MemoryQuery

KEY = "sk-test-double-tools-0123456789"
KEY_ENV = "ROBOT_MEMORY_TEST_VLM_TOOLS_KEY"


class CountingMemoryPort:
    """A MemoryPort straight onto a SceneMemory that counts the queries it runs."""

    def __init__(self, memory: SceneMemory) -> None:
        self.memory, self.queries = memory, []

    def scene_graph(self):
        return self.memory.snapshot()

    def query(self, query: MemoryQuery) -> MemoryAnswer:
        self.queries.append(query)
        return self.memory.answer(query)

    def refresh(self):
        return self.memory.snapshot()

    def clear(self) -> None:
        self.memory.reset()


@pytest.fixture
def cell():
    memory = SceneMemory()
    for k in range(3):
        memory.update(frame(0.1 * k, [obs("red cube", (-0.2, 0.1, 0.025)),
                                      obs("green cube", (0.1, -0.2, 0.025))]))  # fmt: skip
    red = next(o.id for o in memory.objects() if o.label == "red cube")
    yield memory, red
    memory.close()


@pytest.fixture
def double(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    with ChatCompletionsTestDouble(api_key=KEY) as d:
        yield d


def planner(double, **cfg) -> VLMPlanner:
    opts = {"timeout_s": 5.0, "max_retries": 1, "api_key_env": KEY_ENV, "memory_tools": True}
    return VLMPlanner(VLMConfig(base_url=double.base_url, model="test-vlm", **{**opts, **cfg}))


def pick_into_bin(object_id: int) -> dict:
    step = {"target_position": None, "goal_yaw": None, "why": ""}
    return {"kind": "motion", "answer": "", "answer_object_id": None, "answer_place": None,
            "notes": [], "steps": [{**step, "skill": "pick", "object_id": object_id,
                                    "target": None},
                                   {**step, "skill": "place", "object_id": object_id,
                                    "target": "bin"}]}  # fmt: skip


def tool_messages(request) -> list[dict]:
    return [json.loads(m["content"]) for m in request.messages if m["role"] == "tool"]


def test_the_model_asks_memory_through_tools_and_its_plan_is_used(double, cell):
    memory, red = cell
    port = CountingMemoryPort(memory)
    double.push_tool_calls(("find_objects", {"text": "red cube", "top_k": 2}))
    double.push_content(pick_into_bin(red))
    p = planner(double)
    ctx = PlanningContext("put the red cube in the bin", World(memory.snapshot()), memory=port)
    plan = p.plan(ctx)
    assert plan.backend == "vlm:test-vlm" and plan.steps[0].object_id == red
    first, second = double.requests
    assert {t["function"]["name"] for t in first.body["tools"]} == set(TOOLS)
    text = "\n".join(first.texts())
    assert "green cube" not in text and "Memory holds 2 objects" in text  # no graph summary
    (answer,) = tool_messages(second)
    assert answer["ok"] and answer["results"][0]["id"] == red
    assert answer["results"][0]["label"] == "red cube"
    assert [q.kind for q in port.queries] == ["find"] and p.counters["tool_calls"] == 1


def test_an_unknown_tool_and_bad_arguments_are_refused_and_nothing_is_queried(double, cell):
    memory, red = cell
    port = CountingMemoryPort(memory)
    double.push_tool_calls(
        ("delete_memory", {}),
        ("find_objects", '{"text": "cube", "top_k": 1e9}'),
        ("object_history", '{"object_id": "abc"}'),
        ("changed_since", '{"since": NaN}'),
        ("memory_events", '{"since": 10, "until": 5}'),
        ("last_seen", "{}"),
    )
    double.push_content(pick_into_bin(red))
    p = planner(double)
    plan = p.plan(PlanningContext("put the red cube in the bin", World(memory.snapshot()), port))
    assert plan.steps[0].object_id == red  # the model recovered
    answers = tool_messages(double.requests[1])
    assert len(answers) == 6 and not any(a["ok"] for a in answers)
    assert "unknown tool" in answers[0]["error"] and "find_objects" in answers[0]["error"]
    assert all(a["error"].startswith("bad arguments") for a in answers[1:])
    assert port.queries == [] and p.counters["tool_calls"] == 0
    assert p.rejected_by_reason == {"tool: unknown tool": 1, "tool: bad arguments": 5}


def test_a_model_that_keeps_calling_tools_falls_back(double, cell):
    memory, _ = cell

    class LookFallbackTestStub:
        name = "offline"

        def plan(self, ctx):
            from robot_memory.planner.plan import Plan, PlanStep

            step = PlanStep(skill="look", target="bin", why="test stub")
            return Plan(id="stub", instruction=ctx.instruction, backend=self.name, steps=[step])

    for _ in range(3):
        double.push_tool_calls(("find_objects", {"text": "cube"}))
    p = planner(double, max_tool_rounds=3)
    p.fallback = LookFallbackTestStub()
    ctx = PlanningContext("tidy up", World(memory.snapshot()), CountingMemoryPort(memory))
    plan = p.plan(ctx)
    assert plan.backend == "offline (vlm fallback: tool loop)"
    assert len(double.requests) == 3 and p.counters["tool_calls"] == 3
    assert p.errors_by_reason == {"tool loop": 1}


def test_without_a_memory_port_the_graph_summary_is_sent(double, cell):
    memory, red = cell
    double.push_content(pick_into_bin(red))
    planner(double).plan(PlanningContext("put the red cube in the bin", World(memory.snapshot())))
    (req,) = double.requests
    assert "tools" not in req.body and "green cube" in "\n".join(req.texts())
