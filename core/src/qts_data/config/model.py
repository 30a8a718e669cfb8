"""Validation of a stack configuration against the installed plugins.

Every error names the source (file), the key path and the problem, e.g.
``qts.toml: adapters.db.pool_max: Input should be a valid integer (got 'x')``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from qts_data.cache.manager import CacheSettings
from qts_data.config.fields import env_text_for, hides_input
from qts_data.config.loader import RawConfig
from qts_data.config.secrets import mask, register_secrets_in
from qts_data.errors import ConfigError, PluginError
from qts_data.events.settings import EventSettings
from qts_data.plugins.manager import PluginHost
from qts_data.plugins.registry import ComponentKind, ComponentSpec, Settings

SECTIONS = {kind.section: kind for kind in ComponentKind}
TOP_LEVEL = ("stack", "cache", "events", *SECTIONS)
RESERVED = ("type", "required")


class StackSection(BaseModel):
    """The ``[stack]`` table: which components the stack exposes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    adapter: str = Field(default="main", description="the adapter behind Stack.adapter")
    cache: str | None = Field(default=None, description="the cache client behind Stack.cache")
    sinks: list[str] = Field(default_factory=list)
    listeners: list[str] = Field(default_factory=list)


@dataclass
class ComponentConfig:
    """One validated component of a stack."""

    kind: ComponentKind
    name: str
    spec: ComponentSpec
    settings: Settings
    required: bool
    depends_on: list[tuple[ComponentKind, str]] = field(default_factory=list)

    @property
    def path(self) -> str:
        return f"{self.kind.section}.{self.name}"


@dataclass
class StackConfig:
    """A validated configuration: components in the order they must be opened."""

    source: str
    stack: StackSection
    cache: CacheSettings
    components: dict[tuple[ComponentKind, str], ComponentConfig]
    order: list[tuple[ComponentKind, str]]
    raw: RawConfig
    events: EventSettings = field(default_factory=EventSettings)

    def error(self, path: str, message: str) -> ConfigError:
        return ConfigError(mask(f"{self.source}: {path}: {message}"))


def _describe(exc: ValidationError, prefix: str, model: type[BaseModel] | None = None) -> str:
    """One line naming each error's key path; the input is quoted unless it is a secret's."""
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        field, sep, rest = msg.partition(": ")
        if not loc and sep and model is not None and field in model.model_fields:
            loc, msg = field, rest  # a model-level check about one field names it first
        where = f"{prefix}.{loc}" if loc else prefix
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing" or "input" not in err:
            pass
        elif model is not None and hides_input(model, err["loc"]):
            if err["type"] == "string_type" and isinstance(err["input"], (int, float)):
                msg += " (a number: write it in quotes)"
        elif not isinstance(err["input"], (dict, list)):
            shown = repr(err["input"])
            msg += f" (got {shown[:60]})"
        parts.append(f"{where}: {msg}")
    return "; ".join(parts)


