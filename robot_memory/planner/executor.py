"""Run an instruction end to end: plan, validate, execute step by step, verify
each effect in memory, replan on failure, learn from failures (ROS-free).

:class:`PlanExecutor` talks to the world only through the ports of
:mod:`robot_memory.planner.world` (memory, skills), so the same code runs in the
ROS node (topics) and in the in-process evaluation (SceneMemory + policy
runtime + simulator).

Per step: one ``/policy/goal``; its final ``/policy/status``; after a ``place``
the wrist camera looks at the destination (a ``look`` skill) and the effect is
checked in memory: an object looking like the carried one (same colour and
shape) is now in the place / within ``place_tolerance`` of the position.

On failure (skill failed, or the effect is not in memory) the executor records
a reflection in the experience memory and replans the failed object: it
refreshes memory, re-grounds the object (same id if memory still holds it,
else a memory ``last_seen`` query by its label), and retries the pick and
place, up to ``max_attempts`` per object (one more with the ``extra_attempt``
rule). The memoryless ablation clears memory before planning and before each
step, and re-grounds each step by label in what the cameras show right then.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from robot_memory.planner.experience import ExperienceMemory
from robot_memory.planner.plan import Plan, PlannerStatusMsg, PlanningError, PlanStep
from robot_memory.planner.validation import PlanValidationError, validate_plan
from robot_memory.planner.world import (
    MemoryPort,
    PlannerBackend,
    PlanningContext,
    SkillOutcome,
    SkillPort,
    World,
)
from robot_memory.schemas import MemoryObjectMsg, MemoryQuery, PolicyGoalMsg

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExecutorConfig:
    max_attempts: int = 2  # per object: the first try and one replan
    verify: bool = True  # check each place's effect in memory
    place_tolerance: float = 0.05  # placed at a position: within this (xy) [m]
    memoryless: bool = False  # ablation: clear memory before planning and each step

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.place_tolerance <= 0:
            raise ValueError("place_tolerance must be > 0")


@dataclass
class StepRecord:
    step: PlanStep
    outcome: str  # succeeded / failed / verified / not_verified
    reason: str = ""


@dataclass
class TaskResult:
    instruction: str
    state: str  # succeeded / answered / failed / rejected
    reason: str = ""
    plan: Plan | None = None
    plans: list[Plan] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)
    replans: int = 0

    @property
    def ok(self) -> bool:
        return self.state in ("succeeded", "answered")


def same_kind(a: MemoryObjectMsg, b: MemoryObjectMsg) -> bool:
    return a.shape == b.shape and a.color == b.color


class PlanExecutor:
    def __init__(
        self,
        backend: PlannerBackend,
        memory: MemoryPort,
        skills: SkillPort,
        experiences: ExperienceMemory | None = None,
        config: ExecutorConfig | None = None,
        on_status: Callable[[PlannerStatusMsg], None] | None = None,
        on_plan: Callable[[Plan], None] | None = None,
        image_source: Callable[[], np.ndarray | None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.backend, self.memory, self.skills = backend, memory, skills
        self.experiences = experiences
        self.config = config or ExecutorConfig()
        self.on_status = on_status or (lambda s: None)
        self.on_plan = on_plan or (lambda p: None)
        self.image_source = image_source
        self.clock = clock
        self.counters: dict[str, int] = {}

    # -- helpers ----------------------------------------------------------------
    def _count(self, key: str) -> None:
        self.counters[key] = self.counters.get(key, 0) + 1

    def _status(self, result: TaskResult, state: str, **kw) -> None:
        plan = result.plan
        msg = PlannerStatusMsg(
            plan_id=plan.id if plan else "",
            instruction=result.instruction,
            state=state,  # type: ignore[arg-type]
            n_steps=len(plan.steps) if plan else 0,
            attempt=result.replans,
            stamp=self.clock(),
            **kw,
        )
        self.on_status(msg)

    def _world(self, refresh: bool = False) -> World:
        graph = self.memory.refresh() if refresh else self.memory.scene_graph()
        if graph is None and refresh:
            graph = self.memory.scene_graph()
        return World(graph) if graph is not None else World.empty()

    def _plan(self, instruction: str, world: World, held: int | None) -> Plan:
        """Plan with the experiences that apply (two passes: the objects an
        instruction grounds to are known only after a first plan)."""
        image = self.image_source() if self.image_source else None
        ctx = PlanningContext(instruction, world, self.memory, [], image, held)
        if self.experiences is not None:
            ctx.experiences = self.experiences.retrieve(instruction)
        plan = self.backend.plan(ctx)
        if self.experiences is not None and plan.kind == "motion":
            objs = [world.objects[s.object_id] for s in plan.steps if s.object_id in world.objects]
            found = self.experiences.retrieve(instruction, [(o.color, o.shape) for o in objs])
            if {e.id for e in found} - {e.id for e in ctx.experiences}:
                ctx.experiences = found
                plan = self.backend.plan(ctx)
        return validate_plan(plan, world, held)

    # -- the task ---------------------------------------------------------------
    def run(self, instruction: str, memoryless: bool | None = None) -> TaskResult:
        memoryless = self.config.memoryless if memoryless is None else memoryless
        result = TaskResult(instruction, "failed")
        self._status(result, "planning", message=f"planning: {instruction}")
        if memoryless:
            self.memory.clear()
        world = self._world(refresh=memoryless)
        try:
            plan = self._plan(instruction, world, None)
        except (PlanningError, PlanValidationError) as err:
            self._count(f"rejected:{err.reason}")
            result.state, result.reason = "rejected", str(err)
            self._status(result, "rejected", reason=err.reason, message=str(err))
            return result
        result.plan = plan
        result.plans.append(plan)
        self.on_plan(plan)
        if plan.kind == "answer":
            result.state = "answered"
            self._status(result, "answered", progress=1.0, message=plan.answer)
            return result
        return self._execute(result, world, memoryless)

    def _execute(self, result: TaskResult, world: World, memoryless: bool) -> TaskResult:
        assert result.plan is not None
        attempts: dict[int, int] = {}
        known = dict(world.objects)  # every object this task has seen, by id (labels)
        i = 0
        while i < len(result.plan.steps):
            plan = result.plan
            step = plan.steps[i]
            if memoryless:
                self.memory.clear()
                fresh = self._world(refresh=True)
                regrounded = self._reground(step, known, fresh)
                if regrounded is None:
                    return self._fail(
                        result, i, "not in view", "memoryless: the object is not in view"
                    )
                step, world = regrounded, fresh
            elif step.object_id is not None:
                world = self._world()
                step = self._follow(result, i, step, known, world)
                step = self._fresh_yaw(result, i, step, known, world)
            known.update(world.objects)
            self._status(
                result,
                "executing",
                step=i,
                skill=step.skill,
                progress=i / len(plan.steps),
                message=f"step {i + 1}/{len(plan.steps)}: {step.describe()}",
            )
            outcome = self._run_skill(plan, i, step, result.replans)
            if outcome.ok and step.skill == "place" and self.config.verify:
                self._status(
                    result,
                    "verifying",
                    step=i,
                    skill="place",
                    progress=(i + 0.5) / len(plan.steps),
                    message=f"checking memory: {step.describe()}",
                )
                outcome = self._verify(plan, i, step, known)
            result.steps.append(StepRecord(step, outcome.state, outcome.reason))
            if outcome.ok:
                i += 1
                continue
            # -- failure: learn, then replan this object or give up
            obj = known.get(step.object_id) if step.object_id is not None else None
            self._learn(result.instruction, step, obj, outcome.reason)
            key = step.object_id if step.object_id is not None else -1
            attempts[key] = attempts.get(key, 1) + 1
            limit = self.config.max_attempts + (1 if self._has_rule(obj, "extra_attempt") else 0)
            if obj is None or step.skill == "look" or attempts[key] > limit:
                return self._fail(
                    result,
                    i,
                    outcome.reason or "skill failed",
                    f"{step.describe()} failed: {outcome.reason}",
                )
            replanned = self._replan(result, i, step, obj, outcome.reason)
            if replanned is None:
                return self._fail(
                    result, i, "replan failed", f"could not find the {obj.label} again"
                )
            i, world = replanned
        result.state = "succeeded"
        self._status(result, "succeeded", step=len(result.plan.steps), progress=1.0, message="done")
        return result

    def _run_skill(self, plan: Plan, i: int, step: PlanStep, attempt: int) -> SkillOutcome:
        goal = PolicyGoalMsg(
            id=f"{plan.id[:100]}-{i}-{attempt}",
            skill=step.skill,
            object_id=step.object_id if step.skill != "look" or not step.target else None,
            target=step.target,
            target_position=step.target_position,
            goal_yaw=step.goal_yaw,
        )
        self._count(f"skill:{step.skill}")
        return self.skills.run(goal)

    def _verify(
        self, plan: Plan, i: int, step: PlanStep, known: dict[int, MemoryObjectMsg]
    ) -> SkillOutcome:
        carried = known.get(step.object_id)  # type: ignore[arg-type]
        if step.target and not step.target.lstrip("-").isdigit():
            self.skills.run(
                PolicyGoalMsg(id=f"{plan.id[:100]}-{i}-look", skill="look", target=step.target)
            )
        elif step.target_position is not None:
            self.skills.run(
                PolicyGoalMsg(
                    id=f"{plan.id[:100]}-{i}-look",
                    skill="look",
                    target_position=step.target_position,
                )
            )
        world = self._world(refresh=True)
        if carried is None:
            return SkillOutcome("failed", "not verified: carried object unknown")
        for obj in world.present():
            if obj.id != carried.id and not same_kind(obj, carried):
                continue
            if step.target_position is not None and world.near(
                obj, step.target_position, self.config.place_tolerance
            ):
                return SkillOutcome("succeeded", "verified in memory")
            if step.target and step.target in world.places and world.in_place(obj, step.target):
                return SkillOutcome("succeeded", "verified in memory")
            if step.target.lstrip("-").isdigit():
                return SkillOutcome("succeeded", "placed on an object (not checked)")
        self._count("verify_failed")
        return SkillOutcome(
            "failed",
            f"not verified: memory does not show the {carried.label} at "
            f"{step.target or 'the position'}",
        )

    def _learn(
        self, instruction: str, step: PlanStep, obj: MemoryObjectMsg | None, reason: str
    ) -> None:
        if self.experiences is None or obj is None:
            return
        self.experiences.record(
            instruction,
            step.skill,
            obj.label,
            reason or "failed",
            obj.shape,
            obj.color,
            step.target,
        )

    def _has_rule(self, obj: MemoryObjectMsg | None, rule: str) -> bool:
        if self.experiences is None or obj is None:
            return False
        return any(
            e.rule == rule and e.matches_object(obj.color, obj.shape)
            for e in self.experiences.entries
        )

    def _replan(
        self, result: TaskResult, i: int, step: PlanStep, obj: MemoryObjectMsg, reason: str
    ) -> tuple[int, World] | None:
        """Retry the failed object's pick and place from fresh memory; returns
        (index to resume at, world) or None."""
        assert result.plan is not None
        plan = result.plan
        self._status(
            result,
            "replanning",
            step=i,
            skill=step.skill,
            reason=reason[:300],
            message=f"{step.describe()} failed ({reason}); looking for the {obj.label} again",
        )
        self._count("replans")
        world = self._world(refresh=True)
        found = world.objects.get(obj.id)
        if found is None or found.status == "absent":
            answer = self.memory.query(
                MemoryQuery(id=f"{plan.id[:90]}-regrounding", kind="last_seen", text=obj.label)
            )
            hits = [r for r in answer.results if answer.ok and r.get("status") != "absent"]
            found = world.objects.get(hits[0]["id"]) if hits else None
            if found is None or not same_kind(found, obj):
                return None
        # the steps on this object from its pick to its place, again
        start = max(
            (
                k
                for k in range(i + 1)
                if plan.steps[k].skill == "pick" and plan.steps[k].object_id == obj.id
            ),
            default=i,
        )
        end = next(
            (
                k
                for k in range(i, len(plan.steps))
                if plan.steps[k].skill == "place" and plan.steps[k].object_id == obj.id
            ),
            i,
        )
        redo = [s.model_copy(update={"object_id": found.id}) for s in plan.steps[start : end + 1]]
        if redo and redo[0].skill == "pick":
            redo.insert(
                0, PlanStep(skill="look", object_id=found.id, why=f"replan: {reason}"[:240])
            )
        steps = plan.steps[:start] + redo + plan.steps[end + 1 :]
        new = plan.model_copy(
            update={
                "steps": steps,
                "attempt": plan.attempt + 1,
                "id": f"{plan.id.split('~')[0]}~{plan.attempt + 1}",
            }
        )
        try:
            validate_plan(new.model_copy(update={"steps": steps[start:]}), world, None)
        except PlanValidationError as err:
            LOG.info("replan invalid: %s", err)
            return None
        result.plan = new
        result.plans.append(new)
        result.replans += 1
        self.on_plan(new)
        return start, world

    def _reground(
        self, step: PlanStep, known: dict[int, MemoryObjectMsg], new: World
    ) -> PlanStep | None:
        """Memoryless ablation: the same step on what the cameras show now. The
        object in the hand (a place) need not be in view: its id only serves the
        verification."""
        update: dict = {}
        if step.object_id is not None:
            ref = known.get(step.object_id)
            match = [o for o in new.present() if ref is not None and same_kind(o, ref)]
            if match:
                update["object_id"] = match[0].id
            elif step.skill != "place":
                return None
        if step.target.lstrip("-").isdigit():
            ref = known.get(int(step.target))
            match = [o for o in new.objects.values() if ref is not None and same_kind(o, ref)]
            if not match:
                return None
            update["target"] = str(match[0].id)
        return step.model_copy(update=update)

    def _follow(
        self,
        result: TaskResult,
        i: int,
        step: PlanStep,
        known: dict[int, MemoryObjectMsg],
        world: World,
    ) -> PlanStep:
        """Memory may have given an object a new id (it was seen somewhere else
        after a missed grasp, and the old entry went absent): follow it, by its
        colour and shape nearest the old position, else by a ``last_seen`` query."""
        assert result.plan is not None and step.object_id is not None
        current = world.objects.get(step.object_id)
        ref = known.get(step.object_id)
        if (current is not None and current.status != "absent") or ref is None:
            return step
        candidates = [o for o in world.present() if same_kind(o, ref)]
        if not candidates:
            answer = self.memory.query(
                MemoryQuery(
                    id=f"{result.plan.id[:90]}-follow-{i}", kind="last_seen", text=ref.label
                )
            )
            ids = [r.get("id") for r in answer.results if answer.ok and r.get("status") != "absent"]
            candidates = [world.objects[k] for k in ids if k in world.objects]
            candidates = [o for o in candidates if same_kind(o, ref)]
        if not candidates:
            return step
        d = [np.linalg.norm(np.subtract(o.centroid, ref.centroid)) for o in candidates]
        found = candidates[int(np.argmin(d))]
        self._count("followed_ids")
        old_id = step.object_id
        steps = [
            s.model_copy(update={"object_id": found.id}) if s.object_id == old_id else s
            for s in result.plan.steps
        ]
        result.plan = result.plan.model_copy(update={"steps": steps})
        return steps[i]

    def _fresh_yaw(
        self,
        result: TaskResult,
        i: int,
        step: PlanStep,
        known: dict[int, MemoryObjectMsg],
        world: World,
    ) -> PlanStep:
        """A pick whose hand yaw is memory's estimate from when it was planned
        takes memory's estimate now (a look since may have corrected a yaw
        from far, partial views; None: the policy's default)."""
        assert result.plan is not None
        then, now = known.get(step.object_id), world.objects.get(step.object_id)  # type: ignore[arg-type]
        if step.skill != "pick" or then is None or now is None or step.goal_yaw is None:
            return step
        if then.yaw is None or abs(then.yaw - step.goal_yaw) > 1e-6 or now.yaw == then.yaw:
            return step  # not memory's yaw (or unchanged)
        step = step.model_copy(update={"goal_yaw": now.yaw})
        steps = list(result.plan.steps)
        steps[i] = step
        result.plan = result.plan.model_copy(update={"steps": steps})
        return step

    def _fail(self, result: TaskResult, i: int, reason: str, message: str) -> TaskResult:
        result.state, result.reason = "failed", message
        self._status(result, "failed", step=i, reason=reason[:300], message=message[:1000])
        return result


def new_plan_id() -> str:
    return uuid.uuid4().hex[:12]


__all__ = ["ExecutorConfig", "PlanExecutor", "StepRecord", "TaskResult", "new_plan_id"]
