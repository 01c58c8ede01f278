"""The scenario scripts: what the arm, the expert and the scripted person do.

Each script takes a :class:`~robot_memory.apps.scenarios.ScenarioSession`
and drives it; every second of simulated time it spends is recorded. Objects
are chosen from the seed's layout by geometry (what the static front camera
can see, free table spots), so the scripts work for any seed and stay
deterministic for one. A script raises ``RuntimeError`` rather than write a bag
that does not show what its name promises.

* ``covered``: look over the table; the expert picks the cover by its knob and
  puts it over an object (a real grasp, no teleport); keep looking.
* ``moved_out_of_view``: look over the table; the arm turns the wrist camera
  away; a scripted person (``SimulationRunner.move_object``, a teleport) moves an
  object that neither camera sees, to a spot neither camera sees; the arm
  looks at the new spot; then the expert moves another object in the front
  camera's view while both cameras watch.
* ``clutter``: a long episode of pick-and-place moves into the bin and to free
  table spots, sweeping the wrist camera over the table between moves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from robot_memory.apps.scenarios import ScenarioSession
from robot_memory.expert.pick_place import place_point_for, run_in_process
from robot_memory.perception.projection import in_image, project_point
from robot_memory.robot.ik import IKError, top_down_rotation
from robot_memory.robot.panda import ARM_JOINTS, HOME_ARM
from robot_memory.sim.scene import COVERABLE
from robot_memory.sim.task import MIN_SEPARATION, REACH

#: Wrist-camera look points (TCP x, y over the table) and TCP height [m]. From
#: this height the wrist camera sees about 0.55 x 0.7 m of table, so the sweep
#: covers the whole spawn area.
LOOK_POINTS = ((0.08, -0.2), (0.08, 0.2), (0.1, 0.0))
LOOK_HEIGHT = 0.42
#: The arm turned to face away from the table (joint 1 at 2.6 rad): the wrist
#: camera looks at the floor behind the robot's base.
LOOK_AWAY = np.array([2.6, *HOME_ARM[1:]])
#: Where successive drops into the bin go (offsets from its centre, so objects
#: land side by side instead of on top of each other) [m].
BIN_SLOTS = ((-0.045, -0.045), (0.045, 0.045), (-0.045, 0.045), (0.045, -0.045), (0.0, 0.0))
#: Objects in the order the clutter script moves them, per scene.
CLUTTER_ORDER = {
    "tabletop": (
        "red_cube",
        "blue_cylinder",
        "yellow_block",
        "purple_prism",
        "green_sphere",
        "orange_capsule",
    ),
    "household": (
        "red_mug_1",
        "yellow_can_1",
        "orange_box",
        "red_mug_2",
        "green_bowl",
        "blue_box",
        "red_can",
        "blue_mug",
    ),
}


# -- arm motions -------------------------------------------------------------
def move_arm(s: ScenarioSession, q: np.ndarray, hold_s: float, phase: str = "look") -> None:
    q0 = s.runner.physics.arm_qpos()
    move = s.planner.joint_move(phase, q0, np.asarray(q, dtype=float))
    s.command_trajectory(ARM_JOINTS, move.times.tolist(), move.positions.tolist())
    s.run_for(move.duration + hold_s)


def look_at(s: ScenarioSession, xy: Iterable[float], hold_s: float = 0.4) -> None:
    x, y = xy
    rot = top_down_rotation(s.planner.nominal_yaw)
    q = s.planner.ik.solve(s.runner.physics.arm_qpos(), np.array([x, y, LOOK_HEIGHT]), rot).q
    s.log("look", at=[round(float(x), 3), round(float(y), 3)])
    move_arm(s, q, hold_s)


def look_around(s: ScenarioSession, points: Iterable[tuple[float, float]] | None = None) -> None:
    pts = list(points if points is not None else LOOK_POINTS)
    if s.config.small:
        pts = pts[:2]
    for xy in pts:
        look_at(s, xy, hold_s=0.3 if s.config.small else 0.6)


def go_home(s: ScenarioSession, hold_s: float = 0.3) -> None:
    move_arm(s, np.asarray(HOME_ARM), hold_s, phase="home")


# -- geometry ----------------------------------------------------------------
def visible(s: ScenarioSession, cam: str, point: Iterable[float], margin_px: float) -> bool:
    """``point`` projects into ``cam``'s image now (image shrunk by ``margin_px``
    for a positive margin; grown by ``-margin_px`` for a negative one). Ignores
    occlusion: ``not visible(..., -m)`` is a safe "cannot be seen"."""
    rig = s.rig
    pos, quat = rig.optical_pose(s.runner.physics, cam)
    uvz = project_point(np.asarray(list(point), dtype=float), pos, quat, rig.intrinsics(cam))
    return in_image(uvz, rig.width, rig.height, margin=-margin_px)


def seen_by_any(s: ScenarioSession, point: Iterable[float], margin_px: float) -> bool:
    return any(visible(s, cam, point, margin_px) for cam in s.config.cameras)


def _margin(s: ScenarioSession) -> float:
    return 0.12 * s.config.width


def _clearance(s: ScenarioSession, mover, other) -> float:
    """How far a spot for ``mover`` keeps from ``other``'s centre: the primitives
    keep the spawn separation; household objects (14 on the table) their
    footprints' half diagonals and 2 cm, or no spot would be left."""
    if s.config.scene == "tabletop" or mover is None:
        return MIN_SEPARATION + 0.01
    radius = lambda o: float(np.hypot(o.size[0], o.size[1])) / 2.0  # noqa: E731
    return radius(mover) + radius(other) + 0.02


