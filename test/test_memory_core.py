"""Memory core from synthetic frames: a camera looking down at the table, its
depth rendered from a set of boxes, so permanence sees free space, occlusion
and out-of-view exactly as the geometry says."""

from __future__ import annotations

import numpy as np
import pytest

from robot_memory.memory import MemoryConfig, MemoryConfigError, MemoryInputError, SceneMemory
from robot_memory.memory.association import assign, cost_matrix
from robot_memory.memory.object_node import MemoryObject
from robot_memory.perception.observations import CameraView, ObjectObservation, ObservationFrame

TABLE = (np.array([-0.6, -0.5, -0.04]), np.array([0.6, 0.5, 0.0]))
DOWN = np.array([0.0, 1.0, 0.0, 0.0])  # optical z along world -z, x along world x
COLOURS = {"red": (0.9, 0.1, 0.1), "green": (0.1, 0.8, 0.1), "blue": (0.1, 0.1, 0.9)}
COLOURS |= {"white": (0.95, 0.95, 0.95), "yellow": (0.9, 0.9, 0.1), "orange": (1, 0.5, 0)}


def box(center, size) -> tuple[np.ndarray, np.ndarray]:
    c, s = np.asarray(center, dtype=float), np.asarray(size, dtype=float)
    return c - s / 2, c + s / 2


def render_view(
    stamp: float,
    boxes: list[tuple[np.ndarray, np.ndarray]],
    camera: str = "top",
    position=(0.0, 0.0, 1.0),
    focal: float = 50.0,
    shape=(60, 80),
) -> CameraView:
    """A downward camera whose depth image is the boxes (and the table) ray-cast."""
    h, w = shape
    K = np.array([[focal, 0, (w - 1) / 2], [0, focal, (h - 1) / 2], [0, 0, 1.0]])
    view = CameraView(camera, stamp, K, np.asarray(position, float), DOWN, np.zeros(shape))
    v, u = np.mgrid[0:h, 0:w]
    rays = np.stack([(u - K[0, 2]) / focal, (v - K[1, 2]) / focal, np.ones_like(u)], axis=-1)
    dirs = rays.reshape(-1, 3) @ view.rotation().T  # world direction per unit optical depth
    depth = np.full(len(dirs), np.inf)
    safe = np.where(np.abs(dirs) < 1e-12, 1e-12, dirs)
    for lo, hi in [TABLE, *boxes]:
        t1, t2 = (lo - view.position) / safe, (hi - view.position) / safe
        near = np.minimum(t1, t2).max(axis=1)
        far = np.maximum(t1, t2).min(axis=1)
        hit = (near <= far) & (far > 0)
        depth = np.where(hit, np.minimum(depth, np.maximum(near, 0)), depth)
    view.depth = np.where(np.isfinite(depth), depth, 0.0).reshape(shape).astype(np.float32)
    return view


def obs(label: str, center, size=(0.05, 0.05, 0.05), stamp=0.0, conf=0.9, camera="top"):
    """An observation with points on the top face, as a camera above would see."""
    lo, hi = box(center, size)
    xs, ys = np.meshgrid(np.linspace(lo[0], hi[0], 6), np.linspace(lo[1], hi[1], 6))
    top = np.column_stack([xs.ravel(), ys.ravel(), np.full(xs.size, hi[2])])
    color, shape = label.split()[0], label.split()[-1]
    return ObjectObservation(
        centroid=np.asarray(center, float),
        bbox_min=lo,
        bbox_max=hi,
        color=color,
        rgb=COLOURS.get(color, (0.5, 0.5, 0.5)),
        shape=shape,
        label=label,
        confidence=conf,
        camera=camera,
        stamp=stamp,
        points=top,
        n_points=len(top),
    )


def frame(
    stamp: float, observations: list[ObjectObservation], scene=None, **view
) -> ObservationFrame:
    """A frame whose depth shows ``scene`` boxes (default: the observed boxes)."""
    for o in observations:
        o.stamp = stamp
    boxes = scene if scene is not None else [(o.bbox_min, o.bbox_max) for o in observations]
    return ObservationFrame(render_view(stamp, boxes, **view), observations)


