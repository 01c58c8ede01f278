"""The suite's own scheduling: under ``make test`` (``--dist loadgroup``) each
module is one xdist group, the whole-stack modules one group together
(test/conftest.py). pytest 9.2 with xdist 3.8 silently dropped the groups
(pytest-dev/pytest-xdist#1386): every module's fixture was built on both
workers and two stacks ran at once."""

from __future__ import annotations

import pytest


def test_this_module_is_one_xdist_group(request):
    if not getattr(request.config.option, "loadgroup", False):
        pytest.skip("not under pytest-xdist --dist loadgroup")
    assert request.node.nodeid.endswith("@test_test_groups"), request.node.nodeid
