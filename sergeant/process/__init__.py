"""Processes: the worker process, the supervisor that runs it, and its policy."""
