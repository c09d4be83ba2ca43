"""The shared settings base: production refuses placeholder secrets, and errors are one line, not a traceback."""

from pathlib import Path
from typing import ClassVar

import pytest

from mcp_server.settings import McpServerSettings
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


def test_a_typo_in_the_yaml_file_stops_the_start_with_the_closest_name(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "mcp_server.yaml"
    config.write_text("default_timezon: UTC\nlimits:\n  max_titel_length: 80\n  list_max: 50\n")

    class TypoSettings(McpServerSettings):
        yaml_file: ClassVar[str] = str(config)

    monkeypatch.setenv("MCP_AUTH_TOKEN", "dev-only-mcp-token")
    monkeypatch.setenv("BUTLER_ENV", "development")
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'butler.db'}")
    with pytest.raises(SystemExit) as stopped:
        load_settings(TypoSettings, "mcp-server")
    lines = capsys.readouterr().err.strip().splitlines()
    assert stopped.value.code == 2, stopped.value
    assert sorted(lines) == [
        "mcp-server: invalid configuration: mcp_server.yaml: unknown setting 'default_timezon' "
        "(did you mean 'default_timezone'?)",
        "mcp-server: invalid configuration: mcp_server.yaml: unknown setting 'limits.max_titel_length' "
        "(did you mean 'limits.max_title_length'?)",
    ], lines
