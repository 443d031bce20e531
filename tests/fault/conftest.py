"""Fixtures of the fault suite: a :class:`~tests.fault.harness.Chaos` per broker kind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import connector_params
from tests.fault.harness import Chaos


@pytest.fixture
def chaos(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Chaos]:
    """Worker processes over the broker kind given by indirect parametrization."""
    kind: str = request.param
    harness = Chaos(tmp_path, connector_params(request, kind, tmp_path))
    yield harness
    harness.close()
