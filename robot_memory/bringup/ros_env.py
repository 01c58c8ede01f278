"""The process environment every robot_memory node runs with.

Kept ROS-free so the launcher, the tests and the benches can set it up before
any rclpy import. See docs/architecture.md, "DDS set-up".
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping, Sequence

from robot_memory.paths import config_path

FASTDDS_PROFILE = "fastdds_profile.xml"
#: Hosts over a network: UDP only (no shared memory), large socket buffers.
FASTDDS_NETWORK_PROFILE = "fastdds_network.xml"
#: Set by the launcher for each node process: how often it was restarted, and
#: the launcher's pid (a node stops when its launcher is gone).
RESTART_COUNT_ENV = "ROBOT_MEMORY_RESTART_COUNT"
PARENT_PID_ENV = "ROBOT_MEMORY_PARENT_PID"


def dds_environment(
    base: Mapping[str, str] | None = None,
    domain_id: int | None = None,
    network: bool = False,
    peers: Sequence[str] = (),
) -> dict[str, str]:
    """Return ``base`` (default: os.environ) with the DDS settings filled in.

    One machine (default): discovery on loopback, images through a 16 MB
    shared-memory segment. ``network`` (a stack split over hosts): discovery
    on the subnet, every message over UDP (:data:`FASTDDS_NETWORK_PROFILE`),
    and ``peers`` (the other hosts' addresses) as ``ROS_STATIC_PEERS``, for
    networks where multicast discovery does not pass. Values already present in
    ``base`` win, so a user can still point at their own Fast DDS profile.
    """
    env = dict(os.environ if base is None else base)
    env.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    # ROS_LOCALHOST_ONLY is deprecated and had no effect with these wheels.
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "SUBNET" if network else "LOCALHOST")
    profile = FASTDDS_NETWORK_PROFILE if network else FASTDDS_PROFILE
    env.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(config_path(profile)))
    if peers:
        env.setdefault("ROS_STATIC_PEERS", ";".join(peers))
    env.setdefault("MUJOCO_GL", "egl")
    env.setdefault("PYTHONUNBUFFERED", "1")
    if domain_id is not None:
        env["ROS_DOMAIN_ID"] = str(domain_id)
    return env


def random_domain_id(rng: random.Random | None = None) -> int:
    """A domain id for an isolated run (tests, benches).

    Fast DDS maps domains to UDP ports; ids 1..101 are safe on Linux defaults.
    """
    return (rng or random.SystemRandom()).randint(1, 101)


def apply_to_current_process(
    domain_id: int | None = None, network: bool = False, peers: Sequence[str] = ()
) -> dict[str, str]:
    """Set the DDS environment in ``os.environ`` (before rclpy.init)."""
    env = dds_environment(domain_id=domain_id, network=network, peers=peers)
    os.environ.update(env)
    return env
