"""gspread, set up: credentials, the HTTP client, the stand-in switch, and failure classification.

This is the only module that imports gspread, google-auth and requests; the
adapter imports it when it opens, so discovering the plugin costs nothing.

Pointing gspread at a local stand-in: gspread builds every Sheets URL from
``gspread.urls.SPREADSHEETS_API_V4_BASE_URL`` (``https://sheets.googleapis.com/v4/spreadsheets``)
and sends it through ``HTTPClient.request``. :class:`SheetsHTTPClient` is that
client with one change: when ``api_base_url`` is set, the Google prefix of the
URL is replaced by ``{api_base_url}/v4/spreadsheets`` before the request is
sent. Everything else, building the requests, the ``AuthorizedSession``,
error handling, is gspread's and google-auth's own code. In that mode both
sessions (API calls and token refreshes) also refuse any host but the
stand-in's, so a test can never reach Google, not even through a token refresh
or a background lookup of google-auth.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, MutableMapping
from typing import Any
from urllib.parse import urlsplit

import gspread
import requests
from google.auth import exceptions as google_exceptions
from google.auth.credentials import AnonymousCredentials, Credentials
from google.auth.transport.requests import AuthorizedSession, Request
from gspread.http_client import FileType, HTTPClient, ParamsType
from gspread.urls import SPREADSHEETS_API_V4_BASE_URL
from requests.adapters import HTTPAdapter

from qts_data.config.secrets import mask, register_secret
from qts_data.errors import ConfigError
from qts_data_sheets.retry import Failure, FailureKind
from qts_data_sheets.settings import SheetsSettings

__all__ = [
    "SCOPES",
    "HostRefusedError",
    "SheetsHTTPClient",
    "build_client",
    "classify",
    "load_credentials",
]

#: The one scope the adapter needs: read and write spreadsheets (no Drive access).
SCOPES = ["https://www.googleapis.com/auth/spreadsheets"]

_SECRET_KEYS = ("private_key", "private_key_id", "client_secret", "refresh_token")


class HostRefusedError(requests.exceptions.InvalidURL):
    """A request to a host other than the stand-in's, refused while ``api_base_url`` is set."""


class _OnlyHost(HTTPAdapter):
    """A transport that sends only to one ``host:port`` and refuses every other."""

    def __init__(self, allowed: str) -> None:
        super().__init__()
        self.allowed = allowed

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        target = urlsplit(request.url or "").netloc.lower()
        if target != self.allowed:
            raise HostRefusedError(
                f"refusing to contact {target or request.url!r}: the sheets adapter is pointed at "
                f"the stand-in {self.allowed} (api_base_url)"
            )
        return super().send(request, *args, **kwargs)


def _restrict(session: requests.Session, base_url: str) -> None:
    adapter = _OnlyHost(urlsplit(base_url).netloc.lower())
    session.mount("http://", adapter)
    session.mount("https://", adapter)


class SheetsHTTPClient(HTTPClient):
    """gspread's HTTP client, sending to ``api_base_url`` instead of Google when it is set."""

    api_base_url: str | None = None

    def request(
        self,
        method: str,
        endpoint: str,
        params: ParamsType | None = None,
        data: bytes | None = None,
        json: Mapping[str, Any] | None = None,
        files: FileType = None,
        headers: MutableMapping[str, str] | None = None,
    ) -> requests.Response:
        base = self.api_base_url
        if base is not None:
            if not endpoint.startswith(SPREADSHEETS_API_V4_BASE_URL):
                raise HostRefusedError(
                    f"refusing {endpoint!r}: only the Sheets API is served by the stand-in"
                )
            endpoint = base + "/v4/spreadsheets" + endpoint[len(SPREADSHEETS_API_V4_BASE_URL) :]
        return super().request(
            method, endpoint, params=params, data=data, json=json, files=files, headers=headers
        )


