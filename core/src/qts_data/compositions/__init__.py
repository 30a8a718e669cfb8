"""Adapters made of other adapters: ``cached`` (fronted by a cache) and ``hybrid`` (dual-write)."""

from qts_data.compositions.cached import CachedAdapter, CachedSettings
from qts_data.compositions.delegating import DelegatingAdapter
from qts_data.compositions.hybrid import DataSourceMode, HybridAdapter, HybridSettings

__all__ = [
    "CachedAdapter",
    "CachedSettings",
    "DataSourceMode",
    "DelegatingAdapter",
    "HybridAdapter",
    "HybridSettings",
]