def cube_on_table(x: float, y: float, label: str = "red cube", stamp: float = 0.0):
    return obs(label, (x, y, 0.025), stamp=stamp)


@pytest.fixture
def memory():
    m = SceneMemory()
    yield m
    m.close()


def test_hungarian_assigns_one_to_one_where_argmax_would_not(memory):
    memory.update(frame(0.0, [cube_on_table(0.0, 0.0), cube_on_table(0.10, 0.0)]))
    left, right = [o.id for o in memory.objects()]
    a, b = cube_on_table(0.04, 0.0), cube_on_table(-0.03, 0.0)
    costs = cost_matrix([a, b], memory.objects(), memory.config)
    assert list(costs.argmin(axis=1)) == [0, 0]  # argmax of similarity: both claim `left`
    assert assign([a, b], memory.objects(), memory.config) == {0: 1, 1: 0}
    result = memory.update(frame(0.1, [a, b]))
    assert result.matched == {0: right, 1: left}
    assert result.created == [] and len(memory.objects()) == 2


def test_two_nearby_same_label_observations_do_not_share_an_object(memory):
    memory.update(frame(0.0, [cube_on_table(0.0, 0.0)]))
    result = memory.update(frame(0.1, [cube_on_table(0.005, 0.0), cube_on_table(0.0, 0.09)]))
    assert len(set(result.matched.values())) == 2
    assert len(result.created) == 1


def test_repeated_observations_fuse_into_one_object():
    memory = SceneMemory(MemoryConfig(max_points_per_object=40))
    rng = np.random.default_rng(0)
    offsets = rng.normal(0, 0.002, size=(6, 3))
    for k, d in enumerate(offsets):
        memory.update(frame(0.1 * k, [obs("red cube", np.array([0.2, 0.1, 0.025]) + d)]))
    (cube,) = memory.objects()
    assert cube.observations == 6 and cube.status == "visible"
    assert np.linalg.norm(cube.centroid - (np.array([0.2, 0.1, 0.025]) + offsets.mean(0))) < 0.003
    assert cube.confidence > 0.9 * 0.6  # grew from the initial confidence
    assert cube.label == "red cube" and cube.label_votes["red cube"] == pytest.approx(0.9 * 6)
    assert 0 < len(cube.points) <= 40
    voxels = np.floor(cube.points / memory.config.voxel_size).astype(int)
    assert len(np.unique(voxels, axis=0)) == len(voxels)
    assert cube.visibility == [[0.0, 0.5]] and len(cube.pose_history) == 1


def test_covered_object_stays_remembered_and_is_in_the_cover(memory):
    memory.update(frame(0.0, [cube_on_table(0.2, -0.2)]))
    (cube,) = memory.objects()
    confidence = cube.confidence
    cover = obs("white box", (0.2, -0.2, 0.045), size=(0.11, 0.11, 0.09))
    for k in range(1, 8):
        memory.update(frame(0.5 * k, [cover]))
    cube = memory.get(cube.id)
    cover_id = next(o.id for o in memory.objects() if o.label == "white box")
    assert cube.status == "remembered" and cube.confidence == confidence
    assert cube.absence_evidence == 0
    assert memory.get(cover_id).container
    assert (cube.id, "in", cover_id) in memory.relations()
    assert memory.graph.has_edge(cube.id, cover_id, key="in")


def test_out_of_view_object_keeps_its_confidence(memory):
    memory.update(frame(0.0, [cube_on_table(0.4, 0.3)]))
    (cube,) = memory.objects()
    confidence = cube.confidence
    for k in range(1, 6):  # a narrow camera that sees only the middle of the table
        memory.update(frame(0.5 * k, [], scene=[], camera="wrist", focal=200.0))
    cube = memory.get(cube.id)
    assert cube.status == "remembered" and cube.confidence == confidence


