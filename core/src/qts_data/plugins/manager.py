"""Discovery and loading of plugins, one entry point at a time.

Unlike pluggy's ``load_setuptools_entrypoints``, a plugin that fails to import,
raises in a hook, targets an incompatible core, registers a name that is taken,
or misspells a hook is *recorded* with its error while the others still load.
``QTS_DATA_STRICT_PLUGINS=1`` turns any such failure into an error.

Environment:

* ``QTS_DATA_PLUGINS``: comma-separated allow-list of plugin names. Unset means
  every installed plugin; set but empty means the core's built-ins only.
* ``QTS_DATA_DISABLE_PLUGINS``: comma-separated block-list of plugin names.
* ``QTS_DATA_STRICT_PLUGINS``: ``1``/``true`` to fail on any plugin that does not load.
"""

from __future__ import annotations

import difflib
import importlib.metadata as metadata
import inspect
import os
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pluggy
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from qts_data._version import __version__
from qts_data.errors import PluginError
from qts_data.plugins import hookspecs
from qts_data.plugins.registry import ComponentKind, ComponentSpec, Factory, NoSettings, Settings

ENTRY_POINT_GROUP = "qts_data"
BUILTIN = "core"
ENV_ALLOW = "QTS_DATA_PLUGINS"
ENV_BLOCK = "QTS_DATA_DISABLE_PLUGINS"
ENV_STRICT = "QTS_DATA_STRICT_PLUGINS"

#: First-party plugin name -> the distribution that provides it (for install hints).
KNOWN_PACKAGES = {
    "memory": "qts-data-memory",
    "timescale": "qts-data-timescale",
    "redis_cache": "qts-data-redis-cache",
    "sheets": "qts-data-sheets",
    "sqlite": "qts-data-sqlite",
}

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass
class PluginRecord:
    """One discovered plugin and what became of it."""

    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    status: str = "loaded"  # loaded | failed | blocked | not-allowed
    error: str | None = None
    components: list[tuple[ComponentKind, str]] = field(default_factory=list)
    builtin: bool = False

    @property
    def loaded(self) -> bool:
        return self.status == "loaded"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "module": self.module,
            "status": self.status,
            "error": self.error,
            "builtin": self.builtin,
            "components": [{"kind": kind.value, "name": name} for kind, name in self.components],
        }


class _PluginFailed(Exception):
    pass


def _env_list(environ: Mapping[str, str], key: str) -> set[str] | None:
    raw = environ.get(key)
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


