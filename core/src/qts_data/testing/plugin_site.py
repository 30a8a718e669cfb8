"""Installed-looking plugin distributions in a temporary folder, for tests of plugin loading.

A ``PluginSite`` writes ``<dist>.dist-info`` folders (METADATA, entry_points.txt)
and the plugin modules into a folder that can be put on ``sys.path`` or on
``PYTHONPATH`` of a subprocess, so ``importlib.metadata`` discovers them exactly
as it discovers a pip-installed plugin.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["PluginSite", "plugin_site"]


class PluginSite:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self._dists: list[Path] = []

    def add(
        self,
        name: str,
        source: str,
        *,
        distribution: str | None = None,
        version: str = "0.1.0",
        requires: tuple[str, ...] = ("qts-data>=0.1,<0.2",),
        module: str | None = None,
        extra_modules: dict[str, str] | None = None,
    ) -> Path:
        """A plugin distribution whose entry point ``name`` targets ``module`` with ``source`` in it."""
        distribution = distribution or f"qts-data-test-{name.replace('_', '-')}"
        module = module or f"qts_test_plugin_{name}"
        (self.path / f"{module}.py").write_text(textwrap.dedent(source), "utf-8")
        for extra, text in (extra_modules or {}).items():
            target = self.path / Path(*extra.split("."))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.with_suffix(".py").write_text(textwrap.dedent(text), "utf-8")
        info = self.path / f"{distribution.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        lines = ["Metadata-Version: 2.1", f"Name: {distribution}", f"Version: {version}"]
        lines += [f"Requires-Dist: {r}" for r in requires]
        (info / "METADATA").write_text("\n".join(lines) + "\n", "utf-8")
        (info / "entry_points.txt").write_text(f"[qts_data]\n{name} = {module}\n", "utf-8")
        self._dists.append(info)
        return info

    def entry_points(self) -> list[metadata.EntryPoint]:
        """The entry points of the distributions added so far (with ``.dist`` set)."""
        found: list[metadata.EntryPoint] = []
        for info in self._dists:
            dist = metadata.PathDistribution(info)
            found.extend(ep for ep in dist.entry_points if ep.group == "qts_data")
        return found

    def env(self, **extra: str) -> dict[str, str]:
        """An environment for a subprocess that sees these plugins beside the installed ones."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.path), env.get("PYTHONPATH")]))
        env.update(extra)
        return env


@pytest.fixture
def plugin_site(tmp_path: Path) -> Iterator[PluginSite]:
    """A :class:`PluginSite` in a temporary folder; its modules are forgotten afterwards."""
    site = PluginSite(tmp_path / "site")
    before = set(sys.modules)
    yield site
    for name in set(sys.modules) - before:
        if name.startswith("qts_test_plugin_"):
            del sys.modules[name]
