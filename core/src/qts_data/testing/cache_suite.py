"""Placeholder: being written."""


class CacheClientConformance:
    pass
