"""Hook routing of one task, as in Sergeant 0.27: which hooks run, in what order, what outcome."""

from __future__ import annotations

import contextlib
import logging
import typing

import pytest

from sergeant import config
from sergeant.executor import Outcome, run_task_with_value
from sergeant.executor._executor import HookTarget, Runner, execute_one
from sergeant.executor.serial import TimedTarget
from sergeant.objects import Task
from sergeant.worker import (
    Worker,
    WorkerMaxRetries,
    WorkerRequeue,
    WorkerRespawn,
    WorkerRetry,
    WorkerStop,
    WorkerTimedout,
)


class Recorder(Worker):
    """Every hook records its call; ``task.kwargs`` says what ``work`` and the hooks raise."""

    def __init__(self, events: config.LoggingEvents | None = None) -> None:
        self.events = events or config.LoggingEvents()
        super().__init__()
        self.calls: list[tuple[typing.Any, ...]] = []

    def generate_config(self) -> config.WorkerConfig:
        return config.WorkerConfig(name="q", logging=config.Logging(events=self.events))

    def work(self, task: Task) -> typing.Any:
        self.calls.append(("work",))
        raised = task.kwargs.get("work")
        if raised is not None:
            raise raised
        return "value"

    def _hook(self, name: str, task: Task, *args: typing.Any) -> None:
        self.calls.append(
            (name, *(a if a in (None, True, False) else type(a).__name__ for a in args))
        )
        raised = task.kwargs.get(name)
        if raised is not None:
            raise raised

    def pre_work(self, task: Task) -> None:
        self._hook("pre_work", task)

    def post_work(self, task: Task, success: bool, exception: BaseException | None) -> None:
        self._hook("post_work", task, success, exception)

    def on_success(self, task: Task, returned_value: typing.Any) -> None:
        self._hook("on_success", task, returned_value)

    def on_failure(self, task: Task, exception: Exception) -> None:
        self._hook("on_failure", task, exception)

    def on_timeout(self, task: Task) -> None:
        self._hook("on_timeout", task)

    def on_retry(self, task: Task) -> None:
        self._hook("on_retry", task)

    def on_requeue(self, task: Task) -> None:
        self._hook("on_requeue", task)

    def on_max_retries(self, task: Task) -> None:
        self._hook("on_max_retries", task)

    def on_stop(self, task: Task) -> None:
        self._hook("on_stop", task)


FAILED = ("post_work", False)
ROUTES: list[tuple[dict[str, BaseException], Outcome, list[tuple[typing.Any, ...]]]] = [
    ({}, Outcome.SUCCESS, [("post_work", True, None), ("on_success", "str")]),
    (
        {"work": ValueError("x")},
        Outcome.FAILURE,
        [(*FAILED, "ValueError"), ("on_failure", "ValueError")],
    ),
    (
        {"work": WorkerTimedout()},
        Outcome.TIMEOUT,
        [(*FAILED, "WorkerTimedout"), ("on_timeout",)],
    ),
    ({"work": WorkerRetry()}, Outcome.RETRY, [(*FAILED, "WorkerRetry"), ("on_retry",)]),
    (
        {"work": WorkerMaxRetries()},
        Outcome.MAX_RETRIES,
        [(*FAILED, "WorkerMaxRetries"), ("on_max_retries",)],
    ),
    ({"work": WorkerRequeue()}, Outcome.REQUEUE, [(*FAILED, "WorkerRequeue"), ("on_requeue",)]),
    (
        {"work": ValueError("x"), "on_failure": WorkerRetry()},
        Outcome.RETRY,
        [(*FAILED, "ValueError"), ("on_failure", "ValueError"), ("on_retry",)],
    ),
    (
        {"work": WorkerTimedout(), "on_timeout": WorkerMaxRetries()},
        Outcome.MAX_RETRIES,
        [(*FAILED, "WorkerTimedout"), ("on_timeout",), ("on_max_retries",)],
    ),
    (
        {"work": ValueError("x"), "on_failure": WorkerRequeue()},
        Outcome.REQUEUE,
        [(*FAILED, "ValueError"), ("on_failure", "ValueError"), ("on_requeue",)],
    ),
    (  # a hook's own error is logged, the outcome stands
        {"on_success": RuntimeError("bug"), "post_work": RuntimeError("bug")},
        Outcome.SUCCESS,
        [("post_work", True, None), ("on_success", "str")],
    ),
    (  # control flow from a hook that may not route has no meaning: logged too
        {"work": WorkerRetry(), "on_retry": WorkerRequeue()},
        Outcome.RETRY,
        [(*FAILED, "WorkerRetry"), ("on_retry",)],
    ),
]


