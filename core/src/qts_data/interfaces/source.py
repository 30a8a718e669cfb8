"""The upstream market-data source: where candles come from when no tier of storage has them."""

from __future__ import annotations

import abc
from datetime import datetime

from qts_data.contracts import OHLCV, Interval
from qts_data.interfaces.component import Component


class MarketDataSource(Component, abc.ABC):
    """Fetches candles from an exchange or a vendor (seeds/001: the layer below storage)."""

    @abc.abstractmethod
    async def fetch_candles(
        self, symbol: str, interval: Interval, start: datetime, end: datetime
    ) -> list[OHLCV]:
        """Candles of ``symbol`` whose bucket starts in ``[start, end)``, in time order.

        Only complete buckets are returned; an unknown symbol gives an empty list.
        """
