"""The task planner (ROS-free core): instruction -> validated plan of whitelisted
skills grounded in memory -> step-by-step execution with verification in memory,
replanning and experience memory. The ROS node is robot_memory/nodes/planner_node.py."""
