"""The peers' virtual environments, and what the report says about the machine.

The peers live in ``bench/.peers-venv``; the original ``sergeant==0.27.0`` lives in
``bench/.sergeant027-venv`` (it has the same import name as this project). Both are
created on first use and reinstalled when their requirement list changes.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil

from bench.libraries import PEERS_VENV, SERGEANT027_VENV

#: Pinned where the peers disagree on redis-py (Celery's kombu caps it at 5.2.x);
#: matplotlib renders the chart, pyinstrument is there for ad-hoc profiling.
PEERS_REQUIREMENTS = (
    "celery[redis]==5.5.3",
    "rq",
    "dramatiq[redis]",
    "huey",
    "arq==0.26.3",
    "redis==5.2.1",
    "hiredis",
    "psutil",
    "matplotlib",
    "pyinstrument",
)
#: 0.27 predates redis-py 5.
SERGEANT027_REQUIREMENTS = ("sergeant==0.27.0", "redis>=4,<5", "psutil")
_MARKER = ".bench-requirements"


def ensure_venv(venv: Path, requirements: tuple[str, ...]) -> Path:
    """Create ``venv`` with ``requirements`` unless it already has exactly them."""
    python = venv / "bin" / "python"
    marker = venv / _MARKER
    wanted = "\n".join(requirements)
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    print(f"installing {venv.name}: {' '.join(requirements)}", file=sys.stderr, flush=True)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *requirements],
        check=True,
    )
    marker.write_text(wanted)
    return python


def ensure_peer_venvs() -> None:
    """Install the peers and the original Sergeant into their own environments."""
    ensure_venv(PEERS_VENV, PEERS_REQUIREMENTS)
    ensure_venv(SERGEANT027_VENV, SERGEANT027_REQUIREMENTS)


def versions(python: Path, distributions: list[str]) -> dict[str, str]:
    """Installed versions of ``distributions`` in the environment of ``python``."""
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for name in sys.argv[1:]:\n"
        "    try: out[name] = m.version(name)\n"
        "    except m.PackageNotFoundError: out[name] = 'missing'\n"
        "print(json.dumps(out))"
    )
    # Run away from this checkout: its sergeant.egg-info would shadow 0.27's metadata.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    completed = subprocess.run(
        [str(python), "-c", code, *distributions],
        capture_output=True,
        text=True,
        check=True,
        cwd=tempfile.gettempdir(),
        env=env,
    )
    found: dict[str, str] = json.loads(completed.stdout)
    return found


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or the platform's guess)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def redis_server_version() -> str:
    """``redis-server --version``'s version field."""
    binary = shutil.which("redis-server")
    if binary is None:
        return "missing"
    output = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    for field in output.split():
        if field.startswith("v="):
            return field[2:]
    return output.strip()


def machine() -> dict[str, object]:
    """CPU, cores, RAM, OS, Python and redis-server versions."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "redis_server": redis_server_version(),
    }
