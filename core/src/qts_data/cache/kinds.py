"""The six cache kinds of seeds/004 with their key templates, TTLs and time budgets.

Keys are rendered with the first parameter as a Redis Cluster hash tag
(``price:{005930}``, ``book:{005930}:bid``), so every key of one symbol lives
in one slot and multi-key operations on it stay on one node.
"""

from __future__ import annotations

from enum import Enum


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
        """The key template of seeds/004 (``price:{symbol}``)."""
        return _TEMPLATES[self][0]

    @property
    def key_format(self) -> str:
        """The ``str.format`` pattern that renders a key with its hash tag."""
        return _TEMPLATES[self][1]

    @property
    def default_ttl_ms(self) -> int:
        return _TTLS_MS[self]

    @property
    def parameters(self) -> tuple[str, ...]:
        return _TEMPLATES[self][2]


_TEMPLATES = {
    CacheKind.PRICE: ("price:{symbol}", "price:{{{symbol}}}", ("symbol",)),
    CacheKind.POSITION: ("pos:{symbol}", "pos:{{{symbol}}}", ("symbol",)),
    CacheKind.ORDERBOOK: ("book:{symbol}:{side}", "book:{{{symbol}}}:{side}", ("symbol", "side")),
    CacheKind.RISK: ("risk:account", "risk:account", ()),
    CacheKind.ORDER: ("ord:{order_id}", "ord:{{{order_id}}}", ("order_id",)),
    CacheKind.STRATEGY: ("strat:{strategy_id}", "strat:{{{strategy_id}}}", ("strategy_id",)),
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
CACHE_FORMAT_VERSION = 2  # 2: hashes carry the write version "n"; tombstones
