"""The interfaces plugins implement: adapters, cache clients, event sinks, safety listeners."""

from qts_data.interfaces.adapter import Capability, DataSourceAdapter, IngestResult, TickSource
from qts_data.interfaces.cache import CacheClient, CachePipeline, Value
from qts_data.interfaces.component import Component
from qts_data.interfaces.sink import EventSink, SafetyListener

__all__ = [
    "CacheClient",
    "CachePipeline",
    "Capability",
    "Component",
    "DataSourceAdapter",
    "EventSink",
    "IngestResult",
    "SafetyListener",
    "TickSource",
    "Value",
]
