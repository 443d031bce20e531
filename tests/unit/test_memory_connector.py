"""The in-process ``memory`` broker as users meet it: workers tested without files or servers."""

from __future__ import annotations

import os
import typing

from sergeant import config
from sergeant.connector import create, memory
from sergeant.errors import ConnectorError
from sergeant.objects import Task
from sergeant.worker import Worker


class Adder(Worker):
    """A user's worker: adds the numbers it is given; the test reads ``self.sums``."""

    STORE: typing.ClassVar[str] = "default"

    def __init__(self) -> None:
        super().__init__()
        self.sums: list[int] = []

    def generate_config(self) -> config.WorkerConfig:
        return config.WorkerConfig(
            name="adder",
            connector=config.Connector(type="memory", params={"name": self.STORE}),
            max_tasks_per_run=3,
            block_seconds=0.01,
        )

    def work(self, task: Task) -> typing.Any:
        self.sums.append(task.kwargs["a"] + task.kwargs["b"])


def adder(store: str) -> Adder:
    worker_class = type("TestAdder", (Adder,), {"STORE": store})
    worker: Adder = worker_class()
    worker.init_worker()
    return worker


def test_a_worker_pushes_and_runs_its_tasks_in_memory(memory_name: str) -> None:
    producer, consumer = adder(memory_name), adder(memory_name)
    producer.push_tasks([{"a": i, "b": 10} for i in range(3)])
    assert consumer.number_of_enqueued_tasks() == 3
    summary = consumer.work_loop()
    assert summary["executor_exception"] is None
    assert consumer.sums == [10, 11, 12]
    assert producer.number_of_enqueued_tasks() == 0
    assert consumer.broker.connector.leased_count("adder") == 0


def test_brokers_of_other_names_are_apart(memory_name: str) -> None:
    mine, other = adder(memory_name), adder(memory_name + "-other")
    mine.push_task({"a": 1, "b": 2})
    assert other.number_of_enqueued_tasks() == 0
    memory.forget(memory_name)
    assert adder(memory_name).number_of_enqueued_tasks() == 0


def test_the_url_names_the_store() -> None:
    assert config.Connector.from_url("memory://jobs") == config.Connector(
        type="memory", params={"name": "jobs"}
    )
    assert config.Connector.from_url("memory://").params == {"name": "default"}


def test_a_forked_child_is_refused_rather_than_given_a_private_copy(memory_name: str) -> None:
    connector = create("memory", {"name": memory_name})
    connector.push("q", b"x")
    pid = os.fork()
    if pid == 0:  # the child: every use must fail loudly
        try:
            connector.pop("q")
        except ConnectorError as exc:
            os._exit(0 if "cannot be used from process" in str(exc) else 2)
        os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert connector.pop("q") == b"x"  # the parent's broker is untouched
