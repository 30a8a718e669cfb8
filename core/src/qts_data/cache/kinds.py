"""The six cache kinds of seeds/004 with their key templates and default TTLs."""

from __future__ import annotations

from enum import Enum
from string import Formatter


class CacheKind(str, Enum):
    """A kind of cached value. The value is the name used in configuration and statistics."""

    PRICE = "price"
    POSITION = "position"
    ORDERBOOK = "orderbook"
    RISK = "risk"
    ORDER = "order"
    STRATEGY = "strategy"

    @property
    def template(self) -> str:
        """The key template (``price:{symbol}``), before the namespace and version prefix."""
        return _TEMPLATES[self]

    @property
    def default_ttl_ms(self) -> int:
        return _TTLS_MS[self]

    @property
    def parameters(self) -> tuple[str, ...]:
        return tuple(name for _, name, _, _ in Formatter().parse(self.template) if name)


_TEMPLATES = {
    CacheKind.PRICE: "price:{symbol}",
    CacheKind.POSITION: "pos:{symbol}",
    CacheKind.ORDERBOOK: "book:{symbol}:{side}",
    CacheKind.RISK: "risk:account",
    CacheKind.ORDER: "ord:{order_id}",
    CacheKind.STRATEGY: "strat:{strategy_id}",
}
_TTLS_MS = {
    CacheKind.PRICE: 100,
    CacheKind.POSITION: 1_000,
    CacheKind.ORDERBOOK: 50,
    CacheKind.RISK: 5_000,
    CacheKind.ORDER: 60_000,
    CacheKind.STRATEGY: 60_000,
}

#: Bumped whenever the cached form of a contract changes, so old values are never read.
CACHE_FORMAT_VERSION = 1
