"""The ``synthetic`` market-data source: reproducible candles for any symbol, for demos, tests and benchmarks.

Every candle is a pure function of ``(seed, symbol, interval, bucket start)``,
so repeated and overlapping requests agree to the last digit, whatever ranges
they ask for. The price path is continuous across buckets (a candle closes
where the next one opens) and looks like a geometric random walk: the log price
is a sum of smooth random curves at time scales from one minute to two years,
each with the amplitude a Brownian motion of the given daily volatility has at
that scale, around a reference level (``prices``, or a level derived from the
symbol). Curves finer than the interval are left out of its candles, so the
candles of different intervals follow the same trend but need not share prices. High, low and volume add bounded random excursions.

Only complete buckets are returned: a bucket whose end is still in the future
is not (the exchange has not closed it yet). An optional ``latency_ms`` makes
every call as slow as a remote exchange, and ``calls`` / ``candles_served``
count what was asked, for tests and benchmarks.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from pydantic import Field

from qts_data.contracts import OHLCV, HealthState, HealthStatus, Interval
from qts_data.errors import ContractError
from qts_data.interfaces import MarketDataSource
from qts_data.plugins.registry import BuildContext, Settings

__all__ = ["SyntheticMarketSource", "SyntheticSourceSettings", "make_synthetic_source"]

UTC = timezone.utc
_MASK = (1 << 64) - 1
#: Knot spacing of the finest curve (seconds) and the number of curves (each 4x coarser).
_BASE_S = 60
_LEVELS = 11  # 60 s ... 60 * 4**10 s (about two years)
_MAX_LOG_DEVIATION = 3.0
#: Price paths (with their cached knots) kept for the most recently asked symbols.
_PATHS_KEPT = 1024


class SyntheticSourceSettings(Settings):
    """``[sources.NAME] type = "synthetic"``."""

    seed: int = Field(default=7, description="the same seed gives the same candles")
    latency_ms: float = Field(
        default=0.0, ge=0, le=60_000, description="added to every call, like a remote exchange"
    )
    symbols: list[str] | None = Field(
        default=None, description="the symbols it knows (others give no candles); None: any symbol"
    )
    prices: dict[str, Decimal] = Field(
        default_factory=dict,
        description="reference price level per symbol; others get a level derived from the name",
    )
    volatility: float = Field(
        default=0.02, gt=0, le=1, description="standard deviation of daily log returns"
    )


def _mix(value: int) -> int:
    """SplitMix64's finaliser: a well-spread 64-bit hash of a 64-bit integer."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK
    return value ^ (value >> 31)


