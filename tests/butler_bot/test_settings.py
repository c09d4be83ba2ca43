"""ALLOWED_USER_IDS as people write it in .env."""

from collections.abc import Callable

import pytest

from butler_bot.settings import BotSettings


@pytest.mark.parametrize(
    ("raw", "ids"), [("", ()), ("123", (123,)), ("123, 456", (123, 456)), ("1 2", (1, 2)), ("[7, 8]", (7, 8))]
)
def test_allowed_user_ids_from_the_environment(monkeypatch: pytest.MonkeyPatch, raw: str, ids: tuple[int, ...]) -> None:
    monkeypatch.setenv("ALLOWED_USER_IDS", raw)
    settings = BotSettings(telegram_bot_token="1:x", mcp_auth_token="t" * 20, butler_env="development")
    assert settings.allowed_user_ids == ids


def test_mcp_base_url_is_derived_from_mcp_url(make_settings: Callable[..., BotSettings]) -> None:
    assert make_settings(mcp_url="http://mcp-server:8000/mcp").mcp_base_url == "http://mcp-server:8000"


def test_a_malformed_id_list_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOWED_USER_IDS", "123, @ada")
    with pytest.raises(ValueError, match="ALLOWED_USER_IDS must be numeric Telegram ids"):
        BotSettings(telegram_bot_token="1:x", mcp_auth_token="t" * 20, butler_env="development")
