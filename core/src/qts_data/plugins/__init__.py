"""Plugin discovery and registration (pluggy, entry-point group ``qts_data``)."""

from qts_data.plugins.hookspecs import hookimpl, hookspec
from qts_data.plugins.registry import (
    BuildContext,
    ComponentKind,
    ComponentRef,
    ComponentSpec,
    Factory,
    NoSettings,
    Register,
    Settings,
)

__all__ = [
    "BuildContext",
    "ComponentKind",
    "ComponentRef",
    "ComponentSpec",
    "Factory",
    "NoSettings",
    "Register",
    "Settings",
    "hookimpl",
    "hookspec",
]
