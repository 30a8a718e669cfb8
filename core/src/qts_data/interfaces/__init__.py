"""The interfaces plugins implement: adapters, cache clients, event sinks, safety listeners."""

from qts_data.interfaces.adapter import Capability, DataSourceAdapter, IngestResult, TickSource
from qts_data.interfaces.cache import (
    CacheClient,
    CachePipeline,
    MessageHandler,
    Subscription,
    Value,
)
from qts_data.interfaces.component import Component
from qts_data.interfaces.operations import (
    GapChecking,
    Maintainable,
    MaintenanceReport,
    Migratable,
    MigrationReport,
    OutboxHosting,
    RowErrorReporting,
    StorageInspectable,
    StorageReport,
)
from qts_data.interfaces.sink import EventSink, SafetyListener
from qts_data.interfaces.source import MarketDataSource

__all__ = [
    "CacheClient",
    "CachePipeline",
    "Capability",
    "Component",
    "DataSourceAdapter",
    "EventSink",
    "GapChecking",
    "IngestResult",
    "Maintainable",
    "MaintenanceReport",
    "MarketDataSource",
    "MessageHandler",
    "Migratable",
    "MigrationReport",
    "OutboxHosting",
    "RowErrorReporting",
    "SafetyListener",
    "StorageInspectable",
    "StorageReport",
    "Subscription",
    "TickSource",
    "Value",
]
