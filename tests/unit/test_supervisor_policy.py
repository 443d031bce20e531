"""The supervisor's respawn policy: a pure function of (exit code, status, failures)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from sergeant.cli.run import parse_size
from sergeant.process.policy import (
    BACKOFF_MAX_SECONDS,
    ExitCode,
    SlaveStatus,
    backoff_seconds,
    decide,
    describe_exit,
)


@pytest.mark.parametrize("code", [ExitCode.DONE, ExitCode.RESPAWN_REQUESTED, ExitCode.TERMINATED])
def test_normal_exits_respawn_at_once(code: ExitCode) -> None:
    """max_tasks_per_run, respawn() and SIGTERM: a fresh worker, no delay, no failure."""
    decision = decide(code, SlaveStatus(pid=1, phase="done"), recent_failures=3)
    assert decision.respawn
    assert decision.delay_seconds == 0
    assert not decision.failure
    assert not decision.stop_fleet


def test_stop_stops_the_fleet() -> None:
    """A task's stop() ends the fleet without respawning."""
    decision = decide(ExitCode.STOP_REQUESTED, SlaveStatus(pid=1, stop=True), 0)
    assert decision.stop_fleet
    assert not decision.respawn
    assert decision.fatal_message is None


@pytest.mark.parametrize("code", [ExitCode.IMPORT_ERROR, ExitCode.CONFIG_ERROR])
def test_import_and_config_errors_are_fatal_with_the_workers_sentence(code: ExitCode) -> None:
    """Respawning cannot fix an import or configuration error: exit with its sentence."""
    decision = decide(code, SlaveStatus(pid=1, error="Cannot import worker module 'x'."), 0)
    assert decision.fatal_message == "Cannot import worker module 'x'."
    assert decision.stop_fleet
    assert not decision.respawn


def test_fatal_without_a_status_still_has_a_message() -> None:
    """A worker that died before reporting still yields a readable fatal message."""
    decision = decide(ExitCode.IMPORT_ERROR, None, 0)
    assert decision.fatal_message is not None
    assert "IMPORT_ERROR" in decision.fatal_message


@pytest.mark.parametrize("code", [-signal.SIGKILL, ExitCode.CRASHED, ExitCode.INIT_FAILED, 77])
def test_failures_respawn_with_exponential_backoff(code: int) -> None:
    """Kills and crashes respawn: at once the first time, then after growing delays."""
    delays = [decide(code, None, failures).delay_seconds for failures in range(5)]
    assert delays[0] == 0
    assert delays == sorted(delays)
    assert delays[1] < delays[2] < delays[3] < delays[4]
    assert all(decide(code, None, failures).failure for failures in range(5))


def test_backoff_is_capped() -> None:
    """However many failures, the delay never exceeds the cap."""
    assert backoff_seconds(1000) == BACKOFF_MAX_SECONDS


def test_describe_exit_names_signals_and_codes() -> None:
    """Exit codes read as names in the log."""
    assert describe_exit(-signal.SIGKILL) == "killed by SIGKILL"
    assert describe_exit(ExitCode.DONE) == "DONE"
    assert describe_exit(99) == "exit 99"


def test_status_round_trips_through_its_file(tmp_path: Path) -> None:
    """The status a worker writes is the status the supervisor reads."""
    status = SlaveStatus(pid=7, phase="done", tasks_done=3, threads_left=["t"], error="boom")
    path = str(tmp_path / "status.json")
    status.dump(path)
    assert SlaveStatus.load(path) == status
    assert SlaveStatus.load(str(tmp_path / "missing.json")) is None


@pytest.mark.parametrize(
    ("text", "size"),
    [("512MB", 512 * 1024**2), ("2GB", 2 * 1024**3), ("800k", 800 * 1024), ("1000", 1000)],
)
def test_parse_size_reads_units(text: str, size: int) -> None:
    """--max-memory accepts sizes with units."""
    assert parse_size(text) == size


def test_parse_size_rejects_garbage() -> None:
    """A size that is not one says how to write it."""
    with pytest.raises(ValueError, match="512MB"):
        parse_size("lots")
