"""The worker process under its 0.27 path; it lives in :mod:`sergeant.process.worker_process`.

``python -m sergeant.slave`` runs one worker process, as the supervisor does.
"""

from __future__ import annotations

import sys

from sergeant.process.worker_process import (
    Slave,
    exit_code_for,
    load_worker_class,
    main,
    refuse_in_process_broker,
    stop_leftover_threads,
)

__all__ = [
    "Slave",
    "exit_code_for",
    "load_worker_class",
    "main",
    "refuse_in_process_broker",
    "stop_leftover_threads",
]

if __name__ == "__main__":
    sys.exit(main())
