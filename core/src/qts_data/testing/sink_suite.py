"""Placeholder: being written."""


class EventSinkConformance:
    pass
