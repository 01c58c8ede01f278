"""Tuning of the perception core (ROS-free), validated on construction."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PerceptionConfig:
    """All lengths in metres. Defaults are tuned for 640x480 RGB-D at 0.3-1 m."""

    # back-projection
    stride: int = 2  # use every stride-th pixel in both directions
    max_range: float = 2.0  # depth beyond this is ignored (and marks CameraView range)
    max_invalid_depth_fraction: float = 0.5  # more non-finite depth than this: reject the frame
    # cell geometry
    fixture_margin: float = 0.008  # points this close to a fixture box are dropped
    robot_mask_margin: float = 0.02  # collision geoms are inflated by this much
    # support plane (table)
    plane_voxel: float = 0.01
    plane_search_band: float = 0.04  # RANSAC only sees points within this of the table height
    plane_distance_threshold: float = 0.005
    plane_iterations: int = 80
    plane_max_points: int = 6000  # points near the table height are thinned to this first
    plane_max_tilt_deg: float = 8.0
    plane_max_offset: float = 0.02  # accepted plane height within this of cell.table_height
    min_height_above_support: float = 0.007
    # clustering
    cluster_voxel: float = 0.005
    dbscan_eps: float = 0.012
    dbscan_min_points: int = 4
    min_cluster_voxels: int = 12
    min_object_size: float = 0.015  # largest extent of a cluster must reach this
    max_object_size: float = 0.3  # larger clusters are not objects (robot, clutter)
    max_points_per_object: int = 200
    # touching objects (perception/instances.py): 0 turns splitting off
    split_cell: float = 0.005  # footprint grid [m]; = cluster_voxel: one cell per voxel column
    split_min_radius: float = 0.015  # a region's centre lies this deep inside its footprint [m]
    split_neck_ratio: float = 0.8  # a neck narrower than this x the depth separates objects
    colour_split_fraction: float = 0.2  # a hue this much of a cluster, in a place of its own: split
    split_white_black: bool = True  # also split bright white from black (see instances.py)
    wall_thickness: float = 0.012  # thinner across, and 3x as tall: a wall, never split off [m]
    split_white_value: int = 170  # unsaturated and at least this bright: white, for the split
    split_black_value: int = 45  # darker than this: black, for the split (grey between: neither)
    # thin parts cut from their body (perception/thin_parts.py): 0 turns joining off
    stick_join_gap: float = 0.035  # a body on a stick's axis this close to its end: joined [m]
    stick_max_width: float = 0.012  # narrower across than this (as a uniform band) [m] ...
    stick_min_length: float = 0.03  # ... at least this long [m] ...
    stick_max_height: float = 0.025  # ... and this low, lowest to highest voxel: a stick [m]
    stick_host_min_elongation: float = 2.0  # the body it joins: this elongated along it (0: any)
    # colour naming (HSV, OpenCV ranges: hue 0-180, sat/val 0-255)
    min_saturation: int = 70
    min_colourful_fraction: float = 0.15  # of an object's pixels, saturated: it has a hue
    min_value: int = 40
    white_value: int = 150
    grey_value: int = 70
    black_fraction: float = 0.6  # this share of an achromatic object's pixels dark: black
    # output
    depth_grid_width: int = 80
    depth_grid_height: int = 60
    # runtime
    num_threads: int = 2
    quaternion_tolerance: float = 1e-3

    def __post_init__(self) -> None:
        positive = (
            "max_range",
            "plane_voxel",
            "plane_search_band",
            "plane_distance_threshold",
            "plane_max_offset",
            "cluster_voxel",
            "dbscan_eps",
            "min_object_size",
            "max_object_size",
            "quaternion_tolerance",
            "split_cell",
            "wall_thickness",
            "stick_max_width",
            "stick_min_length",
            "stick_max_height",
        )
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        non_negative = (
            "fixture_margin",
            "robot_mask_margin",
            "min_height_above_support",
            "split_min_radius",
            "stick_join_gap",
            "stick_host_min_elongation",
        )
        for name in non_negative:
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        at_least_one = (
            "stride",
            "plane_iterations",
            "plane_max_points",
            "dbscan_min_points",
            "min_cluster_voxels",
            "max_points_per_object",
            "depth_grid_width",
            "depth_grid_height",
            "num_threads",
        )
        for name in at_least_one:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not 0.0 <= self.max_invalid_depth_fraction <= 1.0:
            raise ValueError(
                "max_invalid_depth_fraction must be in [0, 1], "
                f"got {self.max_invalid_depth_fraction}"
            )
        if not 0.0 < self.plane_max_tilt_deg < 90.0:
            raise ValueError(
                f"plane_max_tilt_deg must be in (0, 90), got {self.plane_max_tilt_deg}"
            )
        if not 0.0 < self.black_fraction <= 1.0:
            raise ValueError(f"black_fraction must be in (0, 1], got {self.black_fraction}")
        if not 0.0 < self.min_colourful_fraction <= 1.0:
            raise ValueError(
                f"min_colourful_fraction must be in (0, 1], got {self.min_colourful_fraction}"
            )
        if not 0.0 < self.colour_split_fraction <= 0.5:
            raise ValueError(
                f"colour_split_fraction must be in (0, 0.5], got {self.colour_split_fraction}"
            )
        if not 0.0 < self.split_neck_ratio <= 1.0:
            raise ValueError(f"split_neck_ratio must be in (0, 1], got {self.split_neck_ratio}")
        if self.min_object_size >= self.max_object_size:
            raise ValueError("min_object_size must be < max_object_size")
        if self.dbscan_eps < self.cluster_voxel:
            raise ValueError("dbscan_eps must be >= cluster_voxel (neighbouring voxels must link)")
        names = ("min_saturation", "min_value", "white_value", "grey_value")
        for name in (*names, "split_white_value", "split_black_value"):
            if not 0 <= getattr(self, name) <= 255:
                raise ValueError(f"{name} must be in [0, 255], got {getattr(self, name)}")
        if self.grey_value > self.white_value:
            raise ValueError("grey_value must be <= white_value")
        if self.split_black_value >= self.split_white_value:
            raise ValueError("split_black_value must be < split_white_value")
