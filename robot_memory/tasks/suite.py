"""The task suite: six seeded instructions, their scenes and ground-truth checks (ROS-free).

Every task needs memory: at plan time what the instruction is about is out of
every camera's view at the home pose, or only memory's history knows it.

* ``bin_single`` "put the <object> in the bin": the object out of view at
  home; a look over the table. Success: it is in the bin.
* ``bin_colour`` "put all the <colour> things in the bin": a second object
  painted that colour, one of the two out of view at home; a look. Success:
  both in the bin, nothing else in it.
* ``under_box`` "bring back the object that was under the box": a look; the
  cover goes over X; a look; the cover is lifted away unseen; a look. Success:
  X on the table within 5 cm of the planner's hand-over spot.
* ``put_back`` "put everything back where it was": a look; two objects moved
  more than 12 cm unseen; a look. Success: both within 5 cm of where they
  were, on the table; the others moved less than 3 cm.
* ``where_is`` "where is the <object>?": the object out of view at home (even
  seeds) or put in the bin by the expert (odd seeds); a look. Correct: the
  answer names the memory object nearest the truth (or a position within
  5 cm) and, when it names a place, the true one.
* ``two_step`` "put the <A> in the bin and then put the <B> on the <side>
  side of the table": A out of view at home; a look. Success: A in the bin, B
  on the table in that region.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from robot_memory.planner.plan import Plan
from robot_memory.schemas import GroundTruth, SceneGraphMsg
from robot_memory.sim.scene import scene_catalogue, scene_objects
from robot_memory.tasks.scenes import (
    COVER_ROOM,
    REGION_POINTS,
    SPOT_CLEARANCE,
    SceneError,
    TaskScenes,
)

TASKS = ("bin_single", "bin_colour", "under_box", "put_back", "where_is", "two_step")
#: Default hand-over spot (the offline planner's ``handover_position``) [m].
HANDOVER_XY = (0.0, -0.05)
AT_SPOT_M = 0.05  # placed at a spot: within this (xy) [m]
UNDISTURBED_M = 0.03  # objects the task does not touch move less than this [m]
MOVED_M = 0.12  # put_back: the person moves each object at least this far [m]


@dataclass
class TaskInstance:
    task: str
    seed: int
    instruction: str
    roles: dict[str, str]  # role -> sim object id
    question: bool = False
    side: str = ""  # two_step: "left" / "right"
    variant: str = ""
    handover: tuple[float, float] = HANDOVER_XY
    before: dict[str, list[float]] = field(default_factory=dict)  # xy at instruction time
    origins: dict[str, list[float]] = field(default_factory=dict)  # put_back: xy before the move
    true_place: str = ""  # where_is: "bin" / "table_left" / ...

    def as_dict(self) -> dict:
        return asdict(self)


def region_of(xy) -> str:
    """The cell's table region (config/cell_tabletop.json) containing ``xy``."""
    y = float(xy[1])
    return "table_left" if y > 0.15 else "table_right" if y < -0.15 else "table_centre"


def place_of(truth: GroundTruth, object_id: str) -> str:
    obj = truth.get(object_id)
    return "bin" if obj.support == "bin" else region_of(obj.position)


def _label(scenes: TaskScenes, object_id: str) -> str:
    return scene_catalogue(scenes.scene)[object_id].label


def colour_pairs(scene: str) -> dict[str, str]:
    """Object id -> the one other object of its colour word, for the colours
    exactly two objects of ``scene`` share (household: the green bowl and
    bottle, the two yellow cans)."""
    by_colour: dict[str, list[str]] = {}
    for o in scene_objects(scene):
        by_colour.setdefault(o.color, []).append(o.id)
    pairs = [ids for ids in by_colour.values() if len(ids) == 2]
    return {a: b for x, y in pairs for a, b in ((x, y), (y, x))}


def _xy(truth: GroundTruth, object_id: str) -> np.ndarray:
    return np.array(truth.get(object_id).position[:2])


