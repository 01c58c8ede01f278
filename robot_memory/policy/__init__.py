"""The diffusion action policy: demonstrations, model, training, rollouts.

Everything here is ROS-free; ``robot_memory.nodes.policy_node`` is the thin
adapter. Layout follows LeRobot's ``policies/diffusion``:
``configuration_diffusion`` (validated dataclass), ``modeling_diffusion``
(network + schedulers), ``processor_diffusion`` (features, normalizer).
"""
