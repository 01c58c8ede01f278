"""An object memory fused from two things, taken apart (memory/unmerge.py),
through SceneMemory.update on ray-cast frames: a white bowl with a black
screwdriver against it, first seen as one cluster, then by turns apart (one
camera) and as one cluster again (the other). Without the rule memory is
stuck with one object spanning both (the screwdriver is a piece of it, and
each merged view grows it back); with it, after ``unmerge_frames`` views
apart, the bowl keeps the object's id and its own box, the screwdriver is an
object of its own, and merged views only confirm. One colour in two parts (a
mug's two walls) is never taken apart."""

from __future__ import annotations

import numpy as np
import pytest
from test_memory_core import frame, obs

from robot_memory.memory import MemoryConfig, SceneMemory

BOWL, DRIVER = (-0.02, -0.045, 0.02), (-0.0925, -0.045, 0.0125)
MERGED = ((-0.05, -0.045, 0.02), (0.14, 0.12, 0.04))


def apart() -> list:
    return [
        obs("white bowl", BOWL, (0.075, 0.11, 0.04)),
        obs("black screwdriver", DRIVER, (0.055, 0.1, 0.025)),
    ]


def by_turns(memory: SceneMemory, pairs: int) -> None:
    """The merged first view, then ``pairs`` x (a view apart, a merged view)."""
    memory.update(frame(0.0, [obs("white bowl", *MERGED)]))
    for k in range(pairs):
        memory.update(frame(0.2 * k + 0.1, apart()))
        memory.update(frame(0.2 * k + 0.2, [obs("white object", *MERGED)]))


def live(memory: SceneMemory) -> list:
    return [o for o in memory.objects() if o.status != "absent"]


@pytest.mark.parametrize("unmerge_frames", [0, 3])
def test_an_object_seen_by_turns_as_two_things_is_taken_apart(unmerge_frames: int):
    memory = SceneMemory(config=MemoryConfig(unmerge_frames=unmerge_frames))
    by_turns(memory, pairs=8)
    objects = live(memory)
    if unmerge_frames == 0:  # the rule off: stuck with the merged object
        assert len(objects) == 1 and np.ptp([objects[0].bbox_min[0], objects[0].bbox_max[0]]) > 0.12
        memory.close()
        return
    assert len(objects) == 2
    bowl = next(o for o in objects if o.id == 1)  # the bowl keeps the merged object's id
    driver = next(o for o in objects if o.id != 1)
    assert np.linalg.norm(bowl.centroid[:2] - BOWL[:2]) < 0.01
    assert np.linalg.norm(driver.centroid[:2] - DRIVER[:2]) < 0.01
    assert bowl.label == "white bowl" and driver.label == "black screwdriver"
    assert bowl.bbox_max[0] - bowl.bbox_min[0] < 0.09  # its own box, not the merged one
    memory.close()


def test_views_apart_far_between_do_not_add_up():
    """A cluster cut in two for one frame now and then (2.5 s apart, the window
    is 2 s) never takes an object apart, however long memory runs."""
    memory = SceneMemory()
    memory.update(frame(0.0, [obs("white bowl", *MERGED)]))
    for k in range(8):
        memory.update(frame(2.5 * k + 0.1, apart()))
        for j in range(1, 5):  # the merged view in between
            memory.update(frame(2.5 * k + 0.1 + 0.5 * j, [obs("white object", *MERGED)]))
    assert len(live(memory)) == 1
    memory.close()


def test_one_colour_in_two_parts_stays_one_object():
    """An open mug seen from above as its two walls, by turns with whole views."""
    memory = SceneMemory()
    memory.update(frame(0.0, [obs("red mug", (0.0, 0.0, 0.04), (0.09, 0.09, 0.08))]))
    walls = [
        obs("red mug", (-0.03, 0.0, 0.04), (0.03, 0.09, 0.08)),
        obs("red mug", (0.03, 0.0, 0.04), (0.03, 0.09, 0.08)),
    ]
    for k in range(6):
        memory.update(frame(0.2 * k + 0.1, walls))
        memory.update(frame(0.2 * k + 0.2, [obs("red mug", (0.0, 0.0, 0.04), (0.09, 0.09, 0.08))]))
    assert memory._seen_apart == {}  # never counted as two things
    memory.close()


def test_a_merged_black_view_leaves_the_screwdriver_as_it_is():
    """The wrist camera sees the screwdriver and half the bowl as one "black
    object", too large and too far off for the association to take it for
    either: whatever memory makes of it, the screwdriver keeps its place and
    its size."""
    memory = SceneMemory()
    for k in range(3):
        memory.update(frame(0.1 * k, apart()))
    driver = next(o for o in live(memory) if o.label == "black screwdriver")
    merged = obs("black object", (-0.05, -0.04, 0.03), (0.13, 0.11, 0.04), conf=0.7)
    for k in range(4):
        memory.update(frame(0.5 + 0.1 * k, [merged]))
    driver = next(o for o in live(memory) if o.id == driver.id)
    assert np.linalg.norm(driver.centroid[:2] - DRIVER[:2]) < 0.01
    assert driver.bbox_max[0] - driver.bbox_min[0] < 0.07


def test_a_tool_seen_as_its_handle_beside_a_neighbour_holding_its_shaft_stays_whole():
    """The wrist camera sees a screwdriver's handle alone and its shaft in the
    white bowl's cluster: two colours, disjoint, covering the tool's box; but
    the bowl's cluster reaches 2.4 cm beyond the tool's box (the bowl is a
    thing of its own), so these are no pieces of the tool and it keeps its
    place. A fused object's box holds its pieces whole."""
    tool = obs("black screwdriver", (-0.055, -0.071, 0.012), (0.13, 0.096, 0.024))
    bowl = obs("white bowl", (-0.022, -0.034, 0.02), (0.07, 0.07, 0.04))
    memory = SceneMemory()
    for k in range(3):
        memory.update(frame(0.1 * k, [tool, bowl]))
    driver = next(o for o in live(memory) if o.label == "black screwdriver")
    handle = obs("black screwdriver", (-0.085, -0.05, 0.012), (0.072, 0.058, 0.024))
    bowl_and_shaft = obs("white bowl", (-0.023, -0.058, 0.02), (0.072, 0.12, 0.04))
    for k in range(6):
        memory.update(frame(0.5 + 0.1 * k, [handle, bowl_and_shaft]))
    driver = next(o for o in live(memory) if o.id == driver.id)
    assert np.linalg.norm(driver.centroid[:2] - np.array([-0.055, -0.071])) < 0.01
    memory.close()