def free_spots(
    s: ScenarioSession,
    ignore: str,
    accept: Callable[[np.ndarray], bool] = lambda xy: True,
) -> list[np.ndarray]:
    """Table spots (xy) within reach, off the bin and the cover, clear of every
    object but ``ignore`` (:func:`_clearance`); nearest the table centre first."""
    gt = s.ground_truth()
    base = np.array(s.runner.physics.body_pose("panda_link0")[0][:2])
    mover = next((o for o in gt.objects if o.id == ignore), None)
    others = [
        (np.array(o.position[:2]), _clearance(s, mover, o))
        for o in gt.objects
        if o.kind == "object" and o.id != ignore
    ]
    bin_xy, cover_xy = np.array(gt.get("bin").position[:2]), np.array(gt.get("cover").position[:2])
    # (x range, y range, points): the household table is fuller, so a finer grid to its edges
    grid = ((-0.12, 0.28, 9), (-0.3, 0.3, 13))
    if s.config.scene != "tabletop":
        grid = ((-0.15, 0.3, 19), (-0.36, 0.36, 25))
    spots = []
    for x in np.linspace(*grid[0]):
        for y in np.linspace(*grid[1]):
            xy = np.array([x, y])
            if not REACH[0] + 0.03 <= np.linalg.norm(xy - base) <= REACH[1] - 0.05:
                continue
            if np.all(np.abs(xy - bin_xy) < 0.17) or np.linalg.norm(xy - cover_xy) < 0.14:
                continue
            if any(np.linalg.norm(xy - p) < gap for p, gap in others):
                continue
            if accept(xy):
                spots.append(xy)
    return sorted(spots, key=lambda xy: float(np.linalg.norm(xy - [0.08, 0.0])))


def pick_place(s: ScenarioSession, object_id: str, place_xy: np.ndarray | None) -> bool:
    """The expert moves ``object_id`` to ``place_xy`` on the table (None: into
    the bin). Returns success by ground truth."""
    gt = s.ground_truth()
    target = "bin" if place_xy is None else [round(float(v), 3) for v in place_xy]
    if place_xy is None:
        in_bin = sum(o.support == "bin" for o in gt.objects if o.kind == "object")
        point = place_point_for(gt.get("bin"))
        point[:2] += BIN_SLOTS[in_bin % len(BIN_SLOTS)]
    else:
        point = np.array([*place_xy, 0.0])
    try:
        steps = s.planner.plan(
            s.runner.physics.arm_qpos(), gt.get(object_id), point, neighbours=gt.objects
        )
    except IKError as err:
        s.log("expert_move_skipped", object=object_id, to=target, reason=str(err))
        return False
    s.log("expert_move_start", object=object_id, to=target)
    run_in_process(s, steps, settle_s=0.1 if s.config.small else 0.25)
    s.run_for(0.3)
    after = s.ground_truth().get(object_id)
    if place_xy is None:
        ok = after.support == "bin"
    else:
        ok = (
            after.support == "table"
            and np.linalg.norm(np.subtract(after.position[:2], place_xy)) < 0.03
        )
    s.log("expert_move_done", object=object_id, to=target, ok=bool(ok), position=after.position)
    return bool(ok)


