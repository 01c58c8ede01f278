"""The offline planner backend: instruction -> Plan with no model server (ROS-free).

Parses the instruction (:mod:`robot_memory.planner.language`), grounds its
phrases in the remembered scene (:mod:`robot_memory.planner.grounding`) and
writes pick/place steps; questions become answer plans
(:mod:`robot_memory.planner.answers`). Commands are planned in order against a
predicted state (where each object will be, what the hand holds), so the second
half of "X, then Y" sees the first half done. Experience rules are applied last
(:func:`~robot_memory.planner.experience_rules.apply_experience_rules`).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field

import numpy as np
from pydantic import ValidationError

from robot_memory import schemas
from robot_memory.memory.colours import SHADE, same_colour
from robot_memory.memory.text_grounding import TextEmbedder
from robot_memory.planner.answers import answer_where
from robot_memory.planner.experience_rules import apply_experience_rules
from robot_memory.planner.grounding import Grounder, canonical_words
from robot_memory.planner.language import Command, ObjectRef, parse_instruction
from robot_memory.planner.plan import MAX_STEPS, Plan, PlanningError, PlanStep
from robot_memory.planner.validation import PLACE_X, PLACE_Y
from robot_memory.planner.world import MemoryPort, PlanningContext, World
from robot_memory.policy.skill_tasks import TABLE_PLACE_CLEARANCE, TABLE_PLACE_X, TABLE_PLACE_Y
from robot_memory.schemas import MemoryObjectMsg, MemoryQuery

Target = str | tuple[float, float, float]
#: Spots inside a container place (xy offsets from its centre, in order of
#: preference) for several things put in it: 9 cm apart side by side, then
#: nearer the robot (the validation's reach ends 1 cm past the bin's centre).
CONTAINER_SLOTS = (
    (-0.045, 0.0),
    (0.045, 0.0),
    (0.0, -0.05),
    (-0.045, -0.05),
    (0.045, -0.05),
    (0.0, 0.0),
)


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


def _xy(p) -> np.ndarray:
    return np.asarray(p, dtype=float)[:2]


@dataclass
class _State:
    """What the plan so far will have done: the hand, and where objects will be."""

    held: int | None
    at: dict[int, Target] = field(default_factory=dict)
    steps: list[PlanStep] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    spots: dict[str, list[tuple[float, float, float]]] = field(default_factory=dict)  # in places


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

    # -- entry point -------------------------------------------------------------
    def plan(self, ctx: PlanningContext) -> Plan:
        commands = parse_instruction(ctx.instruction)
        world = ctx.world
        pid = uuid.uuid4().hex
        if any(c.kind == "where" for c in commands):
            if len(commands) > 1:
                raise PlanningError("not understood", "ask a question on its own")
            match, why = self.grounder.ground(commands[0].obj.text, world)  # type: ignore[union-attr]
            fields = answer_where(world, match.obj, ctx.memory)
            return Plan(
                id=pid,
                instruction=ctx.instruction,
                backend=self.name,
                kind="answer",
                notes=[why],
                **fields,  # type: ignore[arg-type]
            )
        state = _State(held=ctx.held)
        for cmd in commands:
            if cmd.kind == "restore_all":
                self._restore_all(cmd, world, ctx.memory, state)
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
    def _destination(self, cmd: Command, world: World, state: _State) -> tuple[Target, str]:
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
        spot = self._free_spot(taken, near=centre)
        if spot is None:
            raise PlanningError("no free spot", f"nothing free next to the {match.obj.label}")
        pos = (float(spot[0]), float(spot[1]), self.table_height)
        return pos, f"next to the {match.obj.label}"

    def _position(self, world: World, obj: MemoryObjectMsg, state: _State) -> np.ndarray:
        """Where ``obj`` will be (xy) after the steps planned so far."""
        where = state.at.get(obj.id)
        if isinstance(where, tuple):
            return _xy(where)
        if isinstance(where, str) and where in world.places:
            p = world.places[where]
            return (_xy(p.bbox_min) + _xy(p.bbox_max)) / 2.0
        return _xy(obj.centroid)

    def _is_at(self, world: World, obj: MemoryObjectMsg, target: Target, state: _State) -> bool:
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
        self, cmd: Command, world: World, memory: MemoryPort | None, state: _State
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

    def _move(self, cmd: Command, world: World, memory: MemoryPort | None, state: _State) -> None:
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
            spot = self._container_spot(world, target, obj, todo, state)
            self._pick_place(world, obj, target, f"{words} ({cmd.raw!r})", state, spot)
        if len(state.steps) == n_before:
            state.notes.append(f"nothing to do for {cmd.raw!r}")

    def _container_spot(
        self,
        world: World,
        target: Target,
        obj: MemoryObjectMsg,
        todo: list[MemoryObjectMsg],
        state: _State,
    ) -> tuple[float, float, float] | None:
        """Where in a container place (the bin) ``obj`` goes when it will not be
        alone there: the slot farthest from what is in it (memory's objects, and
        what this plan put there), so the second thing does not land on the first.
        None (the place's own point, its top centre) when it will be alone."""
        if not isinstance(target, str) or target not in world.places:
            return None
        place = world.places[target]
        if place.kind != "container":
            return None
        taken = [
            _xy(o.centroid)
            for o in world.present()
            if o.id not in state.at and world.in_place(o, target) and o.id != obj.id
        ]
        taken += [_xy(p) for p in state.spots.get(target, [])]
        lo, hi = np.asarray(place.bbox_min, dtype=float), np.asarray(place.bbox_max, dtype=float)
        centre = (lo[:2] + hi[:2]) / 2.0
        if not taken and len(todo) < 2:  # alone there: the place's own point
            state.spots.setdefault(target, []).append((*map(float, centre), float(hi[2])))
            return None
        inner_lo = lo[:2] + self.container_inset
        inner_hi = hi[:2] - self.container_inset
        slots = []
        for off in CONTAINER_SLOTS:
            p = centre + np.asarray(off)
            inside = np.all(p >= inner_lo) and np.all(p <= inner_hi)
            if inside and PLACE_X[0] <= p[0] <= PLACE_X[1] and PLACE_Y[0] <= p[1] <= PLACE_Y[1]:
                slots.append(p)
        if not slots:
            return None

        def clearance(p: np.ndarray) -> float:
            return min((float(np.linalg.norm(p - t)) for t in taken), default=math.inf)

        best = max(slots, key=clearance)  # the first of equals: slots are in preference order
        spot = (float(best[0]), float(best[1]), float(hi[2]))
        state.spots.setdefault(target, []).append(spot)
        return spot

    def _pick_place(
        self,
        world: World,
        obj: MemoryObjectMsg,
        target: Target,
        why: str,
        state: _State,
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
    def _query(self, memory: MemoryPort | None, **kw: object) -> list[dict]:
        if memory is None:
            return []
        try:
            q = MemoryQuery(id=uuid.uuid4().hex[:16], **kw)  # type: ignore[arg-type]
        except ValidationError:  # a memory without this query kind
            return []
        ans = memory.query(q)
        return list(ans.results) if ans.ok else []

    def _hidden(
        self, ref: ObjectRef, world: World, memory: MemoryPort | None, state: _State
    ) -> MemoryObjectMsg:
        place = self.grounder.place(ref.hidden_in, world)
        if place is not None:  # "the one that is in the bin": a filter, not a cover
            pool = [o for o in world.present() if world.in_place(o, place)]
            if len(pool) == 1 and not canonical_words(ref.text):
                return pool[0]
            match, why = self.grounder.ground(ref.text or "thing", world, pool)
            state.notes.append(why)
            return match.obj
        cont, why = self.grounder.container(ref.hidden_in, world)
        state.notes.append(why)
        seen: dict[int, tuple[float, str]] = {}  # subject -> (last confirmed, source)
        skipped: dict[int, str] = {}  # subject -> why it cannot be what was under it

        def add(subject: object, stamp: float, source: str) -> None:
            try:
                sid = int(subject)  # type: ignore[call-overload]
            except (TypeError, ValueError):
                return
            if sid == cont.id:
                return
            bad = self._not_hidden_thing(world, cont, sid)
            if bad:
                skipped[sid] = bad
            elif stamp >= seen.get(sid, (-math.inf, ""))[0]:
                seen[sid] = (stamp, source)

        for r in world.graph.relations:
            if r.relation == "in" and r.target == cont.id:
                add(r.subject, r.last_confirmed, "memory: in it now")
        for row in self._query(memory, kind="relation_history", target=str(cont.id)):
            if row.get("relation") == "in" and str(row.get("target")) == str(cont.id):
                add(row.get("subject"), float(row.get("last_confirmed", 0.0)), "relation history")
        if not seen:
            self._under_past_poses(cont, world, memory, add)
        if skipped:
            state.notes.append(
                "not what was under it: "
                + ", ".join(f"#{i} ({why})" for i, why in sorted(skipped.items()))
            )
        if not seen:
            detail = f"memory recalls nothing under the {cont.label}"
            if skipped:
                detail += " that is still here"
            raise PlanningError("no such object", detail)
        ids = sorted(seen, key=lambda i: -seen[i][0])
        if canonical_words(ref.text):  # "the red thing that was under the box"
            pool = [world.objects[i] for i in ids]
            match, _ = self.grounder.ground(ref.text, world, pool)
            ids = [match.obj.id]
        sid = ids[0]
        obj = world.objects[sid]
        others = ", ".join(f"#{i}" for i in ids[1:])
        state.notes.append(
            f"under the {cont.label}: #{obj.id} {obj.label} ({seen[sid][1]}, "
            f"last {seen[sid][0]:.1f} s)" + (f"; earlier also {others}" if others else "")
        )
        if world.is_covered(obj.id):
            raise PlanningError(
                "object covered", f"the {obj.label} is still under the {cont.label}"
            )
        return obj

    @staticmethod
    def _not_hidden_thing(world: World, cont: MemoryObjectMsg, sid: int) -> str:
        """Why memory object ``sid``, once ``in`` the container, cannot be the
        thing that was under it ("" when it can): gone from memory (merged into
        another object or pruned), believed gone, a container itself, or a piece
        of the container seen on its own (a shaded wall reads black, the top a
        white cylinder: the container's colour family, or black)."""
        obj = world.objects.get(sid)
        if obj is None:
            return "no longer in memory"
        if obj.status == "absent":
            return "gone"
        if obj.container:
            return "a container"
        if same_colour(obj.color, cont.color) or obj.color in SHADE:
            return f"a {obj.color} piece of the {cont.label}"
        return ""

    def _under_past_poses(self, cont, world: World, memory: MemoryPort | None, add) -> None:
        """Fallback: objects that stand where the container once stood, and that
        memory knew before the container came there (not something put on that
        spot after it left)."""
        rows = self._query(memory, kind="history", object_id=cont.id)
        half = (np.asarray(cont.bbox_max) - np.asarray(cont.bbox_min))[:2] / 2.0
        for pose in rows[0].get("poses", []) if rows else []:
            p, stamp = _xy(pose["position"]), float(pose["stamp"])
            if np.linalg.norm(p - _xy(cont.centroid)) < 0.02:
                continue  # where it is now: anything there is covered, not "was"
            for o in world.present():
                if o.first_seen < stamp and np.all(np.abs(_xy(o.centroid) - p) <= half):
                    add(o.id, stamp, "stood under its earlier position")

    # -- put everything back -------------------------------------------------------
    def _first_pose(self, memory: MemoryPort | None, oid: int) -> tuple[float, np.ndarray] | None:
        rows = self._query(memory, kind="history", object_id=oid)
        poses = rows[0].get("poses", []) if rows else []
        if not poses:
            return None
        first = min(poses, key=lambda p: float(p["stamp"]))
        return float(first["stamp"]), np.asarray(first["position"], dtype=float)

    def _origins(self, world: World, memory: MemoryPort | None) -> dict[int, np.ndarray]:
        origins: dict[int, np.ndarray] = {}
        for o in world.present():
            first = self._first_pose(memory, o.id)
            if first is not None:
                origins[o.id] = first[1]
        # An object memory lost track of while it was moved unseen (the old entry
        # absent, the object seen again under a new id) is the same object when
        # exactly one absent and one present object share its colour and shape and
        # the absent one was seen first: where it was is the absent one's first pose.
        kinds: dict[tuple[str, str], list[MemoryObjectMsg]] = {}
        for o in world.graph.objects:
            if not o.container and o.color and o.shape:
                kinds.setdefault((o.color, o.shape), []).append(o)
        for group in kinds.values():
            gone = [o for o in group if o.status == "absent"]
            here = [o for o in group if o.status != "absent"]
            if len(gone) != 1 or len(here) != 1 or gone[0].first_seen >= here[0].first_seen:
                continue
            first = self._first_pose(memory, gone[0].id)
            if first is not None:
                origins[here[0].id] = first[1]
        if not origins and world.graph.objects:  # no history: what changed since the start
            since = min(o.first_seen for o in world.graph.objects)
            for row in self._query(memory, kind="changed_since", since=since):
                if row.get("change") == "moved" and row.get("id") not in origins:
                    origins[int(row["id"])] = np.asarray(row["from"], dtype=float)
        return origins

    def _restore_all(
        self, cmd: Command, world: World, memory: MemoryPort | None, state: _State
    ) -> None:
        if memory is None:
            raise PlanningError("no memory", "putting things back needs memory's history")
        origins = self._origins(world, memory)
        cur: dict[int, np.ndarray] = {o.id: _xy(o.centroid) for o in world.graph.objects}
        cur = {i: p for i, p in cur.items() if world.objects[i].status != "absent"}
        goals: dict[int, np.ndarray] = {}
        for o in world.present():
            if o.id not in origins:
                continue
            d = float(np.linalg.norm(_xy(origins[o.id]) - cur[o.id]))
            if d <= self.moved_threshold:
                continue
            if world.is_covered(o.id):
                state.notes.append(f"skip #{o.id} {o.label}: moved but covered now")
                continue
            g = origins[o.id]
            if not (PLACE_X[0] <= g[0] <= PLACE_X[1] and PLACE_Y[0] <= g[1] <= PLACE_Y[1]):
                state.notes.append(f"skip #{o.id} {o.label}: its old spot is out of reach")
                continue
            goals[o.id] = _xy(g)
        for i in list(goals):  # blocked by something that is not going to move
            blockers = [
                j
                for j, p in cur.items()
                if j != i and j not in goals and np.linalg.norm(p - goals[i]) < self.spot_clearance
            ]
            if blockers:
                state.notes.append(
                    f"skip #{i} {world.objects[i].label}: its old spot is taken by #{blockers[0]}"
                )
                del goals[i]
        if not goals:
            state.notes.append("nothing has moved since memory first saw it")
            return
        staged: set[int] = set()
        pending = dict(goals)
        while pending:
            ready = [
                i
                for i in sorted(pending)
                if not any(
                    j != i and np.linalg.norm(cur[j] - pending[i]) < self.spot_clearance
                    for j in pending
                )
            ]
            if ready:
                i = ready[0]
                g = pending.pop(i)
                pos = (float(g[0]), float(g[1]), self.table_height)
                why = "back where memory first saw it at ({:.2f}, {:.2f})".format(*pos[:2])
                self._pick_place(world, world.objects[i], pos, why, state)
                cur[i] = g
                continue
            i = next((k for k in sorted(pending) if k not in staged), None)
            spot = None if i is None else self._free_spot(list(cur.values()) + list(goals.values()))
            if i is None or spot is None:
                state.notes.append(f"cannot untangle swapped spots of {sorted(pending)}; skipped")
                break
            staged.add(i)
            pos = (float(spot[0]), float(spot[1]), self.table_height)
            self._pick_place(world, world.objects[i], pos, "aside first (its spot swap)", state)
            cur[i] = spot
            state.notes.append(f"#{i} set aside first: objects stand on each other's old spots")

    def _free_spot(
        self, taken: list[np.ndarray], near: np.ndarray | None = None
    ) -> np.ndarray | None:
        """A table spot the policy knows, clear of everything: the farthest from
        everything, or (``near``) the closest to that point that is clear."""
        best, best_key = None, math.inf
        clear = TABLE_PLACE_CLEARANCE if near is None else 0.08
        for x in np.arange(TABLE_PLACE_X[0], TABLE_PLACE_X[1] + 1e-9, 0.02):
            for y in np.arange(TABLE_PLACE_Y[0], TABLE_PLACE_Y[1] + 1e-9, 0.02):
                p = np.array([x, y])
                d = min((float(np.linalg.norm(p - t)) for t in taken), default=math.inf)
                if d < clear:
                    continue
                key = -d if near is None else float(np.linalg.norm(p - near))
                if key < best_key:
                    best, best_key = p, key
        return best


__all__ = ["OfflinePlanner", "grasp_yaw"]
