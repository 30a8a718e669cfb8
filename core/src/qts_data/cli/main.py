"""The ``qts-data`` command."""

from __future__ import annotations

import sys

import click

from qts_data._version import __version__
from qts_data.cli.check_cmd import check_command
from qts_data.cli.db_cmd import db_group
from qts_data.cli.demo_cmd import demo_command
from qts_data.cli.errors import QtsGroup, end_on_broken_pipe
from qts_data.cli.ingest_cmd import ingest_group
from qts_data.cli.init_cmd import init_command
from qts_data.cli.logs import configure_logging
from qts_data.cli.metrics_cmd import metrics_command
from qts_data.cli.migrate_cmd import migrate_command
from qts_data.cli.migration_cmd import backfill_command, verify_command
from qts_data.cli.plugins_cmd import plugins_command
from qts_data.cli.query_cmd import query_group


@click.group(cls=QtsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="qts-data")
def cli() -> None:
    """qts-data: the data and caching layer of a quantitative trading system."""


cli.add_command(plugins_command)
cli.add_command(check_command)
cli.add_command(demo_command)
cli.add_command(init_command)
cli.add_command(migrate_command)
cli.add_command(ingest_group)
cli.add_command(query_group)
cli.add_command(db_group)
cli.add_command(backfill_command)
cli.add_command(verify_command)
cli.add_command(metrics_command)


def main() -> None:
    configure_logging()
    try:
        cli(prog_name="qts-data")
    except SystemExit:
        try:  # what is still buffered meets a closed pipe here, not in the interpreter's exit
            sys.stdout.flush()
        except BrokenPipeError:
            end_on_broken_pipe()
        raise
