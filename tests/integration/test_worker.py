"""The work loop on every broker set-up: hooks, retries, batches, trace ids, stop, dead letters."""

from __future__ import annotations

import gc
import logging
import threading
import time
import typing

import pytest

from sergeant import config
from sergeant.consume import Consumer
from sergeant.consume import prefetch as _prefetch
from sergeant.objects import Task
from sergeant.worker import Worker, WorkerSummary
from tests.servers import wait_until


class Recorder(Worker):
    """A worker whose behaviour per task is chosen by its kwargs, recording every hook call."""

    CONFIG: typing.ClassVar[config.WorkerConfig]

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, typing.Any]] = []
        self.trace_ids: list[str | None] = []
        self.holding, self.held = threading.Event(), threading.Event()  # action "hold"

    def generate_config(self) -> config.WorkerConfig:
        return self.CONFIG

    def work(self, task: Task) -> typing.Any:
        self.calls.append(("work", task.kwargs.get("i")))
        if task.kwargs.get("i") == "delayed":
            self.calls.append(("delayed_started", time.time()))
        self.trace_ids.append(self.get_trace_id())
        action = task.kwargs.get("action")
        if action == "fail":
            raise ValueError("boom")
        if action == "retry":
            self.retry(task)
        if action == "requeue_once" and task.run_count == 0 and not task.kwargs.get("again"):
            self.push_task({"i": task.kwargs["i"], "again": True})
        if action == "stop":
            self.stop()
        if action == "push_child":
            self.push_task({"i": "child"})
        if action == "sleep":
            time.sleep(task.kwargs["seconds"])
        if action == "gc":
            self.calls.append(("gc", gc.get_threshold()))
        if action == "hold":  # until the test sets held (the outcome is recorded)
            self.holding.set()
            self.calls.append(("released", self.held.wait(60)))
        return task.kwargs.get("i")

    def on_success(self, task: Task, returned_value: typing.Any) -> None:
        self.calls.append(("success", returned_value))
        if task.kwargs.get("hook_raises"):
            raise RuntimeError("hook bug")

    def on_failure(self, task: Task, exception: Exception) -> None:
        self.calls.append(("failure", repr(exception)))
        if task.kwargs.get("retry_on_failure"):
            self.retry(task)

    def on_retry(self, task: Task) -> None:
        self.calls.append(("retry", task.run_count))

    def on_max_retries(self, task: Task) -> None:
        self.calls.append(("max_retries", task.run_count))

    def on_stop(self, task: Task) -> None:
        self.calls.append(("stop", task.kwargs.get("i")))

    def on_starvation(self, time_with_no_tasks: int) -> None:
        self.calls.append(("starvation", time_with_no_tasks))
        self.stop()


@pytest.fixture
def make_worker(
    connector_config: tuple[str, dict[str, object]],
) -> typing.Iterator[typing.Callable[..., Recorder]]:
    """Build test workers on the current broker set-up; closes them afterwards."""
    workers: list[Recorder] = []

    def make(**overrides: typing.Any) -> Recorder:
        worker = build_worker(connector_config, **overrides)
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        worker.close()


def build_worker(
    connector_config: tuple[str, dict[str, object]], **overrides: typing.Any
) -> Recorder:
    kind, params = connector_config
    settings: dict[str, typing.Any] = {
        "name": "jobs",
        "connector": config.Connector(type=kind, params=params),  # type: ignore[arg-type]
        "block_seconds": 0.05,
        "starvation": config.Starvation(time_with_no_tasks=1),
    }
    settings.update(overrides)
    worker_class = type("TestWorker", (Recorder,), {"CONFIG": config.WorkerConfig(**settings)})
    worker: Recorder = worker_class()
    worker.init_worker()
    worker.purge_tasks()
    return worker


def run(worker: Recorder) -> WorkerSummary:
    summary = worker.work_loop()
    assert summary["executor_exception"] is None
    return summary


def calls(worker: Recorder, kind: str) -> list[typing.Any]:
    return [value for name, value in worker.calls if name == kind]


def test_processes_every_pushed_task_in_batches(
    make_worker: typing.Callable[..., Recorder],
) -> None:
    """push_tasks then work_loop runs each task once; tasks_per_transaction batches the pulls."""
    worker = make_worker(tasks_per_transaction=7, max_tasks_per_run=50)
    ids = worker.push_tasks([{"i": i} for i in range(50)])
    assert len(set(ids)) == 50
    summary = run(worker)
    assert sorted(calls(worker, "work")) == list(range(50))
    assert summary["tasks_done"] == 50
    assert summary["respawn"] is False
    assert summary["executor"]["total_wall_time"] > 0
    assert worker.number_of_enqueued_tasks() == 0
    assert worker.broker.connector.leased_count("jobs") == 0