def test_object_whose_place_is_seen_empty_becomes_absent():
    memory = SceneMemory(MemoryConfig(ghost_min_observations=0))  # keep the absent one
    memory.update(frame(0.0, [cube_on_table(0.1, 0.1)]))
    (cube,) = memory.objects()
    start, confidences, absent_at = cube.confidence, [], None
    for k in range(1, 6):
        result = memory.update(frame(0.5 * k, [], scene=[]))
        confidences.append(memory.get(cube.id).confidence)
        if result.absent and absent_at is None:
            absent_at = k
    assert confidences == sorted(confidences, reverse=True) and confidences[0] < start
    assert absent_at is not None and memory.get(cube.id).status == "absent"
    assert memory.objects() == [] and memory.objects(include_absent=True) == [cube]


def test_a_flat_object_whose_place_is_seen_empty_becomes_absent_too():
    """A screwdriver lying down stands 2.6 cm: the table behind its top is nearer
    than the 3 cm depth margin, so only a margin scaled to its height (half of
    it, at least min_depth_margin) sees the free space; an 8 mm thin slab stays
    under the noise floor and is kept."""
    for height, gone in ((0.026, True), (0.008, False)):
        memory = SceneMemory(MemoryConfig(ghost_min_observations=0))
        flat = obs("red screwdriver", (0.1, 0.1, height / 2), size=(0.16, 0.026, height))
        memory.update(frame(0.0, [flat]))
        (obj,) = memory.objects()
        for k in range(1, 6):
            memory.update(frame(0.5 * k, [], scene=[]))
        assert (memory.get(obj.id).status == "absent") is gone, height


def test_once_seen_object_that_vanishes_is_pruned_as_a_ghost(memory):
    result = memory.update(frame(0.0, [cube_on_table(0.1, 0.1)]))
    for k in range(1, 6):
        memory.update(frame(0.5 * k, [], scene=[]))
    assert memory.objects(include_absent=True) == []
    with pytest.raises(KeyError, match="no object"):
        memory.get(result.created[0])


def test_well_seen_object_that_disappears_is_kept_as_absent(memory):
    for k in range(4):
        memory.update(frame(0.1 * k, [cube_on_table(0.1, 0.1)]))
    cube_id = memory.objects()[0].id
    for k in range(1, 10):
        memory.update(frame(1 + 0.5 * k, [], scene=[]))
    gone = memory.get(cube_id)
    assert gone.status == "absent" and gone.absence_evidence >= 1 and gone.absent_since > 1
    assert memory.objects() == [] and memory.objects(include_absent=True) == [gone]


def test_object_seen_moved_is_relocated_not_duplicated(memory):
    for k in range(3):
        memory.update(frame(0.1 * k, [cube_on_table(-0.2, 0.2)]))
    cube_id = memory.objects()[0].id
    result = memory.update(frame(1.0, [cube_on_table(0.3, -0.2)]))
    assert result.relocated == [cube_id] and result.created == []
    (cube,) = memory.objects(include_absent=True)
    assert cube.id == cube_id and np.allclose(cube.centroid, [0.3, -0.2, 0.025])
    assert [s for s, _ in cube.pose_history] == [0.0, 1.0]
    assert np.allclose(cube.pose_history[0][1], [-0.2, 0.2, 0.025])


