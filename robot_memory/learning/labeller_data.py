"""Training data for the default labeller: the project's objects, rendered in
its own cells, segmented by the real perception pipeline and matched to the
simulator's ground truth (one row of crop features per matched object).

Each episode renders one scene (``tabletop`` primitives or ``household``
objects) with a new layout and lighting, from the front camera and the wrist
camera at home and at ``wrist_looks`` random poses over the table (heights and
offsets varied), with perfect depth or the RealSense noise model. A cluster is
kept when most of its points lie in one object's footprint and no other
object's: merged clusters teach nothing about a category.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import mujoco
import numpy as np

from robot_memory.perception.labelling.base import ObjectCrop
from robot_memory.perception.labelling.crop_features import crop_features
from robot_memory.perception.labelling.shape_rules import ShapeRuleLabeller
from robot_memory.perception.pipeline import PerceptionPipeline
from robot_memory.robot.ik import ArmIK, top_down_rotation
from robot_memory.robot.panda import ARM_JOINTS, HOME_ARM
from robot_memory.schemas import GroundTruthObject
from robot_memory.sim.cameras import CameraRig
from robot_memory.sim.depth_noise import DepthNoise
from robot_memory.sim.household_layout import footprint
from robot_memory.sim.runner import RunnerConfig, SimulationRunner

#: Ground-truth shape -> the category a labeller answers (the cover is a box to a camera).
CATEGORY_OF = {"cover": "box"}
MIN_OWN_FRACTION = 0.7  # of a cluster's points inside its object's footprint
MAX_OTHER_FRACTION = 0.15  # ... and at most this inside any other's


@dataclass
class LabelledCrops:
    features: np.ndarray  # (N, F) float32
    categories: list[str]
    scenes: list[str]
    seeds: np.ndarray  # (N,) the episode seed of each row (for a split by episode)


def category_of(obj: GroundTruthObject) -> str:
    return CATEGORY_OF.get(obj.shape, obj.shape)


def _yaw(q) -> float:
    w, x, y, z = q
    return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))


def _inside_fraction(points: np.ndarray, obj: GroundTruthObject, margin: float = 0.004) -> float:
    poly = footprint(obj.shape, obj.size, np.asarray(obj.position[:2]), _yaw(obj.quaternion))
    contour = poly.astype(np.float32).reshape(-1, 1, 2)
    inside = [
        cv2.pointPolygonTest(contour, (float(x), float(y)), True) > -margin for x, y in points
    ]
    return float(np.mean(inside)) if inside else 0.0


def match_crop(crop: ObjectCrop, truth: list[GroundTruthObject]) -> GroundTruthObject | None:
    """The one ground-truth object ``crop`` shows, or None (merged, clutter, arm)."""
    xy = crop.points[:: max(1, len(crop.points) // 150), :2]
    fractions = [(_inside_fraction(xy, o), o) for o in truth]
    fractions.sort(key=lambda f: -f[0])
    if not fractions or fractions[0][0] < MIN_OWN_FRACTION:
        return None
    if len(fractions) > 1 and fractions[1][0] > MAX_OTHER_FRACTION:
        return None
    return fractions[0][1]


def collect_crops(
    scene: str,
    seeds: range,
    wrist_looks: int = 3,
    noisy_every: int = 2,
    width: int = 640,
    height: int = 480,
) -> Iterator[tuple[int, ObjectCrop, str]]:
    """(seed, crop, category) of every matched object of every view of ``seeds``."""
    runner = SimulationRunner(RunnerConfig(scene=scene, seed=seeds.start, panda_visual="lowpoly"))
    model, data = runner.physics.model, runner.physics.data
    perfect = CameraRig(model, width, height)
    noisy = CameraRig(model, width, height, depth_noise=DepthNoise())
    ik = ArmIK(model)
    pipeline = PerceptionPipeline(labeller=ShapeRuleLabeller())
    addr = [model.jnt_qposadr[model.joint(n).id] for n in ARM_JOINTS]
    for seed in seeds:
        runner.reset(seed)
        rng = np.random.default_rng(seed)
        rig = noisy if noisy_every and seed % noisy_every == 0 else perfect
        truth = [o for o in runner.ground_truth().objects if o.shape != "table"]
        for look in range(wrist_looks + 1):
            if look == 0:
                data.qpos[addr] = HOME_ARM
            else:
                target = np.array(
                    [rng.uniform(0.0, 0.15), rng.uniform(-0.25, 0.25), rng.uniform(0.33, 0.5)]
                )
                data.qpos[addr] = ik.solve(HOME_ARM, target, top_down_rotation(0.0)).q
            mujoco.mj_forward(model, data)
            joints = {n: float(data.qpos[a]) for n, a in zip(ARM_JOINTS, addr, strict=True)}
            for cam in ("front", "wrist") if look == 0 else ("wrist",):
                rgb, depth = rig.render(runner.physics, cam)
                pos, quat = rig.optical_pose(runner.physics, cam)
                pipeline.process(rgb, depth, rig.intrinsics(cam), pos, quat, 0.0, cam, joints)
                for crop in pipeline.last_crops:
                    obj = match_crop(crop, truth)
                    if obj is not None:
                        yield seed, crop, category_of(obj)


def build_dataset(scenes: dict[str, range], wrist_looks: int = 3, progress=None) -> LabelledCrops:
    """Crop features of ``scenes`` (name -> episode seeds); ``progress(n)`` per episode."""
    rows, categories, scene_of, seed_of = [], [], [], []
    for scene, seeds in scenes.items():
        last = None
        for seed, crop, category in collect_crops(scene, seeds, wrist_looks):
            rows.append(crop_features(crop))
            categories.append(category)
            scene_of.append(scene)
            seed_of.append(seed)
            if progress is not None and seed != last:
                progress(1)
                last = seed
    return LabelledCrops(
        np.asarray(rows, np.float32).reshape(-1, len(rows[0]) if rows else 0),
        categories,
        scene_of,
        np.asarray(seed_of),
    )
