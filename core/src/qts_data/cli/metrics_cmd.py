"""``qts-data metrics``: serve a stack's metrics to Prometheus."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from qts_data.cli.check_cmd import config_argument
from qts_data.cli.errors import fail
from qts_data.stack import open_stack


@click.command("metrics")
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@click.option("--port", default=9464, show_default=True, type=click.IntRange(0, 65535))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--health-interval", default=15.0, show_default=True, type=click.FloatRange(min=1))
@click.option(
    "--once", is_flag=True, help="Print the exposition once and exit (for scripts and tests)."
)
def metrics_command(
    config: str | None, port: int, host: str, health_interval: float, once: bool
) -> None:
    """Open the stack of CONFIG and serve its metrics on http://HOST:PORT/metrics."""
    try:
        from prometheus_client import generate_latest, start_http_server

        from qts_data.metrics import HealthCollector, stack_registry
    except ImportError:
        fail("metrics need prometheus-client: pip install 'qts-data[metrics]'")
    source = config_argument(config)
    stack = open_stack(Path(source) if source else None, inspect_only=True)

    async def run() -> None:
        async with stack:
            health = HealthCollector()
            await health.refresh(stack)
            registry = stack_registry(stack, health)
            if once:
                click.echo(generate_latest(registry).decode(), nl=False)
                return
            try:
                server, _thread = start_http_server(port, addr=host, registry=registry)
            except OSError as exc:
                fail(f"cannot listen on {host}:{port}: {exc.strerror}")
            bound = server.server_address[1]
            click.echo(
                f"serving metrics of {stack.config.source} on http://{host}:{bound}/metrics (Ctrl-C stops)"
            )
            try:
                while True:
                    await asyncio.sleep(health_interval)
                    await health.refresh(stack)
            finally:
                server.shutdown()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
