"""Test support for qts-data and its plugins, loaded as a pytest plugin.

* Conformance suites: subclass :class:`AdapterConformance`,
  :class:`CacheClientConformance`, :class:`EventSinkConformance` or
  :class:`OutboxConformance` (a durable outbox of the hybrid dual-write) in
  your plugin's tests to have the whole contract of the interface checked
  against your backend.
* Server fixtures (:mod:`qts_data.testing.servers`): a database of its own on
  the machine's PostgreSQL, a key prefix of its own on its Redis, and
  throwaway ``redis-server`` / PostgreSQL processes for fault tests.

Enable it with ``-p qts_data.testing`` or ``pytest_plugins = ["qts_data.testing"]``.
"""

from qts_data.testing.adapter_suite import AdapterConformance
from qts_data.testing.cache_suite import CacheClientConformance
from qts_data.testing.outbox_suite import OutboxConformance
from qts_data.testing.plugin_site import PluginSite, plugin_site
from qts_data.testing.servers import *  # noqa: F403 - the fixtures must be module globals for pytest
from qts_data.testing.servers import __all__ as _server_names
from qts_data.testing.sink_suite import EventSinkConformance

__all__ = [
    "AdapterConformance",
    "CacheClientConformance",
    "EventSinkConformance",
    "OutboxConformance",
    "PluginSite",
    "plugin_site",
    *_server_names,
]
