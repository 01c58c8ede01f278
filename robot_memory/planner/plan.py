"""Plans and planner status: what ``/planner/plan`` and ``/planner/status`` carry (ROS-free;
the node layer converts them to and from their messages).

A plan is a short sequence of **whitelisted skills** (``SKILLS``) grounded in
memory: every object is a memory object id from ``/memory/scene_graph``, every
destination a place id of the cell ("bin", "table_left", ...), a memory object
id as text, or a position on the table. Nothing in a plan is code: backends
(the offline planner, a VLM) only fill these fields, and
:func:`robot_memory.planner.validation.validate_plan` checks every plan against
the schema, the remembered scene and each skill's preconditions before a single
step runs.

Skills (each one becomes one ``RunSkill`` goal on ``/policy/run_skill``):

* ``pick``: ``object_id`` (required); ``goal_yaw`` optional (memory's grasp yaw);
* ``place``: the held ``object_id`` (required, for verification) and
  ``target`` (place id or object id text) or ``target_position`` [m, world];
* ``look``: point the wrist camera at ``target`` (a place id or object id text)
  or ``target_position``, so memory sees it again (verification, re-grounding).

A question ("where is the cup?") gives ``kind="answer"``: no steps, the answer
in ``answer`` (text) and ``answer_object_id`` / ``answer_position`` /
``answer_place`` (structured, for evaluation).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from robot_memory.schemas import Payload, PayloadError, Vec3

SKILLS: tuple[str, ...] = ("pick", "place", "look")
SkillName = Literal["pick", "place", "look"]
PlanKind = Literal["motion", "answer"]
#: Longest plan accepted (a plan longer than this is a runaway, not a plan).
MAX_STEPS = 24

PlannerState = Literal[
    "idle",
    "planning",
    "executing",
    "verifying",
    "replanning",
    "succeeded",
    "answered",
    "failed",
    "rejected",
    "canceled",
]
TERMINAL_STATES = frozenset({"succeeded", "answered", "failed", "rejected", "canceled"})


class PlanStep(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    skill: SkillName
    object_id: int | None = Field(default=None, description="memory object id")
    target: str = Field(default="", max_length=64, description="place id or object id text")
    target_position: Vec3 | None = Field(default=None, description="world frame [m]")
    goal_yaw: float | None = Field(default=None, ge=-7.0, le=7.0, description="hand yaw [rad]")
    why: str = Field(default="", max_length=240, description="one line, for people")

    def describe(self) -> str:
        where = self.target or (
            "({:.2f}, {:.2f})".format(*self.target_position[:2]) if self.target_position else ""
        )
        obj = "" if self.object_id is None else f" #{self.object_id}"
        return f"{self.skill}{obj}{' -> ' + where if where else ''}"


class Plan(Payload):
    """``/planner/plan``: what the planner is about to do, and why."""

    id: str = Field(min_length=1, max_length=128)
    instruction: str = Field(max_length=1000)
    backend: str = Field(description="which planner made it: offline, vlm:<model>, ...")
    kind: PlanKind = "motion"
    steps: list[PlanStep] = Field(default_factory=list, max_length=MAX_STEPS)
    answer: str = Field(default="", max_length=1000)
    answer_object_id: int | None = None
    answer_position: Vec3 | None = None
    answer_place: str = Field(default="", max_length=64)
    experiences: list[str] = Field(
        default_factory=list, description="ids of past reflections that shaped this plan"
    )
    notes: list[str] = Field(default_factory=list, description="grounding decisions, for people")
    attempt: int = Field(default=0, ge=0, description="0 = first plan, n = n-th replan")

    @field_validator("notes")
    @classmethod
    def _short_notes(cls, v: list[str]) -> list[str]:
        return [n[:300] for n in v[:20]]

    def describe(self) -> str:
        if self.kind == "answer":
            return f"answer: {self.answer}"
        return "; ".join(f"{i + 1}. {s.describe()}" for i, s in enumerate(self.steps))


class PlannerStatusMsg(Payload):
    """``/planner/status``: progress and failures (one message per change)."""

    plan_id: str = ""
    instruction: str = Field(default="", max_length=1000)
    state: PlannerState
    step: int = Field(default=0, ge=0, description="index of the current step")
    n_steps: int = Field(default=0, ge=0)
    skill: str = ""
    progress: float = Field(default=0.0, ge=0.0, le=1.0)
    message: str = Field(default="", max_length=1000)
    reason: str = Field(default="", max_length=300, description="why it failed, short")
    attempt: int = Field(default=0, ge=0)
    stamp: float = 0.0


class InstructionMsg(BaseModel):
    """An instruction: the text and flag of an ``ExecuteInstruction`` goal, checked."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=1000)
    id: str = Field(default="", max_length=128)
    memoryless: bool = Field(default=False, description="ablation: clear memory before each step")


def checked_instruction(
    text: str, memoryless: bool = False, allow_memoryless: bool = True
) -> InstructionMsg:
    """An ``ExecuteInstruction`` goal's text and flag, checked; raises
    PayloadError (reason for diagnostics): empty, too long, or ``memoryless``
    when not ``allow_memoryless`` (it makes memory forget everything)."""
    if not text.strip():
        raise PayloadError("empty instruction")
    try:
        msg = InstructionMsg(text=text.strip(), memoryless=memoryless)
    except ValidationError:
        raise PayloadError("instruction too long", f"{len(text)} characters") from None
    if msg.memoryless and not allow_memoryless:
        raise PayloadError(
            "memoryless refused", "it resets memory; this planner's allow_memoryless is false"
        )
    return msg


class PlanningError(RuntimeError):
    """A backend could not make a plan; ``reason`` is short and stable (diagnostics)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


__all__ = [
    "MAX_STEPS",
    "SKILLS",
    "TERMINAL_STATES",
    "InstructionMsg",
    "Plan",
    "PlanStep",
    "PlannerStatusMsg",
    "PlanningError",
    "checked_instruction",
]
