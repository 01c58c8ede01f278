"""Policy learning, apart from the runtime a robot runs (``robot_memory.policy``):
demonstrations from the scripted expert, bag-to-dataset conversion, datasets,
training, and closed-loop evaluation in the simulator (the in-process loop
over the policy node's own skill executor)."""
