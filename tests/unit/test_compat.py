"""Every Sergeant 0.27 name, field and default a user's code can touch is still there."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import logging
import subprocess
import sys
import tempfile

import pytest

import sergeant
from sergeant import config, worker


def test_public_submodules_are_attributes() -> None:
    """``import sergeant`` makes the 0.27 submodules reachable as attributes."""
    for name in ["worker", "config", "objects", "supervisor", "connector", "encoder", "logging"]:
        assert inspect.ismodule(getattr(sergeant, name)), name


def defaults(cls: type) -> dict[str, object]:
    result: dict[str, object] = {}
    for field in dataclasses.fields(cls):
        if field.default is not dataclasses.MISSING:
            result[field.name] = field.default
        elif field.default_factory is not dataclasses.MISSING:
            result[field.name] = field.default_factory()
        else:
            result[field.name] = "<required>"
    return result


def test_worker_config_fields_and_defaults() -> None:
    """WorkerConfig keeps 0.27's fields, order and defaults."""
    fields = defaults(config.WorkerConfig)
    assert list(fields)[:10] == [
        "name", "connector", "max_tasks_per_run", "max_retries", "tasks_per_transaction",
        "number_of_threads", "encoder", "timeouts", "logging", "starvation",
    ]  # fmt: skip
    assert fields["max_tasks_per_run"] == 0
    assert fields["max_retries"] == 0
    assert fields["tasks_per_transaction"] == 1
    assert fields["number_of_threads"] == 1
    assert fields["encoder"] == config.Encoder()
    assert fields["timeouts"] == config.Timeouts()
    assert fields["logging"] == config.Logging()
    assert fields["starvation"] is None
    connector = config.WorkerConfig(name="w").connector
    assert connector.type == "local"
    assert connector.params["file_path"].startswith(tempfile.gettempdir())


def test_small_config_classes_defaults() -> None:
    """Connector, Encoder, Timeouts, Logging, LoggingEvents, Starvation keep 0.27's defaults."""
    assert defaults(config.Connector) == {"params": "<required>", "type": "local"}
    assert defaults(config.Encoder) == {
        "compressor": None, "serializer": "pickle",
        "signing_key": None, "signing_key_env": None, "signing_key_file": None,  # new: unsigned
    }  # fmt: skip
    assert defaults(config.Timeouts) == {"timeout": 0.0, "grace_period": 10.0}
    assert defaults(config.Logging) == {
        "level": logging.ERROR, "log_to_stdout": False,
        "events": config.LoggingEvents(), "handlers": [],
        "json": False,  # new in 1.x, off: 0.27's plain text lines
    }  # fmt: skip
    assert defaults(config.LoggingEvents) == {
        "on_success": False, "on_failure": True, "on_timeout": True, "on_retry": True,
        "on_max_retries": True, "on_requeue": True, "on_starvation": True, "on_stop": True,
        "on_cancel": True,  # new: Worker.cancel
    }  # fmt: skip
    assert defaults(config.Starvation) == {"time_with_no_tasks": "<required>"}


def test_config_classes_are_frozen_and_replace_works() -> None:
    """Config objects are immutable; WorkerConfig.replace returns a changed copy."""
    cfg = config.WorkerConfig(name="w")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.name = "x"  # type: ignore[misc]
    changed = cfg.replace(max_retries=3)
    assert (changed.max_retries, changed.name, cfg.max_retries) == (3, "w", 0)


def test_task_fields() -> None:
    """Task keeps kwargs, trace_id, date, run_count, and adds a unique id."""
    task = sergeant.objects.Task(kwargs={"a": 1})
    assert task.kwargs == {"a": 1}
    assert task.trace_id is None
    assert isinstance(task.date, float)
    assert task.run_count == 0
    assert task.id != sergeant.objects.Task().id


def test_control_flow_exceptions_hierarchy() -> None:
    """The control-flow exceptions derive from BaseException through WorkerException."""
    assert issubclass(worker.WorkerException, BaseException)
    assert not issubclass(worker.WorkerException, Exception)
    for name in [
        "WorkerTimedout",
        "WorkerRetry",
        "WorkerMaxRetries",
        "WorkerRequeue",
        "WorkerInterrupt",
    ]:
        assert issubclass(getattr(worker, name), worker.WorkerException), name
    assert issubclass(worker.WorkerRespawn, worker.WorkerInterrupt)
    assert issubclass(worker.WorkerStop, worker.WorkerInterrupt)