def timed(target: Recorder) -> HookTarget:
    return typing.cast(HookTarget, TimedTarget(target, lambda task: contextlib.nullcontext()))


@pytest.mark.parametrize("wrap", [False, True], ids=["plain", "timed"])
@pytest.mark.parametrize(("raises", "outcome", "calls"), ROUTES)
def test_outcomes_route_to_the_0_27_hooks(
    raises: dict[str, BaseException],
    outcome: Outcome,
    calls: list[tuple[typing.Any, ...]],
    wrap: bool,
) -> None:
    worker = Recorder()
    target = timed(worker) if wrap else worker
    assert run_task_with_value(target, Task(kwargs=raises))[0] is outcome
    assert worker.calls == [("pre_work",), ("work",), *calls]


@pytest.mark.parametrize(
    ("raised", "calls"),
    [
        (WorkerStop(), [("post_work", False, "WorkerStop"), ("on_stop",)]),
        (WorkerRespawn(), [("post_work", False, "WorkerRespawn")]),
    ],
)
def test_stop_and_respawn_end_the_loop_and_settle_the_task_as_interrupted(
    raised: BaseException, calls: list[tuple[typing.Any, ...]]
) -> None:
    worker = Recorder()
    settled = Settled()
    with pytest.raises(type(raised)):
        execute_one(settled, worker, Task(kwargs={"work": raised}))
    assert worker.calls == [("pre_work",), ("work",), *calls]
    assert settled.outcomes == [Outcome.INTERRUPTED]


def test_an_interrupt_from_a_hook_ends_the_loop_too() -> None:
    worker = Recorder()
    settled = Settled()
    with pytest.raises(WorkerStop):
        execute_one(settled, worker, Task(kwargs={"on_success": WorkerStop()}))
    assert settled.outcomes == [Outcome.INTERRUPTED]


def test_other_base_exceptions_propagate_without_post_work() -> None:
    worker = Recorder()
    with pytest.raises(KeyboardInterrupt):
        run_task_with_value(worker, Task(kwargs={"work": KeyboardInterrupt()}))
    assert worker.calls == [("pre_work",), ("work",)]


def test_the_value_is_what_work_returned_or_raised() -> None:
    error = ValueError("x")
    assert run_task_with_value(Recorder(), Task())[1] == "value"
    assert run_task_with_value(Recorder(), Task(kwargs={"work": error}))[1] is error


def test_a_success_is_logged_only_when_asked(caplog: pytest.LogCaptureFixture) -> None:
    quiet, loud = Recorder(), Recorder(config.LoggingEvents(on_success=True))
    # On the worker's own logger: an earlier test's worker named "q" may have set its level.
    with caplog.at_level(logging.INFO, logger="q"):
        run_task_with_value(quiet, Task())
        assert [getattr(r, "event", None) for r in caplog.records] == []
        run_task_with_value(loud, Task())
    assert [getattr(r, "event", None) for r in caplog.records] == ["success"]


def test_hooks_left_as_the_base_class_no_ops_are_skipped_and_instance_hooks_run() -> None:
    class Plain(Worker):
        def generate_config(self) -> config.WorkerConfig:
            return config.WorkerConfig(name="q")

    worker = Plain()
    runner = Runner(worker)
    assert (runner._pre_work, runner._post_work, runner._on_success) == (False, False, False)
    seen: list[typing.Any] = []
    worker.on_success = lambda task, returned_value: seen.append(returned_value)  # type: ignore[method-assign]
    assert run_task_with_value(worker, Task())[0] is Outcome.SUCCESS
    assert seen == [None]


class Settled:
    """A task source that only records how its tasks were settled."""

    def __init__(self) -> None:
        self.outcomes: list[Outcome] = []

    def __iter__(self) -> typing.Iterator[Task]:
        return iter([])

    def started(self, task: Task) -> None:
        pass

    def settle(self, task: Task, outcome: Outcome, value: typing.Any = None) -> None:
        self.outcomes.append(outcome)
