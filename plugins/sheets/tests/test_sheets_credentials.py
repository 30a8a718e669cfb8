"""Credentials: a service-account JSON from a file or an environment variable, used through
google-auth's real token flow (against the stand-in's token endpoint), and never shown."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from qts_data.config.secrets import mask
from qts_data.errors import BackendError, ConfigError
from qts_data_sheets import SheetsSettings
from qts_data_sheets.adapter import SheetsAdapter
from qts_data_sheets.testing import SheetsStandIn
from qts_data_sheets.testing.fixtures import standin_settings

EMAIL = "qts-bot@qts-test.iam.gserviceaccount.com"
KEY_ID = "3f1c2a9b8e7d6c5b4a39281706f5e4d3c2b1a098"
ENV = "QTS_TEST_SHEETS_CREDENTIALS"


@pytest.fixture(scope="module")
def private_key_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def service_account(pem: str, token_uri: str) -> str:
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "qts-test",
            "private_key_id": KEY_ID,
            "private_key": pem,
            "client_email": EMAIL,
            "client_id": "100000000000000000001",
            "token_uri": token_uri,
        }
    )


@pytest.fixture
def authenticating(sheets_standin: SheetsStandIn) -> Iterator[SheetsStandIn]:
    sheets_standin.require_auth = True
    yield sheets_standin
    sheets_standin.require_auth = False


def secret_fragments(pem: str) -> list[str]:
    lines = [line for line in pem.splitlines() if line and not line.startswith("-----")]
    return [lines[0], lines[len(lines) // 2], KEY_ID]


async def test_service_account_json_from_an_environment_variable(
    authenticating: SheetsStandIn,
    spreadsheet: str,
    private_key_pem: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    standin = authenticating
    text = service_account(private_key_pem, standin.token_url)
    monkeypatch.setenv(ENV, text)
    settings = SheetsSettings(**standin_settings(standin, spreadsheet, credentials_env=ENV))
    adapter = SheetsAdapter(settings)
    with caplog.at_level(logging.DEBUG):
        await adapter.open()
        try:
            await adapter.update_position("AAPL", 1, 100)
            assert [p.symbol for p in await adapter.fetch_positions()] == ["AAPL"]
            health = await adapter.health_check()
        finally:
            await adapter.close()
    # google-auth made a real JWT grant, at the stand-in, as the service account...
    [claims] = standin.token_requests
    assert claims["iss"] == EMAIL
    assert claims[
        "aud"
    ]  # google-auth signs for Google's token audience; the grant went to token_uri
    assert claims["scope"] == "https://www.googleapis.com/auth/spreadsheets"
    # ...and every API request carried the token it got.
    api = standin.requests_for()
    assert api and all((r.authorization or "").startswith("Bearer standin-token-") for r in api)
    assert all(r.status == 200 for r in api)
    # Nothing shows the secret.
    shown = [
        repr(settings),
        str(settings),
        settings.model_dump_json(),
        json.dumps(adapter.describe()),
        health.model_dump_json(),
        caplog.text,
        *capsys.readouterr(),
    ]
    for fragment in secret_fragments(private_key_pem):
        for output in shown:
            assert fragment not in output
    assert adapter.describe()["credentials"] == f"environment variable {ENV}"
    # What the core's masking does with it, should it reach an error message or a log line.
    leaked = f"oops {text} / {private_key_pem!r} / {KEY_ID}"
    for fragment in secret_fragments(private_key_pem):
        assert fragment not in mask(leaked)


async def test_service_account_json_from_a_file(
    authenticating: SheetsStandIn, spreadsheet: str, private_key_pem: str, tmp_path: Path
) -> None:
    path = tmp_path / "sa.json"
    path.write_text(service_account(private_key_pem, authenticating.token_url), "utf-8")
    settings = SheetsSettings(
        **standin_settings(authenticating, spreadsheet, credentials_file=str(path))
    )
    adapter = SheetsAdapter(settings)
    await adapter.open()
    try:
        assert await adapter.fetch_positions() == []
    finally:
        await adapter.close()
    assert authenticating.token_requests[0]["iss"] == EMAIL
    assert adapter.describe()["credentials"] == f"file {path}"


async def test_without_a_token_the_stand_in_refuses(
    authenticating: SheetsStandIn, spreadsheet: str
) -> None:
    adapter = SheetsAdapter(SheetsSettings(**standin_settings(authenticating, spreadsheet)))
    with pytest.raises(BackendError, match=r"the credentials were refused: Anonymous"):
        await adapter.open()
    await adapter.close()


async def test_a_token_endpoint_off_the_stand_in_is_refused_before_any_connection(
    sheets_standin: SheetsStandIn,
    spreadsheet: str,
    private_key_pem: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With api_base_url set, a token refresh towards Google is refused by the plugin itself."""
    monkeypatch.setenv(ENV, service_account(private_key_pem, "https://oauth2.googleapis.com/token"))
    adapter = SheetsAdapter(
        SheetsSettings(**standin_settings(sheets_standin, spreadsheet, credentials_env=ENV))
    )
    with pytest.raises(BackendError, match=r"refusing to contact 'oauth2\.googleapis\.com'"):
        await adapter.open()
    await adapter.close()
    assert sheets_standin.requests == []  # not even the stand-in was asked


