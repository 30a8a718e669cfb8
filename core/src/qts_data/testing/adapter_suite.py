"""Placeholder: being written."""


class AdapterConformance:
    pass