def test_failure_routes_to_on_failure_and_a_hook_error_is_survived(
    make_worker: typing.Callable[..., Recorder], caplog: pytest.LogCaptureFixture
) -> None:
    """A failing task calls on_failure; an exception inside a hook is logged, the loop goes on."""
    worker = make_worker(max_tasks_per_run=3)
    worker.push_tasks([{"i": 0, "action": "fail"}, {"i": 1, "hook_raises": True}, {"i": 2}])
    with caplog.at_level(logging.ERROR):
        run(worker)
    assert calls(worker, "failure") == ["ValueError('boom')"]
    assert sorted(calls(worker, "success")) == [1, 2]  # a sharded queue keeps no order
    assert "on_success has failed: RuntimeError('hook bug')" in caplog.text
    assert "Traceback" in caplog.text


def test_retry_counts_runs_until_max_retries_then_dead_letters(
    make_worker: typing.Callable[..., Recorder],
) -> None:
    """retry() bumps run_count and re-pushes; at max_retries, on_max_retries and dead letters."""
    worker = make_worker(max_retries=2, max_tasks_per_run=3)
    [task_id] = [worker.push_task({"i": 0, "action": "retry"})]
    run(worker)
    assert calls(worker, "retry") == [1, 2]
    assert calls(worker, "max_retries") == [2]
    [(task, dead)] = worker.get_dead_tasks()
    assert task is not None
    assert (task.id, task.run_count, dead.reason) == (task_id, 2, "max retries")


def test_retry_from_on_failure(make_worker: typing.Callable[..., Recorder]) -> None:
    """Calling retry() inside on_failure routes to on_retry and runs the task again."""
    worker = make_worker(max_retries=1, max_tasks_per_run=2)
    worker.push_task({"i": 0, "action": "fail", "retry_on_failure": True})
    run(worker)
    assert calls(worker, "work") == [0, 0]
    assert calls(worker, "retry") == [1]
    assert calls(worker, "max_retries") == [1]


def test_priority_and_delayed_tasks(make_worker: typing.Callable[..., Recorder]) -> None:
    """HIGH tasks run first, then NORMAL in push order; a delayed task never runs before due."""
    worker = make_worker(max_tasks_per_run=4)
    due = time.time() + 0.5
    worker.push_task({"i": "delayed"}, consumable_from=due)
    worker.push_tasks([{"i": "n1"}, {"i": "n2"}])
    worker.push_task({"i": "h"}, priority="HIGH")
    run(worker)
    order = [i for i in calls(worker, "work") if i != "delayed"]
    if worker.broker.connector.ordered:  # else HIGH first per node only
        assert order == ["h", "n1", "n2"]
    assert sorted(order) == ["h", "n1", "n2"]
    assert calls(worker, "delayed_started")[0] >= due


def test_stop_calls_on_stop_and_returns_unstarted_tasks_intact(
    make_worker: typing.Callable[..., Recorder],
) -> None:
    """stop() ends the loop with on_stop; tasks pulled but not started go back unchanged."""
    worker = make_worker(tasks_per_transaction=10)
    ids = worker.push_tasks(
        [{"i": 0, "action": "stop"}] + [{"i": i} for i in range(1, 6)], trace_id="t-1"
    )
    summary = run(worker)
    assert summary["stop"] is True
    assert calls(worker, "stop") == [0]
    assert worker.number_of_enqueued_tasks() == 5
    back = worker.get_next_tasks(10)
    assert [task.id for task in back] == ids[1:]
    assert {task.trace_id for task in back} == {"t-1"}
    assert {task.run_count for task in back} == {0}


def test_trace_id_propagates_to_tasks_pushed_from_work(
    make_worker: typing.Callable[..., Recorder],
) -> None:
    """A task pushed inside work inherits the running task's trace id."""
    worker = make_worker(max_tasks_per_run=3)
    worker.push_task({"i": 0, "action": "push_child"}, trace_id="trace-42")
    root_id = worker.push_task({"i": 1})
    run(worker)
    expected = ["trace-42", root_id, "trace-42"]
    if worker.broker.connector.ordered:
        assert worker.trace_ids == expected
    else:  # several nodes keep no order across them
        assert sorted(map(str, worker.trace_ids)) == sorted(expected)
    assert worker.get_trace_id() is None


def test_starvation_hook_fires_after_idle_time(
    make_worker: typing.Callable[..., Recorder],
) -> None:
    """With nothing to do, on_starvation is called after time_with_no_tasks seconds."""
    worker = make_worker()
    summary = run(worker)
    assert summary["stop"] is True
    assert calls(worker, "starvation")[0] >= 1


