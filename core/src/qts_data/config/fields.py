"""What a settings field's type says about its values: whether it is a secret, whether a string.

Decided from the model's annotations, never from the values or the field names:
a field typed :class:`~pydantic.SecretStr` (alone, optional or in a union) is a
secret, and a validation error about it never quotes its input; a field whose
type is a string (``str``, ``SecretStr``, a ``Literal`` of strings, optional or
not) takes an environment override as the text it is.
"""

from __future__ import annotations

import types
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, SecretBytes, SecretStr

if TYPE_CHECKING:
    from qts_data.config.loader import RawConfig

__all__ = ["env_text_for", "hides_input", "is_secret_type", "is_string_type"]

_SECRETS = (SecretStr, SecretBytes)


def _is_class(value: Any) -> bool:
    """A class, not a parametrised generic (Python 3.10 calls ``list[str]`` a type)."""
    return isinstance(value, type) and get_origin(value) is None


def _members(annotation: Any) -> list[Any]:
    """The types a value of ``annotation`` may have (unions and ``Annotated`` unwrapped)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _members(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return [m for arg in get_args(annotation) for m in _members(arg)]
    return [annotation]


def is_secret_type(annotation: Any) -> bool:
    """``SecretStr``, ``SecretStr | None``, ``list[SecretStr]``, ...: any secret inside."""
    if _is_class(annotation) and issubclass(annotation, _SECRETS):
        return True
    return any(is_secret_type(arg) for arg in get_args(annotation))


def is_string_type(annotation: Any) -> bool:
    """Every non-None member of ``annotation`` is a string type."""
    members = [m for m in _members(annotation) if m is not type(None)]
    if not members:
        return False
    for member in members:
        if get_origin(member) is Literal:
            if not all(isinstance(v, str) for v in get_args(member)):
                return False
        elif not (_is_class(member) and issubclass(member, (str, SecretStr))):
            return False
    return True


def hides_input(model: type[BaseModel], loc: Sequence[int | str]) -> bool:
    """Whether an error at ``loc`` of ``model`` must not quote its input."""
    if model.model_config.get("hide_input_in_errors"):
        return True
    if not loc:
        return False
    info = model.model_fields.get(str(loc[0]))
    if info is None:
        return False
    if is_secret_type(info.annotation):
        return True
    for member in _members(info.annotation):
        if _is_class(member) and issubclass(member, BaseModel):
            return hides_input(member, loc[1:])
    return False


def env_text_for(model: type[BaseModel], path: str, values: Any, raw: RawConfig) -> Any:
    """``values`` (the table at ``path``) with each string-typed field that an
    environment variable set holding that variable's text, not its TOML reading."""
    if not isinstance(values, dict) or not raw.env_text:
        return values
    prefix = path + "."
    changed = dict(values)
    for key_path, text in raw.env_text.items():
        name = key_path.removeprefix(prefix)
        if name == key_path or "." in name or name not in changed:
            continue
        info = model.model_fields.get(name)
        if info is not None and is_string_type(info.annotation):
            changed[name] = text
    return changed
