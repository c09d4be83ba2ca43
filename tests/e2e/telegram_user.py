"""A Telegram user, played through the emulator's client side: send the bot a message, read its replies and the
drafts it showed while it wrote them, press the buttons under them."""

import time
from dataclasses import dataclass
from typing import Any

import httpx

from tests.e2e.stack import EMULATOR_TOKEN, Stack


@dataclass
class TelegramUser:
    emulator_url: str
    bot_token: str
    user_id: int

    def _post(self, path: str, payload: dict[str, Any]) -> Any:
        response = httpx.post(f"{self.emulator_url}{path}", json={"token": self.bot_token, **payload}, timeout=10)
        body = response.json()
        assert response.status_code == 200 and body.get("ok"), f"expected {path} to succeed, saw {body!r}"
        return body["result"]

    def send(self, text: str) -> None:
        self._post("/sendMessage", {"user_id": self.user_id, "text": text})

    def new_replies(self) -> list[str]:
        return [reply["message"]["text"] for reply in self._post("/getUpdates", {"chat_id": self.user_id})]

    def new_messages(self) -> list[dict[str, Any]]:
        """The bot's new messages as Telegram shows them now: message_id, text, reply_markup with the buttons."""
        return [self.message(stored["messageId"]) for stored in self._post("/getUpdates", {"chat_id": self.user_id})]

    def message(self, message_id: int) -> dict[str, Any]:
        return self._post("/getMessage", {"chat_id": self.user_id, "message_id": message_id})

    def press(self, button: str, message_id: int, timeout: float = 30) -> str:
        """Press the button labelled `button` under the message; the bot's answer to the press."""
        pressed = self._post("/sendCallback", {"user_id": self.user_id, "message_id": message_id, "text": button})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for query in self._post("/getCallbackAnswers", {"chat_id": self.user_id}):
                if query["callback_query_id"] == pressed["callback_query_id"] and query["answer"] is not None:
                    return query["answer"]["text"]
            time.sleep(0.2)
        raise AssertionError(f"expected an answer to the press on {button!r} within {timeout:.0f} s; saw none")

    def drafts(self) -> list[str]:
        """The texts of every draft the bot showed in this chat, oldest first (reading does not consume them)."""
        return [draft["text"] for draft in self._post("/getDrafts", {"chat_id": self.user_id})]

    def ask(self, text: str, timeout: float = 60) -> list[str]:
        """Send a message and return the bot's replies, waiting up to `timeout` for the first one."""
        self.new_replies()  # drop anything older than this question
        self.send(text)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if replies := self.new_replies():
                return replies
            time.sleep(0.2)
        raise AssertionError(f"expected a reply to {text!r} within {timeout:.0f} s; saw none")


def chat_user(stack: Stack, user_id: int) -> TelegramUser:
    """`user_id` writing to the stack's bot through its emulator."""
    return TelegramUser(f"http://127.0.0.1:{stack.emulator_port}", EMULATOR_TOKEN, user_id=user_id)
