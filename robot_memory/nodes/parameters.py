"""Declaring a node's parameters from its defaults in the launch spec."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rclpy.exceptions import ParameterUninitializedException
from rclpy.node import Node


def declare_parameters(node: Node, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Declare every parameter with its default and return the values.

    An empty list on the command line (``watched_cameras:=[]``) arrives without
    a type, which rclpy leaves "not set": it reads as the empty list here,
    where the default is a list, instead of failing the node at start."""
    values: dict[str, Any] = {}
    for name, default in defaults.items():
        node.declare_parameter(name, default)
        try:
            values[name] = node.get_parameter(name).value
        except ParameterUninitializedException:
            if not isinstance(default, list):
                raise
            values[name] = []
    return values
