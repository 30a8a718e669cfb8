"""What a settings field's type says: secret (its input never quoted), string (env text kept)."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, SecretStr

from qts_data.config.fields import env_text_for, hides_input, is_secret_type, is_string_type
from qts_data.config.loader import load_raw_config


class Inner(BaseModel):
    token: SecretStr
    name: str


class Model(BaseModel):
    password: SecretStr | None = None
    passwords: list[SecretStr] = []
    user: str | None = None
    mode: Literal["a", "b"] = "a"
    port: int = 1
    names: list[str] = []  # a parametrised generic: Python 3.10 calls it a type
    inner: Inner | None = None


@pytest.mark.parametrize(
    ("field", "secret", "string"),
    [
        ("password", True, True),
        ("passwords", True, False),
        ("user", False, True),
        ("mode", False, True),
        ("port", False, False),
        ("names", False, False),
    ],
)
def test_field_types(field: str, secret: bool, string: bool) -> None:
    annotation = Model.model_fields[field].annotation
    assert is_secret_type(annotation) is secret
    assert is_string_type(annotation) is string
    assert hides_input(Model, (field,)) is secret


def test_nested_secrets_hide_their_input() -> None:
    assert hides_input(Model, ("inner", "token")) is True
    assert hides_input(Model, ("inner", "name")) is False
    assert hides_input(Model, ()) is False
    assert hides_input(Model, ("absent",)) is False


def test_an_environment_override_of_a_string_setting_keeps_its_text() -> None:
    raw = load_raw_config(
        {"adapters": {"db": {"type": "x"}}},
        {
            "QTS_DATA__ADAPTERS__DB__USER": "12",
            "QTS_DATA__ADAPTERS__DB__PASSWORD": "12345678",
            "QTS_DATA__ADAPTERS__DB__PORT": "5432",
        },
    )
    body = raw.data["adapters"]["db"]
    assert (body["user"], body["password"], body["port"]) == (12, 12345678, 5432)  # TOML's reading
    values = env_text_for(Model, "adapters.db", body, raw)
    assert (values["user"], values["password"], values["port"]) == ("12", "12345678", 5432)
    assert Model.model_validate({k: v for k, v in values.items() if k != "type"}).user == "12"