def _normal(bits: int) -> float:
    """A standard normal number from 64 random bits (Box-Muller)."""
    u1 = ((bits >> 32) + 1) / 4294967297.0  # (0, 1]
    u2 = (bits & 0xFFFFFFFF) / 4294967296.0
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def _symbol_key(seed: int, symbol: str) -> int:
    digest = hashlib.blake2b(f"{seed}\x00{symbol}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _tick_size(level: float) -> Decimal:
    """A price step giving about five significant digits at ``level``."""
    exponent = max(-8, math.floor(math.log10(level)) - 4)
    return Decimal(1).scaleb(exponent)


def _snap(value: float, tick: Decimal) -> Decimal:
    steps = max(1, round(value / float(tick)))
    price = Decimal(steps) * tick
    return price.quantize(Decimal(1)) if tick >= 1 else price


class _Path:
    """The log-price curve of one symbol."""

    def __init__(self, key: int, volatility: float) -> None:
        self.key = key
        sigma = volatility / math.sqrt(86_400.0)
        self.scales = [_BASE_S * 4**k for k in range(_LEVELS)]
        self.amplitudes = [0.6 * sigma * math.sqrt(s) for s in self.scales]
        self._knots: dict[tuple[int, int], float] = {}

    def _knot(self, level: int, index: int) -> float:
        found = self._knots.get((level, index))
        if found is None:
            found = _normal(_mix(self.key ^ _mix((level << 56) ^ (index & ((1 << 56) - 1)))))
            if level > 0:  # coarse knots are shared by many buckets; fine ones are not
                self._knots[(level, index)] = found
        return found

    def log_deviation(self, seconds: int, finest: int = 0) -> float:
        """The log deviation from the reference level at ``seconds``, from curves of scale >= ``finest``."""
        total = 0.0
        for level, (scale, amplitude) in enumerate(zip(self.scales, self.amplitudes, strict=True)):
            if scale < finest:
                continue
            index, rest = divmod(seconds, scale)
            left = self._knot(level, index)
            if rest:
                frac = rest / scale
                left += (self._knot(level, index + 1) - left) * frac
            total += amplitude * left
        return _MAX_LOG_DEVIATION * math.tanh(total / _MAX_LOG_DEVIATION)


class SyntheticMarketSource(MarketDataSource):
    """Deterministic candles for any symbol (or those of ``symbols``); complete buckets only."""

    def __init__(
        self,
        settings: SyntheticSourceSettings | None = None,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings or SyntheticSourceSettings()
        self._now = now
        self._allowed = None if self.settings.symbols is None else frozenset(self.settings.symbols)
        self._paths: dict[str, _Path] = {}
        self.calls = 0
        self.candles_served = 0

    def reference_price(self, symbol: str) -> float:
        given = self.settings.prices.get(symbol)
        if given is not None and given > 0:
            return float(given)
        bits = _mix(_symbol_key(self.settings.seed, symbol) ^ 0x5EED)
        return 10 ** (1 + 4 * (bits / 2**64))  # 10 ... 100,000

    async def fetch_candles(
        self, symbol: str, interval: Interval | str, start: datetime, end: datetime
    ) -> list[OHLCV]:
        step = Interval.parse(interval)
        for what, value in (("start", start), ("end", end)):
            if not isinstance(value, datetime) or value.utcoffset() is None:
                raise ContractError(f"fetch_candles: {what} must be a timezone-aware datetime")
        self.calls += 1
        if self.settings.latency_ms:
            await asyncio.sleep(self.settings.latency_ms / 1000)
        if self._allowed is not None and symbol not in self._allowed:
            return []
        seconds = step.seconds
        first = step.floor(start)
        if first < start:
            first = datetime.fromtimestamp(first.timestamp() + seconds, UTC)
        complete = step.floor(self._now())  # the first bucket not yet closed
        first_s = int(first.timestamp())
        last_s = int(min(end, complete).timestamp())  # buckets start before this
        if first_s >= last_s:
            return []
        candles = self._candles(symbol, step, first_s, last_s)
        self.candles_served += len(candles)
        return candles

    def _candles(self, symbol: str, step: Interval, first_s: int, last_s: int) -> list[OHLCV]:
        key = _symbol_key(self.settings.seed, symbol)
        path = self._paths.pop(symbol, None) or _Path(key, self.settings.volatility)
        self._paths[symbol] = path  # most recently used last
        if len(self._paths) > _PATHS_KEPT:
            del self._paths[next(iter(self._paths))]
        level = self.reference_price(symbol)
        tick = _tick_size(level)
        seconds = step.seconds
        sigma = self.settings.volatility * math.sqrt(seconds / 86_400.0)
        daily_volume = 1e12 / level  # about a trillion of quote currency a day (KRW)
        salt = _mix(key ^ seconds)
        out: list[OHLCV] = []
        price = level * math.exp(path.log_deviation(first_s, seconds))
        for at in range(first_s, last_s, seconds):
            nxt = level * math.exp(path.log_deviation(at + seconds, seconds))
            noise = _mix(salt ^ at)
            up = abs(_normal(noise)) * sigma * 0.5
            down = abs(_normal(_mix(noise))) * sigma * 0.5
            volume_noise = _normal(_mix(noise ^ 0xFACE))
            o = _snap(price, tick)
            c = _snap(nxt, tick)
            high = max(_snap(max(price, nxt) * math.exp(up), tick), o, c)
            low = min(_snap(min(price, nxt) * math.exp(-down), tick), o, c)
            out.append(
                OHLCV(
                    time=datetime.fromtimestamp(at, UTC),
                    symbol=symbol,
                    open=o,
                    high=high,
                    low=low,
                    close=c,
                    volume=max(
                        0, int(daily_volume * seconds / 86_400 * math.exp(0.5 * volume_noise))
                    ),
                )
            )
            price = nxt
        return out

    async def health_check(self) -> HealthStatus:
        return HealthStatus(
            component=self.name or "synthetic",
            state=HealthState.HEALTHY,
            details={"calls": self.calls, "candles_served": self.candles_served},
        )

    def describe(self) -> dict[str, Any]:
        return {
            "seed": self.settings.seed,
            "latency_ms": self.settings.latency_ms,
            "symbols": "any" if self.settings.symbols is None else len(self.settings.symbols),
        }


def make_synthetic_source(
    settings: SyntheticSourceSettings, ctx: BuildContext
) -> SyntheticMarketSource:
    return SyntheticMarketSource(settings)
