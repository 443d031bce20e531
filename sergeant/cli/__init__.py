"""The ``sergeant`` command: ``sergeant --help`` lists the sub-commands."""

from __future__ import annotations

import click

from sergeant.cli import cancel, dead, demo, queues, run, schedules

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sergeant", prog_name="sergeant")
def main() -> None:
    """Sergeant: a fast, safe and simple distributed task queue."""


main.add_command(demo.demo)
main.add_command(run.run)
main.add_command(queues.stats)
main.add_command(queues.purge)
main.add_command(queues.push)
main.add_command(dead.dead)
main.add_command(cancel.cancel)
main.add_command(schedules.schedule)
main.add_command(schedules.schedules)
