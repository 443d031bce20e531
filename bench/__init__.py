"""Sergeant's side-by-side benchmark harness (``python -m bench``; see docs/benchmarks.md)."""