def _suggest(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def validate_config(raw: RawConfig, host: PluginHost) -> StackConfig:
    src = raw.source

    def fail(path: str, message: str) -> ConfigError:
        return ConfigError(mask(f"{src}: {path}: {message}" if path else f"{src}: {message}"))

    data = raw.data
    for key in data:
        if key not in TOP_LEVEL:
            raise fail(
                key,
                f"unknown section{_suggest(key, list(TOP_LEVEL))}; sections are: {', '.join(TOP_LEVEL)}",
            )

    try:
        stack = StackSection.model_validate(
            env_text_for(StackSection, "stack", data.get("stack", {}), raw)
        )
    except ValidationError as exc:
        raise fail("", _describe(exc, "stack", StackSection)) from None
    try:
        cache_settings = CacheSettings.model_validate(
            env_text_for(CacheSettings, "cache", data.get("cache", {}), raw)
        )
    except ValidationError as exc:
        raise fail("", _describe(exc, "cache", CacheSettings)) from None
    try:
        event_settings = EventSettings.model_validate(
            env_text_for(EventSettings, "events", data.get("events", {}), raw)
        )
    except ValidationError as exc:
        raise fail("", _describe(exc, "events", EventSettings)) from None

    components: dict[tuple[ComponentKind, str], ComponentConfig] = {}
    for section, kind in SECTIONS.items():
        table = data.get(section, {})
        if not isinstance(table, dict):
            raise fail(section, "must be a table of named components")
        for name, body in table.items():
            path = f"{section}.{name}"
            if not isinstance(body, dict):
                raise fail(path, f'must be a table, e.g. [{path}] with type = "..."')
            type_name = body.get("type")
            if not isinstance(type_name, str) or not type_name:
                raise fail(
                    f"{path}.type", f"missing: which {kind.label} this is (see `qts-data plugins`)"
                )
            try:
                spec = host.spec(kind, type_name)
            except PluginError as exc:
                raise fail(f"{path}.type", str(exc)) from None
            required = body.get("required", kind is ComponentKind.ADAPTER)
            if not isinstance(required, bool):
                raise fail(f"{path}.required", f"must be true or false (got {required!r})")
            values = {k: v for k, v in body.items() if k not in RESERVED}
            values = env_text_for(spec.settings, path, values, raw)
            try:
                settings = spec.settings.model_validate(values)
            except ValidationError as exc:
                raise fail("", _describe(exc, path, spec.settings)) from None
            register_secrets_in(settings)
            config = ComponentConfig(kind, name, spec, settings, required)
            for field_name, ref_kind in spec.references().items():
                target = getattr(settings, field_name)
                if target is None:
                    continue
                if target not in data.get(ref_kind.section, {}):
                    defined = list(data.get(ref_kind.section, {}))
                    raise fail(
                        f"{path}.{field_name}",
                        f"no {ref_kind.label} named {target!r}{_suggest(target, defined)}; "
                        f"defined: {', '.join(defined) or '(none)'}",
                    )
                config.depends_on.append((ref_kind, target))
            components[(kind, name)] = config

    def check_ref(path: str, kind: ComponentKind, name: str) -> None:
        if (kind, name) not in components:
            defined = [n for (k, n) in components if k is kind]
            raise fail(
                path,
                f"no {kind.label} named {name!r}{_suggest(name, defined)}; "
                f"defined: {', '.join(defined) or '(none)'}",
            )

    check_ref("stack.adapter", ComponentKind.ADAPTER, stack.adapter)
    if stack.cache is not None:
        check_ref("stack.cache", ComponentKind.CACHE, stack.cache)
    for i, name in enumerate(stack.sinks):
        check_ref(f"stack.sinks[{i}]", ComponentKind.SINK, name)
    for i, name in enumerate(stack.listeners):
        check_ref(f"stack.listeners[{i}]", ComponentKind.LISTENER, name)

    order = _open_order(components, fail)
    return StackConfig(src, stack, cache_settings, components, order, raw, event_settings)


def _open_order(
    components: dict[tuple[ComponentKind, str], ComponentConfig], fail: Any
) -> list[tuple[ComponentKind, str]]:
    """Dependencies first; a cycle is an error naming it."""
    order: list[tuple[ComponentKind, str]] = []
    state: dict[tuple[ComponentKind, str], int] = {}  # 1 visiting, 2 done

    def visit(key: tuple[ComponentKind, str], trail: list[tuple[ComponentKind, str]]) -> None:
        if state.get(key) == 2:
            return
        if state.get(key) == 1:
            cycle = [*trail[trail.index(key) :], key]
            names = " -> ".join(f"{k.section}.{n}" for k, n in cycle)
            raise fail(
                f"{key[0].section}.{key[1]}", f"components refer to each other in a cycle: {names}"
            )
        state[key] = 1
        for dep in components[key].depends_on:
            visit(dep, [*trail, key])
        state[key] = 2
        order.append(key)

    for key in components:
        visit(key, [])
    return order
