"""``Worker.push_task(group_key=...)`` / ``push_tasks(group_keys=...)`` on the in-process
broker: grouped tasks run, keys are checked, a unique key and a group key refuse."""

from __future__ import annotations

import typing

import pytest

from sergeant import Worker, WorkerConfig
from sergeant.config import Connector


def make_worker(memory_name: str, **changes: typing.Any) -> Worker:
    class Grouped(Worker):
        seen: typing.ClassVar[list[str]] = []

        def generate_config(self) -> WorkerConfig:
            connector = Connector(type="memory", params={"name": memory_name})
            return WorkerConfig(name="grouped", connector=connector, **changes)

        def work(self, task: typing.Any) -> None:
            self.seen.append(task.kwargs["g"])

    worker = Grouped()
    worker.init_broker()
    return worker


def test_grouped_tasks_run_round_robin_within_the_bound(memory_name: str) -> None:
    worker = make_worker(memory_name, group_concurrency=1, max_tasks_per_run=7)
    worker.push_tasks([{"g": "a"}] * 5, group_keys="a")
    worker.push_tasks([{"g": "b"}, {"g": "-"}], group_keys=["b", None])
    worker.push_task({"g": "c"}, group_key="c")
    worker.init_worker()
    worker.work_loop()
    seen = worker.seen  # type: ignore[attr-defined]
    assert sorted(seen[:4]) == ["-", "a", "b", "c"]  # one of each member first
    left = worker.broker.group_counts("grouped")
    assert [(g.group, g.ready, g.leased) for g in left] == [("a", 1, 0)]  # 8 pushed, 7 ran
    worker.close()


def test_push_tasks_takes_the_issue_name_group_key_too(memory_name: str) -> None:
    """``push_tasks(group_key=...)``: one key for all, or a list, as ``group_keys``."""
    worker = make_worker(memory_name)
    worker.push_tasks([{"g": "a"}] * 3, group_key="a")
    worker.push_tasks([{"g": "b"}, {"g": "-"}], group_key=["b", None])
    counts = {g.group: g.ready for g in worker.broker.group_counts("grouped")}
    assert counts == {"a": 3, "b": 1}
    assert worker.number_of_enqueued_tasks() == 5
    with pytest.raises(ValueError, match="not both"):
        worker.push_tasks([{}], group_key="a", group_keys="a")
    worker.close()


def test_group_keys_are_checked(memory_name: str) -> None:
    worker = make_worker(memory_name)
    with pytest.raises(ValueError, match="both a unique key and a group key"):
        worker.push_task({}, unique_key="k", group_key="g")
    with pytest.raises(ValueError, match="2 keys for 1 tasks"):
        worker.push_tasks([{}], group_keys=["a", "b"])
    with pytest.raises(ValueError, match="group key 0 is empty"):
        worker.push_tasks([{}], group_keys=[""])
    with pytest.raises(TypeError, match="not a str"):
        worker.push_tasks([{}], group_keys=[3])  # type: ignore[list-item]
    assert worker.number_of_enqueued_tasks() == 0
    worker.close()


def test_the_metrics_export_the_largest_groups(memory_name: str) -> None:
    from sergeant.ops.metrics_server import _group_gauges

    worker = make_worker(memory_name)
    assert list(_group_gauges(worker.broker, "grouped")) == []  # no group: no family
    worker.push_tasks([{"g": "a"}] * 3, group_keys="a")
    (family,) = _group_gauges(worker.broker, "grouped")
    assert family.name == "sergeant_group_tasks"
    assert {(s.labels["group"], s.labels["state"], s.value) for s in family.samples} == {
        ("a", "running", 0),
        ("a", "ready", 3),
    }
    worker.close()
