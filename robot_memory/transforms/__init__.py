"""Frames and transforms without ROS: a tf2-like buffer for /tf and /tf_static."""
