"""The exceptions of the event dispatcher."""

from __future__ import annotations

from qts_data.errors import QtsDataError


class EventQueueFull(QtsDataError):
    """A P0 event met a full P0 queue on the non-waiting path (``publish_nowait``).

    P0 events are never dropped: the event was *not* accepted, and the caller
    still holds it. ``await dispatcher.publish(event)`` waits for room instead.
    """


class EventBusClosed(QtsDataError):
    """A P0 event was published after the dispatcher was stopped; it was not accepted."""
