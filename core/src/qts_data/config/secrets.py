"""The last line of defence for secrets, and their public view.

Secrets are kept out of messages by construction: secret-typed settings
(:mod:`qts_data.config.fields` never quotes their input), server URLs parsed
once (:mod:`qts_data.config.urls`: messages name the setting, never the URL).
Should a library still print one, the values of ``SecretStr`` settings and the
passwords inside URLs are registered when a configuration is validated, and
:func:`mask` replaces them with ``***``: a logging filter applies it to every
record of the ``qts_data`` loggers, and the command line to everything it
prints. The tests (:mod:`qts_data.testing.secret_search`) run with this net off.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

from pydantic import BaseModel, SecretStr

from qts_data.config.urls import MASK as MASK
from qts_data.config.urls import UrlError, parse_server_url

_URL_PASSWORD = re.compile(
    r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?P<pw>[^@\s/]+)(?P<at>@)"
)
_known: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Mask ``value`` from now on (values shorter than 4 characters are ignored as too common)."""
    if value and len(value) >= 4:
        with _lock:
            _known.add(value)


def mask_url(url: str) -> str:
    """``postgresql://u:pw@h/db`` -> ``postgresql://u:***@h/db``."""
    return _URL_PASSWORD.sub(lambda m: m["head"] + MASK + m["at"], url)


def mask(text: str) -> str:
    """``text`` with every known secret and every URL password replaced by ``***``."""
    text = mask_url(text)
    if _known:
        with _lock:
            secrets = sorted(_known, key=len, reverse=True)
        for secret in secrets:
            if secret in text:
                text = text.replace(secret, MASK)
    return text


def _url_password(text: str) -> str | None:
    """The password of ``text`` if it is a URL that holds one."""
    if "://" not in text:
        return None
    try:
        url = parse_server_url(text, setting="url")
    except UrlError:
        return None
    return url.password.get_secret_value() if url.password is not None else None


def register_secrets_in(value: Any) -> None:
    """Register every secret in a settings object: SecretStr values and URL passwords."""
    if isinstance(value, SecretStr):
        raw = value.get_secret_value()
        register_secret(raw)
        register_secret(_url_password(raw))
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            register_secrets_in(getattr(value, name))
    elif isinstance(value, dict):
        for item in value.values():
            register_secrets_in(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            register_secrets_in(item)
    elif isinstance(value, str):
        register_secret(_url_password(value))


def public_view(value: Any) -> Any:
    """A JSON-ready copy of settings with secrets masked (for ``qts-data check``)."""
    if isinstance(value, SecretStr):
        raw = value.get_secret_value()
        if "://" in raw:
            try:
                return parse_server_url(raw, setting="url").masked
            except UrlError:
                pass
        return MASK
    if isinstance(value, BaseModel):
        return {name: public_view(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, dict):
        return {
            str(k.value if hasattr(k, "value") else k): public_view(v) for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [public_view(v) for v in value]
    if isinstance(value, str):
        return mask(value)
    if hasattr(value, "value") and not isinstance(value, (int, float, bool)):
        return value.value
    return value


class MaskingFilter(logging.Filter):
    """Masks secrets in log records (message and arguments)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


_installed = False


def install_log_masking(prefix: str = "qts_data") -> None:
    """Mask every log record of the ``prefix`` loggers, whatever handler emits it (idempotent).

    A filter on a logger does not see its children's records, so the masking is
    done where records are made: in the log record factory.
    """
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()
    masker = MaskingFilter()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if record.name == prefix or record.name.startswith(prefix + "."):
            masker.filter(record)
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