def test_worker_methods_and_hooks_exist_with_0_27_signatures() -> None:
    """Every 0.27 Worker method and hook is there, with its parameter names first;
    a parameter added since has a default, so 0.27 calls still work."""
    expected = {
        "init_broker": [], "init_worker": [], "work_loop": [], "stop": [], "respawn": [],
        "get_trace_id": [], "initialize": [], "finalize": [],
        "push_task": ["kwargs", "task_name", "priority", "consumable_from", "trace_id"],
        "push_tasks": ["kwargs_list", "task_name", "priority", "consumable_from", "trace_id"],
        "get_next_tasks": ["number_of_tasks", "task_name"],
        "purge_tasks": ["task_name"],
        "number_of_enqueued_tasks": ["task_name", "include_delayed"],
        "lock": ["name"],
        "retry": ["task", "priority", "consumable_from"],
        "requeue": ["task", "priority", "consumable_from"],
        "pre_work": ["task"], "post_work": ["task", "success", "exception"], "work": ["task"],
        "on_success": ["task", "returned_value"], "on_failure": ["task", "exception"],
        "on_timeout": ["task"], "on_retry": ["task"], "on_requeue": ["task"],
        "on_max_retries": ["task"], "on_starvation": ["time_with_no_tasks"], "on_stop": ["task"],
    }  # fmt: skip
    for name, parameters in expected.items():
        signature = inspect.signature(getattr(worker.Worker, name))
        names = list(signature.parameters)[1:]
        assert names[: len(parameters)] == parameters, name
        added = names[len(parameters) :]
        assert all(signature.parameters[a].default is not inspect.Parameter.empty for a in added)


def test_lock_methods() -> None:
    """Locks keep 0.27's methods and acquire's parameters and defaults."""
    from sergeant.connector import Lock

    acquire = inspect.signature(Lock.acquire).parameters
    assert {name: p.default for name, p in acquire.items() if name != "self"} == {
        "timeout": None, "check_interval": 1.0, "ttl": 60,
    }  # fmt: skip
    for name in ["release", "is_locked", "set_ttl", "get_ttl"]:
        assert callable(getattr(Lock, name))


def test_logstash_handlers_signatures() -> None:
    """The 0.27 logstash handlers take the same arguments and defaults."""
    from sergeant.logging.logstash import BufferedLogstashHandler, LogstashHandler

    plain = inspect.signature(LogstashHandler).parameters
    assert {n: p.default for n, p in plain.items()}["timeout"] == 2.0
    buffered = {
        n: p.default for n, p in inspect.signature(BufferedLogstashHandler).parameters.items()
    }
    assert (buffered["timeout"], buffered["chunk_size"], buffered["max_store_time"]) == (
        2.0,
        100,
        60.0,
    )


def test_the_flat_api_names_the_classes_a_user_needs() -> None:
    """``from sergeant import Worker, WorkerConfig, Task, TaskFailed`` works, and each
    name is the very object under its 0.27 path."""
    from sergeant import errors, objects

    for name in sergeant.__all__:
        assert hasattr(sergeant, name), name
    assert sergeant.Worker is worker.Worker
    assert sergeant.WorkerConfig is config.WorkerConfig
    assert sergeant.Task is objects.Task
    assert sergeant.TaskFailed is errors.TaskFailed
    assert sergeant.WorkerRetry is worker.WorkerRetry


def test_the_027_module_paths_are_the_moved_modules() -> None:
    """``sergeant.supervisor``, ``sergeant.slave`` and the connector modules of 0.27
    still import and name the classes that moved into the layer packages."""
    import sergeant.connector.mongo
    import sergeant.connector.redis
    import sergeant.killer.process
    import sergeant.slave
    import sergeant.supervisor
    from sergeant.process import supervisor, worker_process

    assert sergeant.supervisor.Supervisor is supervisor.Supervisor
    assert sergeant.slave.Slave is worker_process.Slave
    assert sergeant.slave.main is worker_process.main
    assert sergeant.connector.redis.Connector.__name__ == "Connector"
    assert sergeant.connector.mongo.Connector.__name__ == "Connector"
    # Each connector type is reachable as an attribute, as in 0.27.
    assert sergeant.connector.local is importlib.import_module("sergeant.connector.sqlite")


@pytest.mark.parametrize("module", ["sergeant.supervisor", "sergeant.slave"])
def test_the_027_entry_points_run_with_python_m(module: str) -> None:
    """``python -m sergeant.supervisor --help`` and ``python -m sergeant.slave --help``."""
    done = subprocess.run(
        [sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert f"python -m {module}" in done.stdout
