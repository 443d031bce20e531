"""``python -m sergeant.cli`` runs the ``sergeant`` command."""

from __future__ import annotations

from sergeant.cli import main

main()