# -- set-up --------------------------------------------------------------------------
def setup_task(
    scenes: TaskScenes, task: str, seed: int, handover: tuple[float, float] = HANDOVER_XY
) -> TaskInstance:
    """Build ``task``'s scene for ``seed`` (deterministic) and leave the arm at
    home, memory having watched what the robot saw. Raises SceneError."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; tasks: {', '.join(TASKS)}")
    scenes.reset(seed, TASKS.index(task) + 1)
    rng = scenes.rng
    inst = TaskInstance(task, seed, "", {}, handover=tuple(handover))  # type: ignore[arg-type]
    catalogue = scene_catalogue(scenes.scene)
    if task == "bin_single":
        target = scenes.ensure_hidden()
        inst.roles = {"target": target}
        inst.instruction = f"put the {_label(scenes, target)} in the bin"
        scenes.look_over_table()
    elif task == "bin_colour":
        pairs = colour_pairs(scenes.scene)
        if pairs:  # the cell's own colours: two objects share one
            a = scenes.ensure_hidden(sorted(pairs))
            b = pairs[a]
        else:  # the primitives are one of each colour: paint a second one
            a = scenes.ensure_hidden()
            others = [o for o in scenes.graspable if o != a]
            b = str(others[int(rng.integers(len(others)))])
            scenes.recolour(b, scenes.rgba(a))
        inst.roles = {"a": a, "b": b}
        inst.instruction = f"put all the {catalogue[a].color} things in the bin"
        scenes.look_over_table()
    elif task == "under_box":
        _setup_under_box(scenes, inst)
    elif task == "put_back":
        _setup_put_back(scenes, inst)
    elif task == "where_is":
        target = str(scenes.graspable[int(rng.integers(len(scenes.graspable)))])
        if seed % 2 == 0:
            inst.variant = "out of view"
            target = scenes.ensure_hidden()
        else:
            inst.variant = "in the bin"
            if not scenes.expert_to_bin(target):
                raise SceneError(f"the expert did not get the {target} into the bin")
            scenes.go_home(observe=False)
        scenes.look_over_table()
        inst.roles, inst.question = {"target": target}, True
        inst.instruction = f"where is the {_label(scenes, target)}?"
    else:  # two_step
        a = scenes.ensure_hidden()
        others = [o for o in scenes.graspable if o != a]
        b = str(others[int(rng.integers(len(others)))])
        region = region_of(scenes.xy(b))
        side = {"table_left": "right", "table_right": "left"}.get(region) or str(
            rng.choice(["left", "right"])
        )
        scenes.clear_around(REGION_POINTS[side], SPOT_CLEARANCE, keep=(a, b))
        inst.roles, inst.side = {"a": a, "b": b}, side
        inst.instruction = (
            f"put the {_label(scenes, a)} in the bin and then put the {_label(scenes, b)} "
            f"on the {side} side of the table"
        )
        scenes.look_over_table()
    scenes.go_home()
    truth = scenes.truth()
    inst.before = {
        o.id: [round(truth.get(o.id).position[i], 4) for i in (0, 1)]
        for o in scene_objects(scenes.scene)
    }
    if inst.question:
        inst.true_place = place_of(truth, inst.roles["target"])
    return inst


def _setup_under_box(scenes: TaskScenes, inst: TaskInstance) -> None:
    rng = scenes.rng
    coverable = scenes.coverable
    x = str(coverable[int(rng.integers(len(coverable)))])
    scenes.clear_around(inst.handover, SPOT_CLEARANCE, keep=())
    scenes.move_to_free_spot(x, clearance=COVER_ROOM, avoid=[inst.handover])
    scenes.look_over_table()
    scenes.runner.move_object("cover", scenes.xy(x), settle_s=0.5)
    if not scenes.runner.task.covered(scenes.runner.physics, x):
        raise SceneError(f"the cover did not go over the {x}")
    scenes.look_over_table()
    # lifted away while nobody watches: a free spot, away from the hand-over spot
    scenes.move_to_free_spot(
        "cover",
        keep=(x,),
        ignore=("cover",),
        clearance=COVER_ROOM,
        box=((-0.12, 0.3), (-0.32, 0.32)),
        avoid=[inst.handover],
    )
    if scenes.runner.task.covered(scenes.runner.physics, x):
        raise SceneError("the cover still covers the object")
    scenes.look_over_table()
    inst.roles = {"target": x}
    inst.instruction = "bring back the object that was under the box"


def _setup_put_back(scenes: TaskScenes, inst: TaskInstance) -> None:
    rng = scenes.rng
    chosen = [str(o) for o in rng.permutation(scenes.graspable)[:2]]
    # where they start must be a spot the policy can put things back on
    for o in chosen:
        xy = scenes.xy(o)
        inside = (-0.08 <= xy[0] <= 0.26) and (-0.28 <= xy[1] <= 0.18)
        if not inside:
            scenes.move_to_free_spot(o, keep=chosen, box=((-0.08, 0.26), (-0.28, 0.18)))
    origins = {o: scenes.xy(o) for o in chosen}
    scenes.look_over_table()
    for o in chosen:
        scenes.move_to_free_spot(
            o,
            keep=chosen,
            clearance=SPOT_CLEARANCE,
            avoid=list(origins.values()),
            accept=lambda p, o=o: np.linalg.norm(p - origins[o]) > MOVED_M,
        )
    scenes.look_over_table()
    inst.roles = {f"moved{i + 1}": o for i, o in enumerate(chosen)}
    inst.origins = {o: [round(float(v), 4) for v in p] for o, p in origins.items()}
    inst.instruction = "put everything back where it was"


# -- ground truth ---------------------------------------------------------------------
def check_success(
    inst: TaskInstance,
    truth: GroundTruth,
    plan: Plan | None = None,
    graph: SceneGraphMsg | None = None,
) -> tuple[bool, str]:
    """(success, why) of ``inst`` given the sim's ground truth after the
    episode; questions also need the answer ``plan`` and the scene ``graph``
    memory held when it answered."""
    r = inst.roles
    if inst.task == "bin_single":
        ok = truth.get(r["target"]).support == "bin"
        return ok, f"{r['target']} {'in' if ok else 'not in'} the bin"
    if inst.task == "bin_colour":
        missing = [o for o in (r["a"], r["b"]) if truth.get(o).support != "bin"]
        extra = [
            o.id
            for o in truth.objects
            if o.kind == "object" and o.id not in (r["a"], r["b"]) and o.support == "bin"
        ]
        why = "; ".join(
            [f"not in the bin: {', '.join(missing)}"] * bool(missing)
            + [f"also in the bin: {', '.join(extra)}"] * bool(extra)
        )
        return not missing and not extra, why or "both in the bin"
    if inst.task == "under_box":
        obj = truth.get(r["target"])
        d = float(np.linalg.norm(np.subtract(obj.position[:2], inst.handover)))
        ok = obj.support == "table" and d <= AT_SPOT_M and not obj.grasped
        return ok, f"{r['target']} {d * 100:.1f} cm from the hand-over spot, on {obj.support}"
    if inst.task == "put_back":
        bad = []
        for o, origin in inst.origins.items():
            d = float(np.linalg.norm(_xy(truth, o) - origin))
            if truth.get(o).support != "table" or d > AT_SPOT_M:
                bad.append(f"{o} {d * 100:.1f} cm from its spot")
        for o, xy in inst.before.items():
            if o not in inst.origins and np.linalg.norm(_xy(truth, o) - xy) > UNDISTURBED_M:
                bad.append(f"{o} disturbed")
        return not bad, "; ".join(bad) or "both back"
    if inst.task == "where_is":
        return check_answer(inst, truth, plan, graph)
    a, b = truth.get(r["a"]), truth.get(r["b"])
    region = f"table_{inst.side}"
    bad = [f"{r['a']} not in the bin"] * (a.support != "bin")
    if b.support != "table" or region_of(b.position) != region:
        bad.append(f"{r['b']} on {b.support}, {region_of(b.position)}")
    return not bad, "; ".join(bad) or "both done"


def check_answer(
    inst: TaskInstance, truth: GroundTruth, plan: Plan | None, graph: SceneGraphMsg | None
) -> tuple[bool, str]:
    if plan is None or plan.kind != "answer":
        return False, "no answer"
    true_xy = _xy(truth, inst.roles["target"])
    right_object = False
    if plan.answer_object_id is not None and graph is not None:
        present = [o for o in graph.objects if o.status != "absent" and not o.container]
        if present:
            near = min(present, key=lambda o: np.linalg.norm(np.subtract(o.centroid[:2], true_xy)))
            right_object = near.id == plan.answer_object_id
    if not right_object and plan.answer_position is not None:
        right_object = np.linalg.norm(np.subtract(plan.answer_position[:2], true_xy)) <= AT_SPOT_M
    if not right_object:
        return False, "names another object"
    given = plan.answer_place
    if given and given.lstrip("-").isdigit():
        return False, f"says it is under object {given}"
    if given and given != inst.true_place:
        return False, f"says {given}, truth {inst.true_place}"
    return True, f"right object, place {given or '(none given)'} (truth {inst.true_place})"


__all__ = [
    "AT_SPOT_M",
    "HANDOVER_XY",
    "TASKS",
    "TaskInstance",
    "check_answer",
    "check_success",
    "place_of",
    "region_of",
    "setup_task",
]
