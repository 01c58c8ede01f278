"""The input boundary's pieces without DDS (issue 13): the one JSON decoder
(still what reads VLM plans, old bags' JSON ground truth and JSON goals from
files) refuses every crash probe with a PayloadError and nothing else; the
boundary counts typed and unexpected failures and logs them throttled; the
camera sync counts every frame it drops; instruction checks.
"""

from __future__ import annotations

import pytest

from robot_memory.health.counters import HealthCounters
from robot_memory.nodes.input_boundary import InputBoundary
from robot_memory.payload_codec import parse_payload, payload_id
from robot_memory.perception.camera_sync import CameraSync
from robot_memory.planner.plan import checked_instruction
from robot_memory.planner.validation import PlanValidationError, parse_plan
from robot_memory.schemas import (
    MemoryAnswer,
    MemoryQuery,
    PayloadError,
    PolicyGoalMsg,
    SceneGraphMsg,
)

HEAD = '{"schema_version": 1, "id": "probe", "seed": 1, "kind": "find", "x": '
DEEP = HEAD + "[" * 100_000 + "]" * 100_000 + "}"
BIG_INT = '{"schema_version": 1, "id": "probe", "seed": ' + "9" * 5000 + "}"
HUGE = '{"schema_version": 1, "id": "' + "x" * 10_000_000 + '"}'
PROBES = [
    HUGE,
    DEEP,
    BIG_INT,
    "",
    "[1, 2, 3]",
    "null",
    '"just a string"',
    "{not json",
    '{"schema_version": 1, "id": 5, "kind": [1], "seed": "x", "objects": {}}',
    '{"schema_version": 1, "id": "n", "seed": NaN, "stamp": Infinity, "goal_yaw": 1e300}',
    '{"schema_version": 1, "id": "' + "[" * 900 + '"}',
    '{"schema_version": 1, "id": "d", "results": [' + "[" * 900 + "]" * 900 + "]}",
    "{" * 50_000,
]


@pytest.mark.parametrize("text", [*PROBES, b"\xff\xfe", 5, None], ids=lambda t: repr(t)[:30])
def test_every_probe_is_a_payload_error_never_anything_else(text):
    for model in (MemoryQuery, SceneGraphMsg, PolicyGoalMsg, MemoryAnswer):
        with pytest.raises(PayloadError):
            parse_payload(model, text)
    assert isinstance(payload_id(text), str) and len(payload_id(text)) <= 128


def test_a_huge_integer_and_deep_nesting_are_malformed_json():
    assert _reason(BIG_INT) == "malformed json"
    assert _reason(DEEP) == "malformed json"
    assert _reason(HUGE) == "payload too large"
    with pytest.raises(PlanValidationError) as err:
        parse_plan('{"steps": ' + "[" * 100 + "]" * 100 + "}")
    assert err.value.reason == "malformed json"


def test_memoryless_instructions_are_refused_unless_allowed():
    text = "put the red cube in the bin"
    assert checked_instruction(text, memoryless=True).memoryless
    with pytest.raises(PayloadError) as err:
        checked_instruction(text, memoryless=True, allow_memoryless=False)
    assert err.value.reason == "memoryless refused"
    for bad, reason in (("  ", "empty instruction"), ("x" * 20_000, "instruction too long")):
        with pytest.raises(PayloadError) as err:
            checked_instruction(bad)
        assert err.value.reason == reason


def test_camera_sync_counts_every_frame_dropped_for_lack_of_a_pose():
    drops: list[str] = []
    sync = CameraSync("front", on_drop=lambda reason, _detail: drops.append(reason))
    sync.set_info("K")
    for i in range(30):  # the poses stop
        sync.add_color(i * 0.1, "c")
        sync.add_depth(i * 0.1, "d")
    assert drops == ["missing pose"] * 27  # the last 0.3 s may still get theirs
    for i in range(30, 33):
        sync.add_color(i * 0.1, "c")
        sync.add_depth(i * 0.1, "d")
        assert sync.add_pose(i * 0.1, "p") is not None
    assert drops == ["missing pose"] * 30


class _Logger:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def warning(self, text: str) -> None:
        self.lines.append(text)

    error = warning


class _Node:
    def __init__(self) -> None:
        self.logger = _Logger()

    def get_name(self) -> str:
        return "fake"

    def get_logger(self) -> _Logger:
        return self.logger


def test_the_boundary_counts_typed_and_unexpected_failures_and_logs_them_throttled():
    node = _Node()
    boundary = InputBoundary(node, HealthCounters("fake"))  # type: ignore[arg-type]

    def handler(msg: str) -> None:
        if msg == "typed":
            raise PayloadError("malformed json", "x")
        raise KeyError(msg)

    guarded = boundary.guard("/t", handler, prefix="t ")
    for msg in ["typed", "typed", "boom", "boom", "boom"]:
        guarded(msg)  # never raises
    health = boundary.health
    assert health.rejected("t malformed json") == 2
    assert health.rejected("/t: internal error (KeyError)") == 3
    tracebacks = [line for line in node.logger.lines if "Traceback" in line]
    assert len(tracebacks) == 1  # once per reason
    assert len(node.logger.lines) == 3  # one line per reason within the second, + the trace


def _reason(text: str) -> str:
    with pytest.raises(PayloadError) as err:
        parse_payload(MemoryQuery, text)
    return err.value.reason
