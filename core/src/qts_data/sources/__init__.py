"""Upstream market-data sources shipped with the core (component kind ``source``)."""

from qts_data.sources.synthetic import (
    SyntheticMarketSource,
    SyntheticSourceSettings,
    make_synthetic_source,
)

__all__ = ["SyntheticMarketSource", "SyntheticSourceSettings", "make_synthetic_source"]
