"""Serialisation of cached values: JSON through pydantic-core, never pickle.

Decimals keep every digit and times their microseconds (the contracts' JSON form).
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import TypeAdapter

T = TypeVar("T")


class Codec(Generic[T]):
    """Encodes values of one type to bytes and back."""

    __slots__ = ("_adapter", "name")

    def __init__(self, type_: Any, name: str | None = None) -> None:
        self._adapter: TypeAdapter[T] = TypeAdapter(type_)
        self.name = name or getattr(type_, "__name__", repr(type_))

    def encode(self, value: T) -> bytes:
        return self._adapter.dump_json(value)

    def decode(self, data: bytes) -> T:
        return self._adapter.validate_json(data)


_codecs: dict[Any, Codec[Any]] = {}


def codec_for(type_: Any) -> Codec[Any]:
    """A shared codec per type (building a TypeAdapter costs far more than using one)."""
    found = _codecs.get(type_)
    if found is None:
        found = _codecs[type_] = Codec(type_)
    return found
