"""A worker written for Sergeant 0.27 runs unchanged on Redis."""

from __future__ import annotations

import typing

import sergeant


def test_a_0_27_worker_runs_unchanged(redis_node: dict[str, typing.Any]) -> None:
    """The 0.27 idiom (nodes form, push after init_broker, init_worker + work_loop) just works."""
    host, port = redis_node["host"], redis_node["port"]

    class Worker(sergeant.worker.Worker):
        seen: list[int]

        def generate_config(self) -> sergeant.config.WorkerConfig:
            return sergeant.config.WorkerConfig(
                name="test_worker",
                connector=sergeant.config.Connector(
                    type="redis",
                    params={
                        "nodes": [
                            {"host": host, "port": port, "password": None, "database": 0},
                        ],
                    },
                ),
                max_tasks_per_run=101,
                tasks_per_transaction=10,
                encoder=sergeant.config.Encoder(serializer="msgpack", compressor="zlib"),
                logging=sergeant.config.Logging(
                    events=sergeant.config.LoggingEvents(on_success=True),
                ),
            )

        def work(self, task: sergeant.objects.Task) -> None:
            self.seen.append(task.kwargs["number"])

    producer = Worker()
    producer.init_broker()
    producer.purge_tasks()
    assert producer.push_task(kwargs={"number": -1}, consumable_from=0)
    assert producer.push_tasks(kwargs_list=[{"number": n} for n in range(100)], priority="NORMAL")
    assert producer.number_of_enqueued_tasks() == 101

    worker = Worker()
    worker.seen = []
    worker.init_worker()
    summary = worker.work_loop()
    assert summary["respawn"] is False
    assert summary["executor_exception"] is None
    assert worker.seen == [-1, *range(100)]
    assert producer.number_of_enqueued_tasks(include_delayed=True) == 0
    worker.close()
    producer.close()
