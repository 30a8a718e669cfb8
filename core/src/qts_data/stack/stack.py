"""A stack: the components of a configuration, built, opened and wired together.

``open_stack(config)`` validates the configuration at once (errors are raised
before anything is opened); ``async with`` opens the components in dependency
order and closes them in reverse. Hooks are not involved after construction:
``Stack.adapter`` and ``Stack.cache`` are plain objects on the hot path.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Collection, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from qts_data.cache.manager import CacheManager
from qts_data.config.loader import load_raw_config
from qts_data.config.model import StackConfig, validate_config
from qts_data.config.secrets import install_log_masking, mask
from qts_data.contracts import HealthState, HealthStatus
from qts_data.errors import BackendError, ConfigError
from qts_data.events.dispatcher import EventDispatcher
from qts_data.interfaces import (
    CacheClient,
    Component,
    DataSourceAdapter,
    EventSink,
    MarketDataSource,
    SafetyListener,
)
from qts_data.plugins.manager import PluginHost, get_plugin_host
from qts_data.plugins.registry import ComponentKind
from qts_data.safety.controller import SafetyController
from qts_data.stack.health import ComponentHealth, StackHealth

log = logging.getLogger("qts_data.stack")
Key = tuple[ComponentKind, str]

#: How long one component's health check may take before it is reported as unhealthy.
HEALTH_TIMEOUT_S = 5.0


class _Context:
    """The BuildContext given to factories."""

    def __init__(self, stack: Stack, current: Key) -> None:
        self._stack = stack
        self._current = current

    def component(self, kind: ComponentKind, name: str) -> Component:
        config = self._stack.config.components[self._current]
        if (kind, name) not in config.depends_on:
            raise ConfigError(
                f"its factory asked for {kind.section}.{name}, which its settings do not name"
            )
        return self._stack.components[(kind, name)]

    def adapter(self, name: str) -> DataSourceAdapter:
        found = self.component(ComponentKind.ADAPTER, name)
        assert isinstance(found, DataSourceAdapter)
        return found

    def cache(self, name: str) -> CacheClient:
        found = self.component(ComponentKind.CACHE, name)
        assert isinstance(found, CacheClient)
        return found

    def cache_manager(self, name: str) -> CacheManager:
        self.cache(name)
        return self._stack.cache_manager(name)

    @property
    def inspect_only(self) -> bool:
        return self._stack.inspect_only

    def resolve_path(self, path: str) -> str:
        candidate = Path(path).expanduser()
        if not candidate.is_absolute():
            candidate = self._stack.config.raw.base_dir / candidate
        return str(candidate)


class Stack:
    """The composed data layer. Use ``async with open_stack(...) as stack``."""

    def __init__(self, config: StackConfig, *, inspect_only: bool = False) -> None:
        self.config = config
        #: Opened to be looked at: see :attr:`BuildContext.inspect_only`.
        self.inspect_only = inspect_only
        self.components: dict[Key, Component] = {}
        self.open_errors: dict[Key, str] = {}
        self._managers: dict[str, CacheManager] = {}
        self._opened: list[Key] = []
        self._is_open = False
        self._build()
        stack = config.stack
        adapter = self.components[(ComponentKind.ADAPTER, stack.adapter)]
        assert isinstance(adapter, DataSourceAdapter)
        #: The composed data-source adapter.
        self.adapter: DataSourceAdapter = adapter
        #: The cache manager (over ``[stack] cache``; without one, every read goes to the adapter).
        self.cache: CacheManager = (
            self.cache_manager(stack.cache)
            if stack.cache is not None
            else CacheManager(None, config.cache)
        )
        sinks = [self.components[(ComponentKind.SINK, n)] for n in stack.sinks]
        listeners = [self.components[(ComponentKind.LISTENER, n)] for n in stack.listeners]
        #: The event bus, delivering to ``[stack] sinks``.
        self.events = EventDispatcher([s for s in sinks if isinstance(s, EventSink)], config.events)
        if self.events.enabled:
            for manager in [*self._managers.values(), self.cache]:
                manager.events = self.events.publish_nowait
        #: The safety state; changes reach ``[stack] listeners``, the cache managers and the event bus.
        self.safety = SafetyController(
            [s for s in listeners if isinstance(s, SafetyListener)],
            self.events,
            internal=[m.on_safety_change for m in self._managers.values()]
            or [self.cache.on_safety_change],
        )

    # -- construction ------------------------------------------------------------------
    def _build(self) -> None:
        for key in self.config.order:
            component_config = self.config.components[key]
            try:
                component = component_config.spec.factory(
                    component_config.settings, _Context(self, key)
                )
            except ConfigError as exc:  # a setting the factory refuses: say where it is
                raise ConfigError(
                    mask(f"{self.config.source}: {component_config.path}: {exc}")
                ) from None
            except ImportError as exc:
                raise ConfigError(
                    mask(
                        f"{self.config.source}: {component_config.path}: plugin "
                        f"{component_config.spec.plugin!r} cannot import its backend library: {exc}"
                    )
                ) from None
            expected = {
                ComponentKind.ADAPTER: DataSourceAdapter,
                ComponentKind.CACHE: CacheClient,
                ComponentKind.SINK: EventSink,
                ComponentKind.LISTENER: SafetyListener,
                ComponentKind.SOURCE: MarketDataSource,
            }[key[0]]
            if not isinstance(component, expected):
                raise ConfigError(
                    f"{self.config.source}: {component_config.path}: plugin {component_config.spec.plugin!r} "
                    f"built a {type(component).__name__}, not a {expected.__name__}"
                )
            component.name = key[1]
            self.components[key] = component

    def cache_manager(self, name: str) -> CacheManager:
        """The one cache manager over the cache client ``name``."""
        manager = self._managers.get(name)
        if manager is None:
            client = self.components[(ComponentKind.CACHE, name)]
            assert isinstance(client, CacheClient)
            manager = self._managers[name] = CacheManager(client, self.config.cache)
        return manager

    # -- lifecycle -----------------------------------------------------------------------
    async def open(self, only: Collection[Key] | None = None) -> Stack:
        """Open the components in dependency order, then the cache managers and the event bus.

        ``only``: open just these components (for a command such as ``migrate`` that needs
        one store, whose schema the rest of the stack may depend on)."""
        if self._is_open:
            return self
        install_log_masking()
        for key in self.config.order:
            if only is not None and key not in only:
                continue
            component = self.components[key]
            config = self.config.components[key]
            try:
                await component.open()
            except Exception as exc:
                message = mask(
                    f"{config.path} ({config.spec.name}) failed to open: {type(exc).__name__}: {exc}"
                )
                if config.required:
                    await self._close_opened()
                    raise BackendError(message) from None
                log.warning("%s; the stack runs without it", message)
                self.open_errors[key] = message
                continue
            self._opened.append(key)
        if only is None:
            for manager in self._managers.values():
                await manager.start()
            await self.events.start()
        self._is_open = True
        return self

    async def _close_opened(self) -> None:
        while self._opened:
            key = self._opened.pop()
            try:
                await self.components[key].close()
            except Exception as exc:
                log.warning("closing %s.%s failed: %s", key[0].section, key[1], mask(str(exc)))

    async def aclose(self) -> None:
        for manager in self._managers.values():
            await manager.stop()
        await self.events.stop()
        await self._close_opened()
        self._is_open = False

    async def __aenter__(self) -> Stack:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- health ---------------------------------------------------------------------------
    async def _component_health(self, key: Key) -> ComponentHealth:
        component = self.components[key]
        config = self.config.components[key]
        if key in self.open_errors:
            status = HealthStatus(
                component=key[1], state=HealthState.UNHEALTHY, message=self.open_errors[key]
            )
        else:
            started = time.perf_counter()
            try:
                status = await asyncio.wait_for(component.health_check(), HEALTH_TIMEOUT_S)
            except asyncio.TimeoutError:
                status = HealthStatus(
                    component=key[1],
                    state=HealthState.UNHEALTHY,
                    message=f"health check did not answer within {HEALTH_TIMEOUT_S:g} s",
                )
            except Exception as exc:
                status = HealthStatus(
                    component=key[1],
                    state=HealthState.UNHEALTHY,
                    message=mask(f"{type(exc).__name__}: {exc}"),
                )
            if status.latency_ms is None:
                status = status.model_copy(
                    update={"latency_ms": (time.perf_counter() - started) * 1000}
                )
        return ComponentHealth(key[0].value, key[1], config.spec.name, status)

    async def health(self) -> StackHealth:
        """Every component's health (concurrently, each bounded in time) and the overall state."""
        results = await asyncio.gather(*(self._component_health(key) for key in self.config.order))
        states = []
        for item in results:
            state = item.status.state
            required = self.config.components[(ComponentKind(item.kind), item.name)].required
            if not required and state is HealthState.UNHEALTHY:
                state = HealthState.DEGRADED  # an optional part down degrades the stack
            states.append(state)
        return StackHealth(
            state=HealthStatus.worst(states),
            components=list(results),
            safety=self.safety.state.value,
            cache=self.cache.summary(),
            events=self.events.summary(),
        )


def open_stack(
    config: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    plugins: PluginHost | None = None,
    inspect_only: bool = False,
) -> Stack:
    """A stack from a TOML file path, a mapping, or None (the embedded default: memory
    adapter behind a memory cache). Environment variables ``QTS_DATA__...`` override any key.

    The configuration is validated now; the components open on ``async with``.
    ``inspect_only``: for tools that look at a stack another process runs (no background
    work that changes stored data, such as a hybrid's relay).
    """
    env = os.environ if environ is None else environ
    source: str | Path | Mapping[str, Any] | None
    source = Path(config) if isinstance(config, os.PathLike) else config
    raw = load_raw_config(source, env)
    host = plugins if plugins is not None else get_plugin_host()
    return Stack(validate_config(raw, host), inspect_only=inspect_only)