def test_undecodable_payload_is_dead_lettered_and_the_worker_goes_on(
    make_worker: typing.Callable[..., Recorder],
) -> None:
    """Garbage bytes in the queue go to the dead letters with the decoder's error."""
    worker = make_worker(max_tasks_per_run=2, tasks_per_transaction=5)
    worker.push_task({"i": 0})
    worker.broker.connector.push_many("jobs", [b"\x80\x05garbage"])
    worker.push_task({"i": 1})
    run(worker)
    assert calls(worker, "work") == [0, 1]
    [(task, dead)] = worker.get_dead_tasks()
    assert task is None
    assert dead.payload == b"\x80\x05garbage"
    assert dead.reason.startswith("undecodable payload: pickle: ")


def test_at_most_once_mode(make_worker: typing.Callable[..., Recorder]) -> None:
    """delivery='at_most_once' runs tasks with no leases at all."""
    worker = make_worker(delivery="at_most_once", max_tasks_per_run=20, tasks_per_transaction=8)
    worker.push_tasks([{"i": i} for i in range(20)])
    run(worker)
    assert sorted(calls(worker, "work")) == list(range(20))
    assert worker.broker.connector.leased_count("jobs") == 0


def test_requeue_dead_tasks_makes_them_run(make_worker: typing.Callable[..., Recorder]) -> None:
    """Dead tasks requeued through the Worker API run again."""
    worker = make_worker(max_retries=1, max_tasks_per_run=2)
    worker.push_task({"i": 0, "action": "retry"})
    run(worker)
    assert worker.number_of_dead_tasks() == 1
    assert worker.requeue_dead_tasks() == 1
    assert worker.number_of_dead_tasks() == 0
    assert [task.kwargs["i"] for task in worker.get_next_tasks(5)] == [0]
    assert worker.purge_dead_tasks() == 0


def test_worker_lock(make_worker: typing.Callable[..., Recorder]) -> None:
    """worker.lock gives an exclusive, releasable lock."""
    worker = make_worker()
    lock = worker.lock("resource")
    assert lock.acquire(timeout=1)
    assert worker.lock("resource").acquire(timeout=0.1, check_interval=0.05) is False
    assert lock.release()


@pytest.mark.parametrize("delivery", ["at_least_once", "at_most_once"])
@pytest.mark.parametrize("prefetch", [True, 3])
def test_prefetch_runs_every_task_once(
    make_worker: typing.Callable[..., Recorder], prefetch: bool | int, delivery: str
) -> None:
    """With prefetch, each pull (a pop at-most-once) is sent while the batches before it run."""
    worker = make_worker(
        tasks_per_transaction=4, prefetch=prefetch, max_tasks_per_run=50, delivery=delivery
    )
    worker.push_tasks([{"i": i} for i in range(50)])
    run(worker)
    done = [i for name, i in worker.calls if name == "work"]
    assert sorted(done) == list(range(50))
    if worker.broker.connector.ordered:
        assert done == list(range(50))
    assert worker.number_of_enqueued_tasks() == 0
    assert worker.broker.connector.leased_count("jobs") == 0


@pytest.mark.parametrize("delivery", ["at_least_once", "at_most_once"])
@pytest.mark.parametrize(("prefetch", "stop_at"), [(True, 3), (True, 0), (3, 0), (3, 5)])
def test_prefetched_tasks_go_back_on_stop(
    make_worker: typing.Callable[..., Recorder], prefetch: bool | int, stop_at: int, delivery: str
) -> None:
    """A stop gives back the rest of the running batch and every prefetched one, unstarted
    (at-most-once: pushed back)."""
    worker = make_worker(tasks_per_transaction=2, prefetch=prefetch, delivery=delivery)
    worker.push_tasks([{"i": i, "action": "stop" if i == stop_at else None} for i in range(12)])
    assert run(worker)["stop"]
    ran = sorted(i for name, i in worker.calls if name == "work")
    if worker.broker.connector.ordered:
        assert ran == list(range(stop_at + 1))
    assert stop_at in ran  # several nodes keep no order: which others ran varies
    assert len(set(ran)) == len(ran)
    assert worker.broker.connector.leased_count("jobs") == 0
    assert worker.number_of_enqueued_tasks() == 12 - len(ran)
    again = worker.get_next_tasks(12)
    assert sorted(task.kwargs["i"] for task in again) == sorted(set(range(12)) - set(ran))


@pytest.mark.parametrize(("prefetch", "quick"), [(True, 1), (3, 3)])
def test_prefetched_lease_is_renewed_while_a_long_task_runs(
    make_worker: typing.Callable[..., Recorder],
    monkeypatch: pytest.MonkeyPatch,
    prefetch: bool | int,
    quick: int,
) -> None:
    """The heartbeat reads the pending prefetches, so their leases are renewed like the others
    (here they are not given back: see the next test)."""
    monkeypatch.setattr(_prefetch, "PATIENCE_SECONDS", 60.0)
    worker = make_worker(prefetch=prefetch, lease_seconds=1, max_tasks_per_run=1 + quick)
    long_task = {"i": "long", "action": "sleep", "seconds": 3.5}
    worker.push_tasks([long_task, *({"i": f"quick{q}"} for q in range(quick))])
    run(worker)
    expected = sorted(["long", *(f"quick{q}" for q in range(quick))])
    assert sorted(str(i) for name, i in worker.calls if name == "work") == expected
    assert worker.broker.connector.leased_count("jobs") == 0
    assert worker.number_of_enqueued_tasks() == 0  # "quick" was never reclaimed


