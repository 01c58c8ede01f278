"""The offline planner backend: instruction -> Plan with no model server (ROS-free).

Parses the instruction (:mod:`robot_memory.planner.language`), grounds its
phrases in the remembered scene (:mod:`robot_memory.planner.grounding`) and
writes pick/place steps; questions become answer plans
(:mod:`robot_memory.planner.answers`). Commands are planned in order against a
predicted state (where each object will be, what the hand holds), so the second
half of "X, then Y" sees the first half done. Experience rules are applied last
(:func:`~robot_memory.planner.experience_rules.apply_experience_rules`).

Parts live in their own modules: the predicted state
(:mod:`robot_memory.planner.plan_state`), the spots inside a container place
for several things (:mod:`robot_memory.planner.container_spots`), and "put
everything back" with its ordering and free table spots
(:mod:`robot_memory.planner.restore_plan`). ``CONTAINER_SLOTS`` is still
importable from here.
"""

from __future__ import annotations

import math
import uuid

import numpy as np

from robot_memory import schemas
from robot_memory.memory.text_grounding import TextEmbedder
from robot_memory.planner.answers import answer_where
from robot_memory.planner.container_spots import CONTAINER_SLOTS as CONTAINER_SLOTS
from robot_memory.planner.container_spots import container_spot, region_spot
from robot_memory.planner.experience_rules import apply_experience_rules
from robot_memory.planner.grounding import Grounder, canonical_words
from robot_memory.planner.hidden_objects import hidden_under
from robot_memory.planner.language import Command, ObjectRef, parse_instruction
from robot_memory.planner.past_answers import answer_plan, past_question
from robot_memory.planner.plan import MAX_STEPS, Plan, PlanningError, PlanStep
from robot_memory.planner.plan_state import PlanState, Target, xy
from robot_memory.planner.restore_plan import free_spot, restore_all
from robot_memory.planner.time_words import CellClock
from robot_memory.planner.validation import PLACE_X, PLACE_Y
from robot_memory.planner.world import MemoryPort, PlanningContext, World
from robot_memory.schemas import MemoryObjectMsg


def grasp_yaw(obj: MemoryObjectMsg) -> float | None:
    """Memory's grasp yaw for ``obj`` when memory knows it (None: unknown)."""
    helper = getattr(schemas, "grasp_yaw", None)
    try:
        yaw = helper(obj) if callable(helper) else getattr(obj, "yaw", None)
    except (AttributeError, TypeError, ValueError):
        yaw = getattr(obj, "yaw", None)
    if yaw is None or not math.isfinite(float(yaw)):
        return None
    return float(np.clip(float(yaw), -7.0, 7.0))