class PluginHost:
    """Loads plugins once and answers which component factories exist.

    A typed facade over pluggy: the rest of the code never calls ``pm.hook``.
    """

    def __init__(
        self,
        *,
        environ: Mapping[str, str] | None = None,
        entry_points: Iterable[metadata.EntryPoint] | None = None,
        builtins: Iterable[tuple[str, ModuleType | object]] | None = None,
    ) -> None:
        self._environ = os.environ if environ is None else environ
        self._entry_points = entry_points
        self._builtins = builtins
        self._pm = pluggy.PluginManager(hookspecs.PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self.records: list[PluginRecord] = []
        self._specs: dict[tuple[ComponentKind, str], ComponentSpec] = {}
        self._loaded = False
        self._lock = threading.Lock()
        self.strict = _truthy(self._environ.get(ENV_STRICT))

    # -- loading ---------------------------------------------------------------
    def load(self) -> PluginHost:
        """Discover and load every plugin (once). Raises PluginError in strict mode."""
        with self._lock:
            if not self._loaded:
                self._load()
                self._loaded = True
        if self.strict:
            failed = [r for r in self.records if r.status == "failed"]
            if failed:
                details = "; ".join(f"{r.name}: {r.error}" for r in failed)
                raise PluginError(
                    f"{ENV_STRICT} is set and {len(failed)} plugin(s) failed to load: {details}"
                )
        return self

    def _load(self) -> None:
        allow = _env_list(self._environ, ENV_ALLOW)
        block = _env_list(self._environ, ENV_BLOCK) or set()
        if BUILTIN in block:
            raise PluginError(f"{ENV_BLOCK}: the built-in plugin {BUILTIN!r} cannot be disabled")

        builtins = self._builtins
        if builtins is None:
            from qts_data import builtin

            builtins = [(BUILTIN, builtin)]
        for name, module in builtins:
            record = PluginRecord(
                name=name, module=getattr(module, "__name__", repr(module)), builtin=True
            )
            record.distribution, record.version = "qts-data", __version__
            self.records.append(record)
            self._register(record, module)

        entry_points = self._entry_points
        if entry_points is None:
            entry_points = metadata.entry_points(group=ENTRY_POINT_GROUP)
        for ep in sorted(entry_points, key=lambda e: e.name):
            dist = getattr(ep, "dist", None)
            record = PluginRecord(
                name=ep.name,
                module=ep.value,
                distribution=dist.metadata["Name"] if dist is not None else None,
                version=dist.version if dist is not None else None,
            )
            self.records.append(record)
            if ep.name in block:
                record.status, record.error = "blocked", f"blocked by {ENV_BLOCK}"
                continue
            if allow is not None and ep.name not in allow:
                record.status, record.error = "not-allowed", f"not in {ENV_ALLOW}"
                continue
            try:
                self._check_name(record)
                self._check_compatible(dist)
                try:
                    module = ep.load()
                except Exception as exc:
                    raise _PluginFailed(
                        f"import of {ep.value!r} failed: {type(exc).__name__}: {exc}"
                    ) from exc
            except _PluginFailed as exc:
                record.status, record.error = "failed", str(exc)
                continue
            self._register(record, module)

    def _check_name(self, record: PluginRecord) -> None:
        if not _NAME.match(record.name):
            raise _PluginFailed(
                f"invalid plugin name {record.name!r}: use lowercase letters, digits and underscores"
            )
        taken = [r for r in self.records if r.name == record.name and r is not record]
        if taken:
            other = taken[0]
            raise _PluginFailed(
                f"duplicate plugin name {record.name!r}: already provided by "
                f"{other.distribution or other.module} {other.version or ''}".rstrip()
            )

    @staticmethod
    def _check_compatible(dist: metadata.Distribution | None) -> None:
        if dist is None:
            return
        for line in dist.requires or ():
            try:
                req = Requirement(line)
            except InvalidRequirement:
                continue
            if canonicalize_name(req.name) != "qts-data" or req.marker is not None:
                continue
            if req.specifier and not req.specifier.contains(Version(__version__), prereleases=True):
                raise _PluginFailed(
                    f"incompatible core: requires qts-data{req.specifier}, installed qts-data {__version__}"
                )

    def _register(self, record: PluginRecord, module: object) -> None:
        try:
            self._check_unmarked_hooks(record, module)
            try:
                self._pm.register(module, name=record.name)
            except ValueError as exc:  # the same module object registered twice
                raise _PluginFailed(str(exc)) from exc
            except pluggy.PluginValidationError as exc:
                raise _PluginFailed(f"invalid hook implementation: {exc}") from exc
            try:
                self._check_known_hooks(record, module)
            except _PluginFailed:
                self._pm.unregister(name=record.name)
                raise
            self._collect(record, module)
        except _PluginFailed as exc:
            record.status, record.error = "failed", str(exc)
            if self._pm.get_plugin(record.name) is not None:
                self._pm.unregister(name=record.name)

    def _check_unmarked_hooks(self, record: PluginRecord, module: object) -> None:
        for attr in dir(module):
            if not attr.startswith("qts_data_"):
                continue
            value = getattr(module, attr, None)
            if callable(value) and self._pm.parse_hookimpl_opts(module, attr) is None:
                raise _PluginFailed(f"{attr}() looks like a hook but is not marked with @hookimpl")

    def _check_known_hooks(self, record: PluginRecord, module: object) -> None:
        for attr in dir(module):
            if self._pm.parse_hookimpl_opts(module, attr) is None:
                continue
            if attr not in hookspecs.HOOK_KINDS:
                close = difflib.get_close_matches(attr, list(hookspecs.HOOK_KINDS), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                known = ", ".join(sorted(hookspecs.HOOK_KINDS))
                raise _PluginFailed(f"unknown hook {attr!r}{hint}; the hooks are: {known}")

    def _collect(self, record: PluginRecord, module: object) -> None:
        """Call this plugin's hooks, alone, so an error is attributed to it."""
        added: list[tuple[ComponentKind, str]] = []

        def make_register(kind: ComponentKind) -> Any:
            def register(
                name: str,
                factory: Factory,
                *,
                settings: type[Settings] = NoSettings,
                description: str = "",
            ) -> None:
                if not isinstance(name, str) or not name:
                    raise _PluginFailed(f"register() needs a component name, got {name!r}")
                if (
                    not record.builtin
                    and name != record.name
                    and not name.startswith(record.name + ".")
                ):
                    raise _PluginFailed(
                        f"{kind.label} name {name!r} must be the plugin's name {record.name!r} "
                        f"or start with '{record.name}.'"
                    )
                if not callable(factory):
                    raise _PluginFailed(
                        f"{kind.label} {name!r}: factory {factory!r} is not callable"
                    )
                if not (inspect.isclass(settings) and issubclass(settings, Settings)):
                    raise _PluginFailed(
                        f"{kind.label} {name!r}: settings must subclass qts_data.plugins.Settings"
                    )
                key = (kind, name)
                if key in self._specs or key in added:
                    owner = self._specs[key].plugin if key in self._specs else record.name
                    raise _PluginFailed(
                        f"duplicate {kind.label} name {name!r}: already registered by {owner!r}"
                    )
                added.append(key)
                pending[key] = ComponentSpec(
                    kind, name, record.name, factory, settings, description
                )

            return register

        pending: dict[tuple[ComponentKind, str], ComponentSpec] = {}
        for hook_name, kind_value in hookspecs.HOOK_KINDS.items():
            kind = ComponentKind(kind_value)
            for impl in getattr(self._pm.hook, hook_name).get_hookimpls():
                if impl.plugin is not module:
                    continue
                try:
                    impl.function(register=make_register(kind))
                except _PluginFailed:
                    raise
                except Exception as exc:
                    raise _PluginFailed(
                        f"hook {hook_name} raised {type(exc).__name__}: {exc}"
                    ) from exc
        self._specs.update(pending)
        record.components = added

    # -- queries -----------------------------------------------------------------
    def specs(self, kind: ComponentKind | None = None) -> list[ComponentSpec]:
        self.load()
        return [s for s in self._specs.values() if kind is None or s.kind is kind]

    def record(self, name: str) -> PluginRecord | None:
        self.load()
        return next((r for r in self.records if r.name == name), None)

    def spec(self, kind: ComponentKind, name: str) -> ComponentSpec:
        """The factory for ``name``; a PluginError that says what is installed and what to install."""
        self.load()
        found = self._specs.get((kind, name))
        if found is not None:
            return found
        available = sorted(s.name for s in self._specs.values() if s.kind is kind)
        message = f"no {kind.label} named {name!r}"
        plugin_name = name.split(".", 1)[0]
        record = next((r for r in self.records if r.name == plugin_name), None)
        if record is not None and not record.loaded:
            message += (
                f": plugin {plugin_name!r} ({record.distribution or record.module}) is installed "
                f"but {record.status}: {record.error}"
            )
        elif record is not None:
            message += f": plugin {plugin_name!r} provides no {kind.label} of that name"
        else:
            package = KNOWN_PACKAGES.get(plugin_name)
            if package:
                message += (
                    f": it is provided by the plugin package {package} (pip install {package}; "
                    f"from a clone of qts-data: pip install ./plugins/{plugin_name})"
                )
            else:
                message += ": no installed plugin provides it; install the package that does"
            close = difflib.get_close_matches(name, available, n=1)
            if close:
                message += f" (did you mean {close[0]!r}?)"
        message += f". Available {kind.label}s: {', '.join(available) or '(none)'}"
        raise PluginError(message)


_host: PluginHost | None = None
_host_lock = threading.Lock()


def get_plugin_host() -> PluginHost:
    """The process-wide plugin host, loaded on first use."""
    global _host
    with _host_lock:
        if _host is None:
            _host = PluginHost()
    return _host.load()


def reset_plugin_host() -> None:
    """Forget the loaded plugins (tests, or after changing the environment variables)."""
    global _host
    with _host_lock:
        _host = None
