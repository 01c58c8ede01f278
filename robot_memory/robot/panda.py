"""Franka Emika Panda constants: joint names, limits and the home pose.

Values are Franka's published limits
(https://frankaemika.github.io/docs/control_parameters.html). This module is
pure data so the simulator, the trajectory validator and (later) the safety
node share exactly one copy.
"""

from __future__ import annotations

import numpy as np

from robot_memory.robot.description import ArmDescription, JointLimits

ARM_JOINTS: tuple[str, ...] = tuple(f"panda_joint{i}" for i in range(1, 8))
FINGER_JOINTS: tuple[str, ...] = ("panda_finger_joint1", "panda_finger_joint2")
ALL_JOINTS: tuple[str, ...] = ARM_JOINTS + FINGER_JOINTS

#: Position limits [rad], joints 1..7.
ARM_LOWER = np.array([-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973])
ARM_UPPER = np.array([2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973])
#: Velocity limits [rad/s], joints 1..7.
ARM_VELOCITY = np.array([2.1750, 2.1750, 2.1750, 2.1750, 2.6100, 2.6100, 2.6100])
#: Acceleration limits [rad/s^2], joints 1..7.
ARM_ACCELERATION = np.array([15.0, 7.5, 10.0, 12.5, 15.0, 20.0, 20.0])
#: Torque limits [Nm], joints 1..7.
ARM_EFFORT = np.array([87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0])

#: Gripper opening (distance between the fingers) [m].
GRIPPER_MIN_WIDTH = 0.0
GRIPPER_MAX_WIDTH = 0.08
#: Pseudo-joint carrying the gripper opening [m] in policy action chunks
#: (``/policy/action_chunk``), next to the arm joints.
GRIPPER_WIDTH_JOINT = "gripper_width"

#: The `home` keyframe: elbow up, hand pointing down.
HOME_ARM = np.array([0.0, -0.3, 0.0, -2.2, 0.0, 1.9, 0.7854])
HOME_GRIPPER_WIDTH = 0.08


PANDA_ARM_LIMITS = JointLimits(ARM_JOINTS, ARM_LOWER, ARM_UPPER, ARM_VELOCITY)

#: The Panda as an :class:`ArmDescription` (the arm the cell simulates).
PANDA = ArmDescription(
    name="panda",
    joints=ARM_JOINTS,
    lower=ARM_LOWER,
    upper=ARM_UPPER,
    velocity=ARM_VELOCITY,
    acceleration=ARM_ACCELERATION,
    home=HOME_ARM,
    mjcf="panda/panda.xml",
    base_body="panda_link0",
    tcp_site="tcp",
    source="https://frankaemika.github.io/docs/control_parameters.html",
)
