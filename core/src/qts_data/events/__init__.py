"""Events: the bus that delivers them to sinks, and the built-in logging sink."""

from qts_data.contracts import Event, Priority
from qts_data.events.bus import EventBus, SinkCounters

__all__ = ["Event", "EventBus", "Priority", "SinkCounters"]
