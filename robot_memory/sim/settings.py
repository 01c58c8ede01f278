"""The evaluation settings: which cell and which camera imperfections (ROS-free).

* ``primitives``: the tabletop cell's coloured primitives, perfect depth, exact
  camera mounts (the easy setting every earlier number was measured in);
* ``realistic``: the household cell (mugs, bowls, bottles, cans, boxes,
  screwdrivers; same-colour twins, touching objects), RealSense-class depth
  noise (:mod:`robot_memory.sim.depth_noise`) and camera mounts 3 mm and 0.3
  degrees off their calibration.

``robot-memory scenarios --setting`` and ``robot-memory eval-tasks --setting``
read them from here, so the bags and the task suite mean the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Setting:
    scene: str  # robot_memory.sim.scene.SCENES
    depth_noise: str  # robot_memory.sim.depth_noise.DEPTH_NOISE_MODELS
    extrinsic_error: tuple[float, float]  # camera mounts off by (mm, degrees)


SETTINGS: dict[str, Setting] = {
    "primitives": Setting("tabletop", "none", (0.0, 0.0)),
    "realistic": Setting("household", "realsense", (3.0, 0.3)),
}


def setting_named(name: str) -> Setting:
    if name not in SETTINGS:
        raise ValueError(f"unknown setting {name!r}; settings: {', '.join(SETTINGS)}")
    return SETTINGS[name]


__all__ = ["SETTINGS", "Setting", "setting_named"]
