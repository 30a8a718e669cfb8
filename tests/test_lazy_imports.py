"""Backend libraries are imported only when a configured stack uses them.

Checked in a fresh interpreter: importing qts_data, listing plugins and opening
the memory stack import none of redis, asyncpg, gspread, nor a plugin's backend
module; opening a stack that uses the plugin does import it (so the probe can fail).
"""

from __future__ import annotations

import json
import subprocess
import sys

from qts_data.testing import PluginSite

LAZY_PLUGIN = """
from qts_data.plugins import hookimpl

def make(settings, ctx):
    import qts_test_lazy_backend  # the plugin's heavy backend library
    return qts_test_lazy_backend.make()

@hookimpl
def qts_data_cache_clients(register):
    register("lazy", make)
"""

BACKEND = """
from qts_data_memory.cache import MemoryCacheClient

def make():
    return MemoryCacheClient()
"""

PROBE = """
import asyncio, json, sys
import qts_data
from qts_data.cli.main import cli
try:
    cli(["plugins", "--json"], standalone_mode=False)
except SystemExit:
    pass
config = {config}

async def main():
    async with qts_data.open_stack(config) as stack:
        await stack.adapter.fetch_positions()

asyncio.run(main())
heavy = ["redis", "asyncpg", "gspread", "hiredis", "qts_test_lazy_backend"]
print(json.dumps(sorted(m for m in heavy if m in sys.modules)))
"""

USES_LAZY = {
    "stack": {"adapter": "store", "cache": "c"},
    "adapters": {"store": {"type": "memory"}},
    "caches": {"c": {"type": "lazy"}},
}


def probe(site: PluginSite, config: object) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(config=repr(config))],
        capture_output=True,
        text=True,
        env=site.env(),
        timeout=60,
        check=True,
    )
    return list(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_listing_plugins_and_the_memory_stack_import_no_backend_library(
    plugin_site: PluginSite,
) -> None:
    plugin_site.add("lazy", LAZY_PLUGIN, extra_modules={"qts_test_lazy_backend": BACKEND})
    assert probe(plugin_site, None) == []


def test_a_stack_that_uses_a_plugin_imports_its_backend(plugin_site: PluginSite) -> None:
    plugin_site.add("lazy", LAZY_PLUGIN, extra_modules={"qts_test_lazy_backend": BACKEND})
    assert probe(plugin_site, USES_LAZY) == ["qts_test_lazy_backend"]