async def test_a_missing_environment_variable_is_named(
    sheets_standin: SheetsStandIn, spreadsheet: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV, raising=False)
    adapter = SheetsAdapter(
        SheetsSettings(**standin_settings(sheets_standin, spreadsheet, credentials_env=ENV))
    )
    with pytest.raises(
        ConfigError, match=rf"credentials_env {ENV}: the environment variable {ENV} is not set"
    ):
        await adapter.open()


async def test_malformed_json_is_reported_without_quoting_it(
    sheets_standin: SheetsStandIn, spreadsheet: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    secretish = '{"type": "service_account", "private_key": "MIIEvQIBADANBgkqhkiG9w0B' + "A" * 40
    monkeypatch.setenv(ENV, secretish)  # unterminated: not JSON
    adapter = SheetsAdapter(
        SheetsSettings(**standin_settings(sheets_standin, spreadsheet, credentials_env=ENV))
    )
    with pytest.raises(ConfigError) as info:
        await adapter.open()
    message = str(info.value)
    assert message.startswith(f"credentials_env {ENV}: not valid JSON (line 1 column")
    assert "MIIE" not in message


async def test_an_unusable_key_is_reported_without_quoting_it(
    sheets_standin: SheetsStandIn, spreadsheet: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bogus = "-----BEGIN PRIVATE KEY-----\nTk9UQUtFWU5PVEFLRVlOT1RBS0VZTk9UQUtFWQ==\n-----END PRIVATE KEY-----\n"
    monkeypatch.setenv(ENV, service_account(bogus, sheets_standin.token_url))
    adapter = SheetsAdapter(
        SheetsSettings(**standin_settings(sheets_standin, spreadsheet, credentials_env=ENV))
    )
    with pytest.raises(ConfigError) as info:
        await adapter.open()
    assert "not usable credentials" in str(info.value)
    assert "Tk9UQUtFWU5PVEFLRVlOT1RBS0VZ" not in str(info.value)


def test_credentials_are_required_outside_tests() -> None:
    with pytest.raises(ValidationError, match="credentials missing: set credentials_file"):
        SheetsSettings(spreadsheet_id="abc")
    with pytest.raises(ValidationError, match="not both"):
        SheetsSettings(spreadsheet_id="abc", credentials_file="a.json", credentials_env="X")


def test_a_json_value_given_as_the_variable_name_is_not_echoed() -> None:
    pasted = '{"type": "service_account", "private_key_id": "' + KEY_ID + '"}'
    with pytest.raises(ValidationError) as info:
        SheetsSettings(spreadsheet_id="abc", credentials_env=pasted)
    assert "is the NAME of an environment variable" in str(info.value)
    assert KEY_ID not in str(info.value)
    # The core's config errors show an input only when it is not a table: here it is one.
    assert all(isinstance(e["input"], dict) for e in info.value.errors())
