"""Loading a user's ``Worker`` subclass by module and class name.

The worker process (``sergeant.process.worker_process``), the command line and the
metrics server all load a worker class; they share this module, in ``sergeant.worker``,
so none of them imports another's entry point to do it.
"""

from __future__ import annotations

import importlib
import os

from sergeant.errors import WorkerImportError
from sergeant.worker import Worker

__all__ = ["load_worker_class"]


def load_worker_class(module_name: str, class_name: str) -> type[Worker]:
    """Import ``module_name`` and return its ``Worker`` subclass ``class_name``.

    Raises:
        WorkerImportError: one sentence naming what cannot be imported and why.
    """
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise WorkerImportError(
            f"Cannot import worker module {module_name!r} ({type(exc).__name__}: {exc}); "
            f"check the module name and that it is importable from {os.getcwd()!r}."
        ) from exc
    worker_class = getattr(module, class_name, None)
    if worker_class is None:
        raise WorkerImportError(
            f"Worker module {module_name!r} has no class {class_name!r}; check the class name."
        )
    if not (isinstance(worker_class, type) and issubclass(worker_class, Worker)):
        raise WorkerImportError(
            f"{module_name}.{class_name} is {worker_class!r}, not a subclass of "
            "sergeant.worker.Worker."
        )
    return worker_class
