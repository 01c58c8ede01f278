"""Universal Robots UR5e as an :class:`~robot_memory.robot.description.ArmDescription`.

Joint names are ``ur_robot_driver``'s, position and velocity limits
``ur_description``'s (``config/ur5e/joint_limits.yaml``: the elbow +-pi, the
other joints +-2 pi, every joint pi rad/s); Universal Robots publishes no joint
acceleration limits, so ``acceleration`` is None: set one for your cell before
the safety filter retimes to it. The kinematics (``sim/ur5e/ur5e.xml``) are
UR's published DH parameters. Only the Panda is simulated; this description
shows that a second arm is data under ``robot/`` and ``sim/``.
"""

from __future__ import annotations

import numpy as np

from robot_memory.robot.description import ArmDescription

UR5E = ArmDescription(
    name="ur5e",
    joints=(
        "shoulder_pan_joint",
        "shoulder_lift_joint",
        "elbow_joint",
        "wrist_1_joint",
        "wrist_2_joint",
        "wrist_3_joint",
    ),
    lower=np.array([-2 * np.pi, -2 * np.pi, -np.pi, -2 * np.pi, -2 * np.pi, -2 * np.pi]),
    upper=np.array([2 * np.pi, 2 * np.pi, np.pi, 2 * np.pi, 2 * np.pi, 2 * np.pi]),
    velocity=np.full(6, np.pi),
    acceleration=None,
    home=np.array([0.0, -np.pi / 2, np.pi / 2, -np.pi / 2, -np.pi / 2, 0.0]),
    mjcf="ur5e/ur5e.xml",
    base_body="ur5e_base",
    tcp_site="tcp",
    source="Universal Robots DH parameters (UR5e); ur_description joint_limits.yaml",
)

#: UR's published DH parameters for the UR5e (standard DH: d, a, alpha per joint).
DH_D = (0.1625, 0.0, 0.0, 0.1333, 0.0997, 0.0996)
DH_A = (0.0, -0.425, -0.3922, 0.0, 0.0, 0.0)
DH_ALPHA = (np.pi / 2, 0.0, 0.0, np.pi / 2, -np.pi / 2, 0.0)

__all__ = ["DH_A", "DH_ALPHA", "DH_D", "UR5E"]
