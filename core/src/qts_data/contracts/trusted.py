"""Contracts built from values that are already valid, without validation.

Rows read back from a schema that enforces the contract (column types,
lengths, CHECK constraints) need no second validation: :func:`trusted_builder`
makes the object directly, as ``model_construct`` does, in a fraction of the
time. This keeps the read paths of the SQL adapters close to their drivers.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MemberDescriptorType
from typing import Any, TypeVar, cast

from pydantic import BaseModel

from qts_data.contracts._base import Contract

C = TypeVar("C", bound=Contract)

__all__ = ["trusted_builder"]


def _slot_setter(cls: type, name: str) -> Callable[[Any, Any], None] | None:
    """The ``__set__`` of the slot ``name`` that ``cls`` inherits, or None."""
    for klass in cls.__mro__:
        found = vars(klass).get(name)
        if found is not None:
            return found.__set__ if isinstance(found, MemberDescriptorType) else None
    return None


def trusted_builder(cls: type[C]) -> Callable[[dict[str, Any]], C]:
    """A function building ``cls`` from a dict of *every* field, without validation.

    It does what ``cls.model_construct(**values)`` does for a frozen model
    without private attributes or extra fields, in a sixth of the time: the
    dict becomes the instance's ``__dict__`` and pydantic's three slots are set
    directly. All instances share one ``model_fields_set`` (every field): the
    contracts are frozen, and pydantic copies that set before changing it
    (``model_copy``). The builder checks once that its result equals
    ``model_construct``'s, and falls back to ``model_construct`` when pydantic
    lays models out differently.
    """
    fields = tuple(cls.model_fields)

    raw_construct = BaseModel.model_construct.__func__  # type: ignore[attr-defined]

    def construct(values: dict[str, Any]) -> C:
        # pydantic's own model_construct (Contract's validates).
        return cast(C, raw_construct(cls, **values))

    config = cls.model_config
    setters = [
        _slot_setter(cls, name)
        for name in ("__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__")
    ]
    if (
        cls.__private_attributes__
        or config.get("extra") == "allow"
        or not config.get("frozen")
        or None in setters
    ):
        return construct
    set_fields, set_extra, set_private = cast(list[Callable[[Any, Any], None]], setters)
    new = object.__new__
    set_attr = object.__setattr__
    fields_set = set(fields)

    def build(values: dict[str, Any]) -> C:
        obj = new(cls)
        set_attr(obj, "__dict__", values)
        set_fields(obj, fields_set)
        set_extra(obj, None)
        set_private(obj, None)
        return obj

    probe = dict.fromkeys(fields)
    try:
        same = build(dict(probe)).__getstate__() == construct(dict(probe)).__getstate__()
    except Exception:
        same = False
    return build if same else construct
