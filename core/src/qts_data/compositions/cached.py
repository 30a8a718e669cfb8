"""The ``cached`` composition: an adapter fronted by a cache (read-through, write-through).

A cached value's source time is when it was read from (or written to) the
adapter, so a maximum age bounds how old the snapshot is.

Reads of positions, risk configuration and strategy parameters are served from
the cache and loaded from the adapter on a miss; writes go to the adapter
first and then refresh or invalidate the cache, so the cache is never newer
than the adapter. Everything else passes straight through.
"""

from __future__ import annotations

from typing import Annotated

from qts_data.cache import CacheKind, CacheManager, codec_for
from qts_data.compositions.delegating import DelegatingAdapter
from qts_data.contracts import HealthStatus, Position, RiskConfig, StrategyParam
from qts_data.interfaces import DataSourceAdapter
from qts_data.plugins.registry import BuildContext, ComponentKind, ComponentRef, Settings

ALL = "__all__"
_POSITION = codec_for(Position)
_POSITION_OR_NONE = codec_for(Position | None)
_POSITIONS = codec_for(list[Position])
_RISK = codec_for(list[RiskConfig])
_STRATEGY = codec_for(list[StrategyParam])


class CachedSettings(Settings):
    adapter: Annotated[str, ComponentRef(ComponentKind.ADAPTER)]
    cache: Annotated[str, ComponentRef(ComponentKind.CACHE)]


class CachedAdapter(DelegatingAdapter):
    """``inner`` behind ``cache`` (a :class:`CacheManager`)."""

    def __init__(self, inner: DataSourceAdapter, cache: CacheManager) -> None:
        super().__init__(inner)
        self.cache = cache

    # -- positions: pos:{symbol}, and pos:__all__ for the list ----------------------------
    async def fetch_positions(self) -> list[Position]:
        return await self.cache.get_or_load(
            CacheKind.POSITION, _POSITIONS, self.inner.fetch_positions, symbol=ALL
        )

    async def fetch_position(self, symbol: str) -> Position | None:
        return await self.cache.get_or_load(
            CacheKind.POSITION,
            _POSITION_OR_NONE,
            lambda: self.inner.fetch_position(symbol),
            symbol=symbol,
        )

    async def save_position(self, position: Position) -> None:
        await self.cache.write_through(
            CacheKind.POSITION,
            position,
            _POSITION,
            lambda: self.inner.save_position(position),
            symbol=position.symbol,
        )
        await self.cache.invalidate(CacheKind.POSITION, symbol=ALL)

    # -- risk: risk:account ---------------------------------------------------------------
    async def fetch_risk_configs(self) -> list[RiskConfig]:
        return await self.cache.get_or_load(CacheKind.RISK, _RISK, self.inner.fetch_risk_configs)

    async def save_risk_config(self, config: RiskConfig) -> None:
        try:
            await self.inner.save_risk_config(config)
        finally:
            await self.cache.invalidate(CacheKind.RISK)

    # -- strategies: strat:{strategy_id} ------------------------------------------------
    async def fetch_strategy_params(self, strategy_id: str | None = None) -> list[StrategyParam]:
        return await self.cache.get_or_load(
            CacheKind.STRATEGY,
            _STRATEGY,
            lambda: self.inner.fetch_strategy_params(strategy_id),
            strategy_id=strategy_id or ALL,
        )

    async def save_strategy_param(self, param: StrategyParam) -> None:
        try:
            await self.inner.save_strategy_param(param)
        finally:
            await self.cache.invalidate(CacheKind.STRATEGY, strategy_id=param.strategy_id)
            await self.cache.invalidate(CacheKind.STRATEGY, strategy_id=ALL)

    async def health_check(self) -> HealthStatus:
        inner = await self.inner.health_check()
        summary = self.cache.summary()
        return HealthStatus(
            component=self.name or "cached",
            state=inner.state,
            latency_ms=inner.latency_ms,
            message=inner.message,
            details={"adapter": inner.component, "cache": summary["client"], **inner.details},
        )


def make_cached(settings: CachedSettings, ctx: BuildContext) -> CachedAdapter:
    manager = ctx.cache_manager(settings.cache)
    return CachedAdapter(ctx.adapter(settings.adapter), manager)
