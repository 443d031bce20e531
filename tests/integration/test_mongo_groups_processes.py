"""The worker-process tests of groups (``test_groups_processes``) on MongoDB, one
deployment and two independent nodes: the bound holds across processes and a
SIGKILL, and a small group is served at once behind a big one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import connector_params
from tests.integration.test_groups_processes import (
    Groups,
    test_a_small_group_is_not_stuck_behind_a_big_one,
    test_group_concurrency_holds_across_processes_and_a_kill,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

__all__ = [
    "test_a_small_group_is_not_stuck_behind_a_big_one",
    "test_group_concurrency_holds_across_processes_and_a_kill",
]


@pytest.fixture(params=["mongo", "mongo-2-nodes"])
def groups(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Groups]:
    harness = Groups(tmp_path, connector_params(request, request.param, tmp_path))
    yield harness
    harness.close()
