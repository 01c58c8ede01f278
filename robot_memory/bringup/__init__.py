"""Bring-up: the launch spec (which nodes, with which parameters, per stack),
the launcher that runs and supervises them, and the ROS/DDS environment."""
