"""The test's side of the LLM stand-in: set its script, read the requests the bot made."""

from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class LlmStandIn:
    url: str

    def script(self, *rules: dict[str, Any], default: dict[str, Any] | None = None, **server: Any) -> None:
        """Replace the script; `server` sets n_ctx, tools_template or loading (see server.py)."""
        body: dict[str, Any] = {"rules": list(rules), **server}
        if default:
            body["default"] = default
        httpx.post(f"{self.url}/control/script", json=body, timeout=5).raise_for_status()

    def reset(self) -> None:
        httpx.post(f"{self.url}/control/reset", timeout=5).raise_for_status()

    def log(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self.url}/control/log", timeout=5).json()

    def requests_mentioning(self, text: str) -> list[dict[str, Any]]:
        """Logged requests whose messages contain `text` anywhere."""
        return [entry for entry in self.log() if any(text in str(m.get("content")) for m in entry["messages"])]