@pytest.mark.parametrize("per_pull", [1, 3])
def test_batches_are_prefetched_by_default_where_a_pull_can_overlap(
    make_worker: typing.Callable[..., Recorder],
    connector_config: tuple[str, dict[str, typing.Any]],
    per_pull: int,
) -> None:
    """prefetch=None on Redis (one server, several, a cluster: a pull sent ahead is in
    flight on a lane): one pull ahead for batches, three for one-task pulls; none where
    a pull sent ahead would simply run at once."""
    worker = make_worker(tasks_per_transaction=per_pull, max_tasks_per_run=20)
    worker.push_tasks([{"i": i} for i in range(20)])
    consumer = Consumer(worker.broker, worker.config)
    tasks = iter(consumer)
    try:
        next(tasks)
        consumer.renew_leases()  # reads the pull in flight, if any
        kind, _params = connector_config
        redis = kind == "redis"
        ahead = (1 if per_pull > 1 else _prefetch.ONE_BY_ONE_PULLS_AHEAD) if redis else 0
        assert worker.broker.connector.leased_count("jobs") == per_pull * (1 + ahead)
    finally:
        consumer.close()
    assert worker.broker.connector.leased_count("jobs") == 0


@pytest.mark.parametrize("prefetch", [2, None])
def test_prefetched_tasks_go_to_an_idle_worker_while_a_long_task_runs(
    make_worker: typing.Callable[..., Recorder], prefetch: int | None
) -> None:
    """A worker stuck in a long task gives its prefetched tasks back to the queue, so an
    idle worker runs them meanwhile (the long task waits for that, up to 60 s)."""
    idle = make_worker(max_tasks_per_run=2, starvation=None, prefetch=0)
    busy = make_worker(prefetch=prefetch, starvation=None)  # (building one purges the queue)
    busy.push_tasks([{"i": "long", "action": "hold"}, {"i": "quick0"}, {"i": "quick1"}])
    loop = threading.Thread(target=busy.work_loop)
    loop.start()
    try:
        assert busy.holding.wait(30)
        run(idle)  # returns once it has run both quick tasks
        busy.push_task({"i": "end", "action": "stop"})
    finally:
        busy.held.set()
        loop.join(timeout=60)
    assert sorted(i for name, i in idle.calls if name == "work") == ["quick0", "quick1"]
    assert calls(busy, "work") == ["long", "end"]
    assert calls(busy, "released") == [True]
    assert busy.broker.connector.leased_count("jobs") == 0
    assert busy.number_of_enqueued_tasks() == 0


def test_a_finished_task_is_acknowledged_while_a_long_one_runs(
    make_worker: typing.Callable[..., Recorder],
) -> None:
    """Its acknowledgement does not wait for the next pull, so a crash during the long
    task would not run it again."""
    worker = make_worker(tasks_per_transaction=2, max_tasks_per_run=2, starvation=None)
    worker.push_tasks([{"i": "quick"}, {"i": "long", "action": "hold"}])
    loop = threading.Thread(target=worker.work_loop)
    loop.start()
    try:
        assert worker.holding.wait(30)
        wait_until(
            lambda: worker.broker.connector.leased_count("jobs") == 1,
            timeout=30,
            message="the quick task acknowledged while the long one runs",
        )
    finally:
        worker.held.set()
        loop.join(timeout=60)
    assert calls(worker, "work") == ["quick", "long"]
    assert worker.broker.connector.leased_count("jobs") == 0


def test_the_loop_collects_garbage_less_often_and_restores_the_setting(
    make_worker: typing.Callable[..., Recorder],
) -> None:
    """While the loop runs, gen-0 collections wait for 10,000 allocations (not 700);
    the process's setting is back afterwards, and a setting of its own is kept."""
    worker = make_worker(max_tasks_per_run=1)
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        worker.push_task({"i": 1, "action": "gc"})
        run(worker)
        assert calls(worker, "gc") == [(10_000, 10, 10)]
        assert gc.get_threshold() == (700, 10, 10)
        gc.set_threshold(500, 5, 5)
        worker.push_task({"i": 2, "action": "gc"})
        run(worker)
        assert calls(worker, "gc")[1] == (500, 5, 5)
    finally:
        gc.set_threshold(*before)
