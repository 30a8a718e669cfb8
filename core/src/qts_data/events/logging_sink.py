"""The ``logging`` event sink: writes events to the Python logger ``qts_data.events``."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Literal

from qts_data.contracts import Event, Priority
from qts_data.interfaces import EventSink
from qts_data.plugins.registry import BuildContext, Settings

_LEVELS = {
    Priority.P0: logging.CRITICAL,
    Priority.P1: logging.WARNING,
    Priority.P2: logging.INFO,
    Priority.P3: logging.DEBUG,
}


class LoggingSinkSettings(Settings):
    logger: str = "qts_data.events"
    #: Events less urgent than this are not logged.
    min_priority: Literal["P0", "P1", "P2", "P3"] = "P2"


class LoggingSink(EventSink):
    """Logs each event as one line of JSON, at a level that follows its priority."""

    def __init__(
        self, logger: str = "qts_data.events", min_priority: Priority = Priority.P2
    ) -> None:
        self.logger = logging.getLogger(logger)
        self.min_priority = min_priority

    async def deliver(self, events: Sequence[Event]) -> None:
        for event in events:
            if event.priority <= self.min_priority:
                self.logger.log(_LEVELS[event.priority], json.dumps(event.to_dict(), default=str))


def make_logging_sink(settings: LoggingSinkSettings, ctx: BuildContext) -> LoggingSink:
    return LoggingSink(settings.logger, Priority[settings.min_priority])