class OfflinePlanner:
    """``name = "offline"``; ``plan(ctx)`` returns a Plan or raises PlanningError."""

    name = "offline"

    def __init__(
        self,
        embedder: TextEmbedder | None = None,
        grounder: Grounder | None = None,
        handover_position: tuple[float, float, float] = (0.0, -0.05, 0.0),
        moved_threshold: float = 0.04,
        spot_clearance: float = 0.06,
        table_height: float = 0.0,
        container_inset: float = 0.035,
        clock: CellClock | None = None,
    ) -> None:
        hx, hy = handover_position[:2]
        if not (PLACE_X[0] <= hx <= PLACE_X[1] and PLACE_Y[0] <= hy <= PLACE_Y[1]):
            raise ValueError(f"handover_position {handover_position} is outside the place area")
        self.grounder = grounder or Grounder(embedder)
        self.handover_position = tuple(float(v) for v in handover_position)
        self.moved_threshold = moved_threshold
        self.spot_clearance = spot_clearance
        self.table_height = table_height
        self.container_inset = container_inset  # wall + half an object: slots stay inside
        self.clock = clock or CellClock()

    def _guessed_question(self, ctx: PlanningContext, pid: str, err: PlanningError) -> Plan:
        """The answer to the question the keyword fallback reads in the text, or ``err``."""
        question = past_question(ctx, self.clock, guess=True)
        if question is None:
            raise err
        return answer_plan(ctx, question, pid, self.name)

    # -- entry point -------------------------------------------------------------
    def plan(self, ctx: PlanningContext) -> Plan:
        world = ctx.world
        pid = uuid.uuid4().hex
        question = past_question(ctx, self.clock)
        if question is not None:
            return answer_plan(ctx, question, pid, self.name)
        try:
            commands = parse_instruction(ctx.instruction)
        except PlanningError as err:  # no command: perhaps a question in words no pattern knows
            return self._guessed_question(ctx, pid, err)
        if any(c.kind == "where" for c in commands):
            if len(commands) > 1:
                raise PlanningError("not understood", "ask a question on its own")
            try:
                match, why = self.grounder.ground(commands[0].obj.text, world)  # type: ignore[union-attr]
            except PlanningError as err:  # "where did the cube get to": the thing is in the words
                return self._guessed_question(ctx, pid, err)
            fields = answer_where(world, match.obj, ctx.memory)
            return Plan(
                id=pid,
                instruction=ctx.instruction,
                backend=self.name,
                kind="answer",
                notes=[why],
                **fields,  # type: ignore[arg-type]
            )
        state = PlanState(held=ctx.held)
        for cmd in commands:
            if cmd.kind == "restore_all":
                restore_all(
                    world,
                    ctx.memory,
                    state,
                    self._pick_place,
                    self.moved_threshold,
                    self.spot_clearance,
                    self.table_height,
                )
            else:
                self._move(cmd, world, ctx.memory, state)
        if state.held is not None:
            raise PlanningError("hand not empty", f"the hand holds object {state.held}")
        if not state.steps:
            raise PlanningError("nothing to do", "; ".join(state.notes)[:300])
        if len(state.steps) > MAX_STEPS:
            raise PlanningError("too many steps", f"{len(state.steps)} > {MAX_STEPS}")
        plan = Plan(
            id=pid,
            instruction=ctx.instruction,
            backend=self.name,
            steps=state.steps,
            notes=state.notes,
        )
        return apply_experience_rules(plan, world, ctx.experiences)

    # -- moving things -----------------------------------------------------------
    def _destination(self, cmd: Command, world: World, state: PlanState) -> tuple[Target, str]:
        dest = cmd.dest
        assert dest is not None
        if dest.handover:
            return self.handover_position, "at the hand-over spot"  # type: ignore[return-value]
        place = None if dest.beside else self.grounder.place(dest.text, world)
        if place is not None:
            label = world.places[place].label or place
            kind = world.places[place].kind
            prep = "in" if kind == "container" or label.startswith("middle") else "on"
            return place, f"{prep} the {label}"
        try:
            match, _ = self.grounder.ground(dest.text, world, world.present() + world.containers())
        except PlanningError as exc:
            raise PlanningError("no such place", f"{dest.text!r}: {exc.detail}") from None
        if not dest.beside:
            return str(match.obj.id), f"on the {match.obj.label}"
        centre = self._position(world, match.obj, state)
        taken = [self._position(world, o, state) for o in world.graph.objects]
        taken = [t for o, t in zip(world.graph.objects, taken, strict=True) if o.status != "absent"]
        spot = free_spot(taken, near=centre)
        if spot is None:
            raise PlanningError("no free spot", f"nothing free next to the {match.obj.label}")
        pos = (float(spot[0]), float(spot[1]), self.table_height)
        return pos, f"next to the {match.obj.label}"

    def _position(self, world: World, obj: MemoryObjectMsg, state: PlanState) -> np.ndarray:
        """Where ``obj`` will be (xy) after the steps planned so far."""
        where = state.at.get(obj.id)
        if isinstance(where, tuple):
            return xy(where)
        if isinstance(where, str) and where in world.places:
            p = world.places[where]
            return (xy(p.bbox_min) + xy(p.bbox_max)) / 2.0
        return xy(obj.centroid)

    def _is_at(self, world: World, obj: MemoryObjectMsg, target: Target, state: PlanState) -> bool:
        where = state.at.get(obj.id)
        if where is not None:
            return where == target
        if isinstance(target, str):
            if target not in world.places:
                return False
            rels = {r.target for r in world.relations_of(obj.id) if r.relation in ("in", "on")}
            if world.places[target].kind == "table_region" and (
                world.is_covered(obj.id)
                or any(
                    p.kind == "container" and (p.id in rels or world.in_place(obj, p.id))
                    for p in world.places.values()
                )
            ):
                return False  # in the bin is not on that side of the table
            return target in rels or world.in_place(obj, target)
        return world.near(obj, target)

    def _objects(
        self, cmd: Command, world: World, memory: MemoryPort | None, state: PlanState
    ) -> list[MemoryObjectMsg]:
        ref = cmd.obj
        assert ref is not None
        if ref.hidden_in:
            return [self._hidden(ref, world, memory, state)]
        if ref.every:
            found, why = self.grounder.matching_all(ref.text, world)
            state.notes.append(why)
            return found
        out = []
        for part in [p for p in ref.text.replace(", and ", ", ").replace(" and ", ", ").split(",")]:
            match, why = self.grounder.ground(part.strip(), world)
            state.notes.append(why)
            out.append(match.obj)
        return out

    def _check_movable(self, world: World, obj: MemoryObjectMsg) -> None:
        if obj.container:
            raise PlanningError("not movable", f"the {obj.label} (#{obj.id}) is a cover/container")
        if obj.status == "absent":
            raise PlanningError("object gone", f"memory believes the {obj.label} is gone")
        if world.is_covered(obj.id):
            raise PlanningError("object covered", f"the {obj.label} (#{obj.id}) is under a cover")

    def _move(
        self, cmd: Command, world: World, memory: MemoryPort | None, state: PlanState
    ) -> None:
        target, words = self._destination(cmd, world, state)
        objs = self._objects(cmd, world, memory, state)
        every = bool(cmd.obj and cmd.obj.every)
        n_before = len(state.steps)
        todo = []
        for obj in objs:
            if every and (obj.status == "absent" or world.is_covered(obj.id)):
                state.notes.append(f"skip #{obj.id} {obj.label}: covered or gone")
                continue
            self._check_movable(world, obj)
            if isinstance(target, str) and target == str(obj.id):
                raise PlanningError("not understood", f"the {obj.label} cannot go onto itself")
            if self._is_at(world, obj, target, state):
                state.notes.append(f"#{obj.id} {obj.label} is already {words}")
                continue
            todo.append(obj)
        for obj in todo:
            spot = container_spot(world, target, obj, todo, state, self.container_inset)
            spot = spot or region_spot(world, target, obj, state)
            self._pick_place(world, obj, target, f"{words} ({cmd.raw!r})", state, spot)
        if len(state.steps) == n_before:
            state.notes.append(f"nothing to do for {cmd.raw!r}")

    def _pick_place(
        self,
        world: World,
        obj: MemoryObjectMsg,
        target: Target,
        why: str,
        state: PlanState,
        spot: tuple[float, float, float] | None = None,
    ) -> None:
        """Pick ``obj`` (unless held) and place it at ``target``; ``spot``: the
        position inside a container place ``target`` (the step keeps the place,
        for verification: in the place, or within tolerance of the spot)."""
        if state.held != obj.id:
            if state.held is not None:
                raise PlanningError("hand not empty", f"holding object {state.held}")
            yaw = grasp_yaw(obj)
            note = "" if yaw is None else f", hand yaw {yaw:.2f} from memory"
            state.steps.append(
                PlanStep(
                    skill="pick", object_id=obj.id, goal_yaw=yaw, why=f"pick the {obj.label}{note}"
                )
            )
        if isinstance(target, str) and spot is not None:
            where = "at ({:.2f}, {:.2f}) ".format(*spot[:2])
            step = PlanStep(
                skill="place",
                object_id=obj.id,
                target=target,
                target_position=spot,
                why=f"put it {where}{why}"[:240],
            )
        elif isinstance(target, str):
            step = PlanStep(skill="place", object_id=obj.id, target=target, why=f"put it {why}")
        else:
            step = PlanStep(
                skill="place", object_id=obj.id, target_position=target, why=f"put it {why}"[:240]
            )
        state.steps.append(step)
        state.held = None
        state.at[obj.id] = target

    # -- what was under the box ----------------------------------------------------
    def _hidden(
        self, ref: ObjectRef, world: World, memory: MemoryPort | None, state: PlanState
    ) -> MemoryObjectMsg:
        place = self.grounder.place(ref.hidden_in, world)
        if place is not None:  # "the one that is in the bin": a filter, not a cover
            pool = [o for o in world.present() if world.in_place(o, place)]
            if len(pool) == 1 and not canonical_words(ref.text):
                return pool[0]
            match, why = self.grounder.ground(ref.text or "thing", world, pool)
            state.notes.append(why)
            return match.obj
        return hidden_under(self.grounder, ref, world, memory, state)


__all__ = ["OfflinePlanner", "grasp_yaw"]