# -- scripts -----------------------------------------------------------------
def covered(s: ScenarioSession) -> None:
    s.run_for(0.4)
    look_around(s)
    gt = s.ground_truth()
    objects = [o for o in gt.objects if o.kind == "object"]

    def clearance(oid: str) -> float:
        xy = np.array(gt.get(oid).position[:2])
        return min(np.linalg.norm(xy - o.position[:2]) for o in objects if o.id != oid)

    def score(oid: str) -> tuple[bool, float]:
        return visible(s, "front", gt.get(oid).position, _margin(s)), clearance(oid)

    # an object the static front camera sees, with the most room around it
    target = max(COVERABLE[s.config.scene], key=score)
    s.log("cover_start", target=target, seen_by_front=bool(score(target)[0]))
    steps = s.planner.plan_cover(s.runner.physics.arm_qpos(), gt.get("cover"), gt.get(target))
    run_in_process(s, steps, settle_s=0.1 if s.config.small else 0.25)
    s.run_for(0.4)
    ok = s.runner.task.covered(s.runner.physics, target)
    s.log("cover_done", target=target, ok=bool(ok), method="expert grasps the knob")
    if not ok:
        raise RuntimeError(f"the expert did not get the cover over {target}")
    look_around(s, [LOOK_POINTS[1], LOOK_POINTS[0]] if s.config.small else None)
    go_home(s, hold_s=0.5)


def moved_out_of_view(s: ScenarioSession) -> None:
    s.run_for(0.4)
    look_around(s)
    move_arm(s, LOOK_AWAY, hold_s=0.3, phase="look_away")
    s.log("look_away")
    margin = -_margin(s)  # "not visible" = outside the image grown by this much
    gt = s.ground_truth()
    chosen = None
    for obj in (o for o in gt.objects if o.kind == "object"):
        if seen_by_any(s, obj.position, margin):
            continue
        z = obj.position[2]
        spots = free_spots(
            s,
            obj.id,
            lambda xy, z=z, old=obj.position: (
                not seen_by_any(s, [*xy, z], margin) and np.linalg.norm(xy - old[:2]) > 0.12
            ),
        )
        if spots:
            chosen = (obj.id, spots[0])
            break
    if chosen is None:
        raise RuntimeError(
            f"seed {s.config.seed}: no object and free spot out of both cameras' view; "
            "try another seed"
        )
    oid, xy = chosen
    before = s.ground_truth().get(oid).position
    s.runner.move_object(oid, xy, settle_s=0.0)
    s.log("person_move", object=oid, start=before, to=[float(v) for v in xy])
    s.run_for(0.6)
    look_at(s, xy, hold_s=1.0)
    s.log("look_new_place", object=oid, position=s.ground_truth().get(oid).position)
    # the expert moves an object the front camera sees, to a spot it sees too
    go_home(s)
    gt = s.ground_truth()
    watched = [
        o.id
        for o in gt.objects
        if o.kind == "object" and o.id != oid and visible(s, "front", o.position, _margin(s))
    ]
    for wid in watched:
        z = gt.get(wid).position[2]
        old = np.array(gt.get(wid).position[:2])
        spots = free_spots(
            s,
            wid,
            lambda xy, z=z, old=old: (
                visible(s, "front", [*xy, z], _margin(s)) and np.linalg.norm(xy - old) > 0.1
            ),
        )
        if spots and pick_place(s, wid, spots[0]):
            break
    else:
        raise RuntimeError(f"seed {s.config.seed}: no object the expert could move in view")
    look_around(s, [LOOK_POINTS[0]] if s.config.small else None)


def clutter(s: ScenarioSession) -> None:
    s.run_for(0.4)
    look_around(s)
    plan = ["bin", "bin"] if s.config.small else ["bin", "table", "bin", "table", "bin"]
    order = iter(CLUTTER_ORDER[s.config.scene])
    for i, where in enumerate(plan):
        for oid in order:
            if where == "bin":
                ok = pick_place(s, oid, None)
            else:
                old = np.array(s.ground_truth().get(oid).position[:2])
                spots = free_spots(s, oid, lambda xy, old=old: np.linalg.norm(xy - old) > 0.15)
                ok = bool(spots) and pick_place(s, oid, spots[len(spots) // 2])
            if ok:
                break
        else:
            break  # ran out of objects
        if s.config.small:
            look_at(s, LOOK_POINTS[i % 2], hold_s=0.3)
        else:
            look_around(s)
    go_home(s, hold_s=0.5)
    in_bin = [o.id for o in s.ground_truth().objects if o.support == "bin"]
    s.log("clutter_done", in_bin=in_bin)
    if len(in_bin) < plan.count("bin"):
        raise RuntimeError(f"only {in_bin} ended in the bin")


SCRIPTS: dict[str, Callable[[ScenarioSession], None]] = {
    "covered": covered,
    "moved_out_of_view": moved_out_of_view,
    "clutter": clutter,
}
