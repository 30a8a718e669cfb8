"""The exceptions of qts-data.

Every error the library raises on purpose derives from :class:`QtsDataError`.
Their messages name what is wrong and where (a file, a key path, a field, a
plugin), and never contain a secret: the command line prints them as one line.
"""

from __future__ import annotations


class QtsDataError(Exception):
    """Base class of every error raised on purpose by qts-data."""


class ContractError(QtsDataError, ValueError):
    """A value does not satisfy a data contract (bad field, bad row)."""


class ConfigError(QtsDataError):
    """The configuration is invalid: the message names the source and the key path."""


class PluginError(QtsDataError):
    """A plugin could not be loaded, or a component name is provided by no plugin."""


class ElementTypeError(ContractError, TypeError):
    """An element of a bulk write is not the contract the method takes."""


class NotSupportedError(QtsDataError, NotImplementedError):
    """The backend does not support this operation (e.g. tick data on Google Sheets)."""


class BackendError(QtsDataError):
    """A backend (database, cache server, API) failed or could not be reached."""


class CacheTypeError(QtsDataError, TypeError):
    """A cache operation was applied to a key holding another type (Redis' WRONGTYPE)."""
