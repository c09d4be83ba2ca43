"""The shared settings base: production refuses placeholder secrets, and errors are one line, not a traceback."""

from typing import ClassVar

import pytest

from shared.settings import ServiceSettings, load_settings


class ExampleSettings(ServiceSettings):
    yaml_file: ClassVar[str] = "does-not-exist.yaml"


@pytest.mark.parametrize("token", ["", "change-me", "dev-only-mcp-token", "short"])
def test_production_refuses_placeholder_tokens(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], token: str
) -> None:
    monkeypatch.setenv("MCP_AUTH_TOKEN", token)
    monkeypatch.setenv("BUTLER_ENV", "production")
    with pytest.raises(SystemExit) as stopped:
        load_settings(ExampleSettings, "example")
    lines = capsys.readouterr().err.strip().splitlines()
    assert stopped.value.code == 2
    assert len(lines) == 1 and "MCP_AUTH_TOKEN" in lines[0] and "openssl rand" in lines[0], lines


def test_development_accepts_the_dev_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_AUTH_TOKEN", "dev-only-mcp-token")
    monkeypatch.setenv("BUTLER_ENV", "development")
    assert load_settings(ExampleSettings, "example").mcp_auth_token.get_secret_value() == "dev-only-mcp-token"


def test_missing_required_variable_is_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("MCP_AUTH_TOKEN", raising=False)
    with pytest.raises(SystemExit):
        load_settings(ExampleSettings, "example")
    assert capsys.readouterr().err.strip() == "example: invalid configuration: MCP_AUTH_TOKEN: Field required"
