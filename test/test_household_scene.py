"""The realistic cell (scene ``household``), in-process: the object set, the
cluttered layouts with touching pairs, settling, lighting and determinism."""

from __future__ import annotations

import numpy as np
import pytest

from robot_memory.sim.household import CATEGORIES, HOUSEHOLD_OBJECTS
from robot_memory.sim.household_layout import footprint, separated
from robot_memory.sim.runner import RunnerConfig, SimulationRunner
from robot_memory.sim.scene import scene_objects

SEEDS = (0, 1, 2, 3, 4)


def runner(seed: int) -> SimulationRunner:
    return SimulationRunner(RunnerConfig(scene="household", seed=seed, panda_visual="primitive"))


def yaw_of(quat) -> float:
    w, x, y, z = quat
    return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))


def test_object_set_has_every_category_and_same_colour_twins():
    items = scene_objects("household")
    assert {i.shape for i in items} == set(CATEGORIES)
    assert 10 <= len(items) <= 20
    kinds = [(i.color, i.shape) for i in items]
    assert any(kinds.count(k) >= 2 for k in kinds), "no two objects of one colour and kind"
    assert len({i.id for i in items}) == len(items) == len(HOUSEHOLD_OBJECTS)


@pytest.mark.parametrize("seed", SEEDS)
def test_layout_settles_on_the_table_with_touching_objects(seed):
    r = runner(seed)
    gt = r.ground_truth()
    assert gt.scene == "household"
    objects = [o for o in gt.objects if o.kind == "object"]
    info = {i.id: i for i in scene_objects("household")}
    assert len(objects) == len(info)
    polys = {}
    for o in objects:
        assert o.support == "table", f"{o.id} rests on {o.support}"
        # upright: nothing toppled while settling (z within 5 mm of half its height)
        assert abs(o.position[2] - info[o.id].size[2] / 2) < 0.005, o.id
        polys[o.id] = footprint(
            info[o.id].shape, info[o.id].size, np.array(o.position[:2]), yaw_of(o.quaternion)
        )
    touching = [
        (a, b)
        for i, a in enumerate(polys)
        for b in list(polys)[i + 1 :]
        if not separated(polys[a], polys[b], 0.006)
    ]
    assert len(touching) >= 2, f"only {touching} touch"
    twins = [
        (a, b)
        for a, b in touching
        if (info[a].color, info[a].shape) == (info[b].color, info[b].shape)
    ]
    assert twins, f"no same-colour pair of one kind touches: {touching}"


def test_same_seed_same_layout_and_lights_vary_between_seeds():
    a, b, c = runner(7), runner(7), runner(8)
    pos = lambda r: np.array([o.position for o in r.ground_truth().objects])  # noqa: E731
    np.testing.assert_allclose(pos(a), pos(b), atol=1e-9)
    assert np.abs(pos(a) - pos(c)).max() > 0.05
    np.testing.assert_allclose(a.physics.model.light_diffuse, b.physics.model.light_diffuse)
    assert not np.allclose(a.physics.model.light_diffuse, c.physics.model.light_diffuse)


def test_tabletop_scene_is_unchanged_by_the_household_option():
    r = SimulationRunner(RunnerConfig(scene="tabletop", seed=0, panda_visual="primitive"))
    ids = {o.id for o in r.ground_truth().objects if o.kind == "object"}
    assert ids == {i.id for i in scene_objects("tabletop")}
