"""What plugins register: component kinds, factories, their settings, and references between components."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from qts_data.cache import CacheManager
    from qts_data.interfaces import CacheClient, Component, DataSourceAdapter


class ComponentKind(str, Enum):
    """The kinds of component a plugin can provide, with their configuration section."""

    ADAPTER = "adapter"
    CACHE = "cache"
    SINK = "sink"
    LISTENER = "listener"
    SOURCE = "source"

    @property
    def section(self) -> str:
        """The configuration table holding components of this kind (``[adapters.NAME]``...)."""
        return _SECTIONS[self]

    @property
    def label(self) -> str:
        return _LABELS[self]


_SECTIONS = {
    ComponentKind.ADAPTER: "adapters",
    ComponentKind.CACHE: "caches",
    ComponentKind.SINK: "sinks",
    ComponentKind.LISTENER: "listeners",
    ComponentKind.SOURCE: "sources",
}
_LABELS = {
    ComponentKind.ADAPTER: "adapter",
    ComponentKind.CACHE: "cache client",
    ComponentKind.SINK: "event sink",
    ComponentKind.LISTENER: "safety listener",
    ComponentKind.SOURCE: "market-data source",
}


class Settings(BaseModel):
    """Base for component settings: unknown keys are errors, so a typo is caught."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoSettings(Settings):
    """Settings of a component that takes none."""


@dataclass(frozen=True)
class ComponentRef:
    """Marks a settings field that names another component of the stack.

    ``adapter: Annotated[str, ComponentRef(ComponentKind.ADAPTER)]`` lets the stack
    check the name, open the referenced component first, and report cycles.
    """

    kind: ComponentKind


class BuildContext(Protocol):
    """Given to factories: access to the other components of the stack being built."""

    def adapter(self, name: str) -> DataSourceAdapter: ...
    def cache(self, name: str) -> CacheClient: ...
    def cache_manager(self, name: str) -> CacheManager:
        """The stack's cache manager over the cache client ``name`` (one per client)."""
        ...

    def component(self, kind: ComponentKind, name: str) -> Component: ...
    def resolve_path(self, path: str) -> str:
        """A path from the configuration, relative to the configuration file's folder."""
        ...

    @property
    def inspect_only(self) -> bool:
        """The stack is opened to be looked at (``qts-data check``, ``verify``...): its
        components start no background work that changes stored data and take nothing
        that a running process of the same configuration holds."""
        ...


#: ``factory(settings, ctx) -> component``; called only when a stack uses the component.
Factory = Callable[[Any, BuildContext], "Component"]


class Register(Protocol):
    """The callback a hook implementation calls once per component it provides."""

    def __call__(
        self,
        name: str,
        factory: Factory,
        *,
        settings: type[Settings] = NoSettings,
        description: str = "",
    ) -> None: ...


@dataclass(frozen=True)
class ComponentSpec:
    """A registered component factory."""

    kind: ComponentKind
    name: str
    plugin: str
    factory: Factory = field(repr=False)
    settings: type[Settings] = NoSettings
    description: str = ""

    def references(self) -> dict[str, ComponentKind]:
        """Settings field -> kind, for fields that name other components."""
        refs: dict[str, ComponentKind] = {}
        for field_name, info in self.settings.model_fields.items():
            for meta in info.metadata:
                if isinstance(meta, ComponentRef):
                    refs[field_name] = meta.kind
        return refs
