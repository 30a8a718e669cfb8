"""qts-data: the data and caching layer of a quantitative trading system.

``open_stack()`` composes a stack from configuration; the contracts live in
:mod:`qts_data.contracts`, the plugin interfaces in :mod:`qts_data.interfaces`.
"""

from qts_data._version import __version__
from qts_data.errors import (
    BackendError,
    ConfigError,
    ContractError,
    NotSupportedError,
    PluginError,
    QtsDataError,
)
from qts_data.stack import Stack, StackHealth, open_stack

__all__ = [
    "BackendError",
    "ConfigError",
    "ContractError",
    "NotSupportedError",
    "PluginError",
    "QtsDataError",
    "Stack",
    "StackHealth",
    "__version__",
    "open_stack",
]
