"""Benchmark drivers: one script per library, run with that library's own Python.

Each driver is started as ``PYTHON driver.py '<json args>'`` and prints one JSON
object (its result) as the last line of its standard output. They import only
their own library, redis-py and ``_common`` (found next to them on ``sys.path``),
never the ``bench`` package, since most run in other virtual environments.
"""
