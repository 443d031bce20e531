"""The supervisor under its 0.27 path; it lives in :mod:`sergeant.process.supervisor`.

``python -m sergeant.supervisor`` runs it, as in 0.27.
"""

from __future__ import annotations

import sys

from sergeant.process.supervisor import Supervisor, SupervisorState, tree_rss
from sergeant.process.supervisor_cli import main

__all__ = ["Supervisor", "SupervisorState", "main", "tree_rss"]

if __name__ == "__main__":
    sys.exit(main())
