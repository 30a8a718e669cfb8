"""Events: the prioritised dispatcher, its queues and degradation levels; the logging sink."""

from qts_data.contracts import Event, Priority
from qts_data.events.degradation import Degradation, DegradationLevel, LevelChange
from qts_data.events.delivery import DeliveryCounters
from qts_data.events.dispatcher import LEVEL_CHANGED, EventDispatcher
from qts_data.events.errors import EventBusClosed, EventQueueFull
from qts_data.events.queues import (
    BlockingQueue,
    CollapsingQueue,
    EventQueue,
    OverflowPolicy,
    RingQueue,
    SamplingQueue,
)
from qts_data.events.settings import EventSettings

__all__ = [
    "LEVEL_CHANGED",
    "BlockingQueue",
    "CollapsingQueue",
    "Degradation",
    "DegradationLevel",
    "DeliveryCounters",
    "Event",
    "EventBusClosed",
    "EventDispatcher",
    "EventQueue",
    "EventQueueFull",
    "EventSettings",
    "LevelChange",
    "OverflowPolicy",
    "Priority",
    "RingQueue",
    "SamplingQueue",
]
