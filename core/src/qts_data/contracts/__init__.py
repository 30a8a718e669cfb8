"""The data contracts of qts-data (seeds/002, sections 3.1 and 3.2).

Every contract is an immutable pydantic model with exact Decimal quantities and
UTC times; invalid input raises :class:`~qts_data.errors.ContractError`.
"""

from qts_data.contracts._base import Contract, UtcDatetime
from qts_data.contracts.events import Event, Priority, SafetyChange, SafetyState
from qts_data.contracts.health import HealthState, HealthStatus
from qts_data.contracts.market import OHLCV, BookLevel, Interval, OrderBook, TickData
from qts_data.contracts.settings import RiskConfig, StrategyParam
from qts_data.contracts.trading import ExecutionLog, LedgerEntry, Order, Position

__all__ = [
    "OHLCV",
    "BookLevel",
    "Contract",
    "Event",
    "ExecutionLog",
    "HealthState",
    "HealthStatus",
    "Interval",
    "LedgerEntry",
    "Order",
    "OrderBook",
    "Position",
    "Priority",
    "RiskConfig",
    "SafetyChange",
    "SafetyState",
    "StrategyParam",
    "TickData",
    "UtcDatetime",
]