def load_credentials(settings: SheetsSettings) -> tuple[Credentials, str]:
    """The credentials and the identity whose quota they use (the service account's e-mail).

    The JSON (from ``credentials_file`` or the environment variable named by
    ``credentials_env``) is a secret: it and its keys are registered for
    masking, and no error message quotes it. Without either, and only with
    ``api_base_url`` set, the credentials are anonymous (the stand-in).
    """
    if settings.credentials_file:
        source = f"credentials_file {settings.credentials_file}"
        try:
            with open(settings.credentials_file, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as exc:
            raise ConfigError(
                f"{source}: cannot read it ({exc.strerror or type(exc).__name__})"
            ) from None
    elif settings.credentials_env:
        source = f"credentials_env {settings.credentials_env}"
        text = os.environ.get(settings.credentials_env, "")
        if not text.strip():
            raise ConfigError(
                f"{source}: the environment variable {settings.credentials_env} is not set or is "
                "empty; it must hold the service-account JSON"
            )
    else:
        return AnonymousCredentials(), f"anonymous@{settings.api_base_url}"  # type: ignore[no-untyped-call]
    register_secret(text.strip())
    try:
        info = json.loads(text)
    except ValueError as exc:
        where = (
            f" (line {exc.lineno} column {exc.colno})"
            if isinstance(exc, json.JSONDecodeError)
            else ""
        )
        raise ConfigError(f"{source}: not valid JSON{where}") from None
    if not isinstance(info, dict):
        raise ConfigError(f"{source}: expected a JSON object (a service-account key)")
    for key in _SECRET_KEYS:
        value = info.get(key)
        if isinstance(value, str):
            register_secret(value)
            for line in value.splitlines():  # a PEM key may be shown line by line or escaped
                if len(line) >= 16 and not line.startswith("-----"):
                    register_secret(line)
    kind = info.get("type")
    try:
        if kind == "service_account":
            from google.oauth2 import service_account

            sa: Credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                info, scopes=SCOPES
            )
            return sa, str(info.get("client_email"))
        if kind == "authorized_user":
            from google.oauth2.credentials import Credentials as UserCredentials

            user: Credentials = UserCredentials.from_authorized_user_info(  # type: ignore[no-untyped-call]
                info, scopes=SCOPES
            )
            return user, f"user:{info.get('client_id')}"
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(mask(f"{source}: not usable credentials: {exc}")) from None
    raise ConfigError(
        f"{source}: unsupported credentials type {kind!r} (expected 'service_account' or "
        "'authorized_user')"
    )


def build_client(credentials: Credentials, settings: SheetsSettings) -> gspread.Client:
    """A gspread client over an ``AuthorizedSession`` (never contacts anything by itself)."""
    token_session = requests.Session()
    base = settings.api_base_url
    if base is not None:
        _restrict(token_session, base)
    session = AuthorizedSession(credentials, auth_request=Request(token_session))  # type: ignore[no-untyped-call]
    if base is not None:
        _restrict(session, base)
    client = gspread.Client(credentials, session=session, http_client=SheetsHTTPClient)
    http = client.http_client
    assert isinstance(http, SheetsHTTPClient)
    http.api_base_url = base
    client.set_timeout(settings.timeout_s)
    return client


def close_client(client: gspread.Client) -> None:
    session = client.http_client.session
    auth_request = getattr(session, "_auth_request", None)
    token_session = getattr(auth_request, "session", None)
    session.close()
    if isinstance(token_session, requests.Session):
        token_session.close()


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _retry_after(response: requests.Response | None) -> float | None:
    if response is None:
        return None
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def classify(exc: BaseException) -> Failure | None:
    """What a failure of a gspread call means for retrying (None: not an API failure)."""
    chain = _chain(exc)
    if any(isinstance(e, HostRefusedError) for e in chain):
        refused = next(e for e in chain if isinstance(e, HostRefusedError))
        return Failure(FailureKind.FATAL, str(refused))
    if isinstance(exc, gspread.exceptions.APIError):
        status = exc.response.status_code
        message = mask(str(exc.error.get("message", "")) or exc.response.reason or "")
        text = f"HTTP {status}: {message}"
        if status == 429:
            return Failure(FailureKind.THROTTLED, text, status, _retry_after(exc.response))
        if status >= 500 or status == 408:
            return Failure(FailureKind.SERVER, text, status, _retry_after(exc.response))
        if status == 401:
            text += " (the credentials were refused)"
        elif status == 403:
            text += " (share the spreadsheet with the service account's e-mail, as an editor)"
        return Failure(FailureKind.FATAL, text, status)
    if isinstance(exc, gspread.exceptions.SpreadsheetNotFound):
        return Failure(
            FailureKind.FATAL, "HTTP 404: spreadsheet not found (check spreadsheet_id)", 404
        )
    if isinstance(exc, PermissionError) and any(
        isinstance(e, gspread.exceptions.APIError) for e in chain
    ):
        return Failure(
            FailureKind.FATAL,
            "HTTP 403: no access to the spreadsheet (share it with the service account's e-mail)",
            403,
        )
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return Failure(FailureKind.UNSENT, f"could not connect: {type(exc).__name__}")
    if isinstance(exc, requests.exceptions.Timeout):
        return Failure(FailureKind.LOST, "no answer in time (read timeout)")
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        import urllib3.exceptions as u3

        if isinstance(reason, (u3.NewConnectionError, u3.ConnectTimeoutError)):
            return Failure(FailureKind.UNSENT, f"could not connect ({type(reason).__name__})")
        return Failure(FailureKind.LOST, "connection lost before an answer")
    if isinstance(exc, google_exceptions.RefreshError):
        return Failure(FailureKind.FATAL, mask(f"token refresh refused: {exc}"))
    if isinstance(exc, google_exceptions.TransportError):
        return Failure(FailureKind.UNSENT, mask(f"token refresh failed: {exc}"))
    if isinstance(exc, google_exceptions.GoogleAuthError):  # e.g. a 401 for anonymous credentials
        return Failure(FailureKind.FATAL, mask(f"the credentials were refused: {exc}"))
    return None