def test_relations_on_in_near():
    memory = SceneMemory()
    cube = cube_on_table(0.0, -0.3)
    stacked = obs("blue cylinder", (0.0, -0.3, 0.05 + 0.035), size=(0.044, 0.044, 0.07))
    sphere = obs("green sphere", (0.1, -0.3, 0.025))
    in_bin = obs("yellow block", (0.15, 0.35, 0.012 + 0.025), size=(0.04, 0.08, 0.05))
    result = memory.update(frame(0.0, [cube, stacked, sphere, in_bin]))
    ids = dict(zip(["cube", "stacked", "sphere", "in_bin"], result.matched.values(), strict=True))
    rel = memory.relations()
    assert (ids["cube"], "on", "table_right") in rel
    assert (ids["stacked"], "on", ids["cube"]) in rel
    assert (ids["stacked"], "on", "table_right") not in rel
    assert (ids["sphere"], "near", ids["cube"]) in rel
    assert (ids["cube"], "near", ids["stacked"]) not in rel  # on, not near
    assert (ids["in_bin"], "in", "bin") in rel
    assert not any(k[0] == ids["in_bin"] and k[1] == "on" for k in rel)
    edge = rel[(ids["cube"], "on", "table_right")]
    assert edge.first_confirmed == 0.0 and 0 < edge.confidence <= 1
    memory.update(frame(1.0, [sphere]))  # the sphere alone, the others out of nothing: stays
    assert memory.relations()[(ids["cube"], "on", "table_right")].first_confirmed == 0.0
    snap = memory.snapshot()
    assert {p.id for p in snap.places} >= {"bin", "table_right"} and snap.seq >= 1


def test_time_going_backwards_is_rejected_and_state_untouched(memory):
    memory.update(frame(2.0, [cube_on_table(0.0, 0.0)]))
    before = memory.snapshot().model_dump_json()
    with pytest.raises(MemoryInputError) as err:
        memory.update(frame(1.0, [cube_on_table(0.3, 0.0)]))
    assert err.value.reason == "time went backwards"
    assert memory.snapshot().model_dump_json() == before
    assert memory.stats["rejected_frames"] == 1 and memory.stats["updates"] == 1
    memory.update(frame(1.0, [], camera="wrist"))  # another camera has its own clock


def test_nan_observation_is_rejected_and_the_others_used(memory):
    bad = cube_on_table(0.0, 0.0)
    bad.centroid = np.array([np.nan, 0.0, 0.025])
    result = memory.update(frame(0.0, [bad, obs("green sphere", (0.2, 0.0, 0.025))], scene=[]))
    assert result.rejected_observations == [(0, "non-finite observation")]
    assert [o.label for o in memory.objects()] == ["green sphere"]


def test_overlapping_duplicates_are_merged():
    memory = SceneMemory()
    result = memory.update(frame(0.0, [cube_on_table(0.0, 0.0), cube_on_table(0.004, 0.0)]))
    assert len(result.created) == 2
    (kept,) = memory.objects()
    gone = memory.get(max(result.created))
    assert gone.merged_into == kept.id == min(result.created) and kept.observations == 2


def test_config_validates_itself():
    with pytest.raises(MemoryConfigError, match="gating_distance"):
        MemoryConfig(gating_distance=-1.0)
    with pytest.raises(MemoryConfigError, match="commit_policy"):
        MemoryConfig(commit_policy="sometimes")
    assert MemoryConfig().max_points_per_object == 2000


def test_memory_object_round_trips_its_record():
    o = MemoryObject.from_observation(7, cube_on_table(0.1, 0.2), MemoryConfig())
    back = MemoryObject.from_record(7, o.to_record(), o.points, o.pose_history)
    assert back.to_record() == o.to_record() and np.array_equal(back.points, o.points)


def test_an_objects_words_follow_its_votes_after_fuse_and_absorb():
    """label / colour / shape are cached; every change of the votes shows."""
    cfg = MemoryConfig()
    a = MemoryObject.from_observation(1, obs("red cube", (0.0, 0.0, 0.025)), cfg)
    assert a.words == ("red cube", "red", "cube")  # read: cached
    for _ in range(3):
        a.fuse(obs("orange sphere", (0.0, 0.0, 0.025)), cfg)
    assert (a.label, a.color, a.shape) == ("orange sphere", "orange", "sphere")
    b = MemoryObject.from_observation(2, obs("green cube", (0.0, 0.0, 0.025)), cfg)
    for _ in range(9):
        b.fuse(obs("green cube", (0.0, 0.0, 0.025)), cfg)
    a.absorb(b, cfg)
    assert a.words == ("green cube", "green", "cube")
