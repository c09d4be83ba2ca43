"""The OpenAI-compatible chat API (llama-server, vLLM, Mistral's hosted API), and why it could not answer."""

import asyncio
import logging
from typing import Any, Literal

from openai import APIConnectionError, APIStatusError, APITimeoutError, AsyncOpenAI
from openai.types.chat import ChatCompletion, ChatCompletionMessage

from butler_bot.settings import BotSettings

log = logging.getLogger(__name__)

Failure = Literal["model_not_ready", "model_too_slow", "model_error"]


class ModelUnavailable(Exception):
    """The model gave no usable answer; `reason` names the text the user gets."""

    def __init__(self, reason: Failure, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason: Failure = reason


class ChatModel:
    def __init__(self, settings: BotSettings) -> None:
        self.model = settings.llm_model
        self.timeout = settings.llm_timeout
        self.temperature = settings.llm_temperature
        self.client = AsyncOpenAI(
            base_url=settings.llm_base_url,
            api_key=settings.llm_api_key.get_secret_value(),
            timeout=settings.llm_timeout,
            # One attempt: the user is waiting, and LLM_TIMEOUT bounds the whole wait.
            max_retries=0,
        )

    async def close(self) -> None:
        await self.client.close()

    async def complete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], *, final: bool = False
    ) -> ChatCompletionMessage:
        """One chat completion; `final` keeps the tools in context but asks for a plain answer."""
        request: dict[str, Any] = {"model": self.model, "messages": messages}
        if tools:
            request |= {"tools": tools, "tool_choice": "none" if final else "auto"}
        if self.temperature is not None:
            request["temperature"] = self.temperature
        try:
            # httpx's timeout is per read; this bounds the whole answer, trickled or not.
            async with asyncio.timeout(self.timeout):
                # The client's plain POST: `chat.completions.create` would walk every tool schema and message
                # through its type transforms first, which was most of the bot's own time per message.
                completion = await self.client.post("/chat/completions", body=request, cast_to=ChatCompletion)
        except (APITimeoutError, TimeoutError):
            raise ModelUnavailable("model_too_slow", f"no answer within {self.timeout:g} s") from None
        except APIConnectionError as exc:
            log.warning("LLM at %s unreachable: %s", self.client.base_url, exc)
            raise ModelUnavailable("model_not_ready", str(exc)) from None
        except APIStatusError as exc:
            # llama-server answers 503 while it loads the model.
            reason: Failure = "model_not_ready" if exc.status_code == 503 else "model_error"
            log.warning("LLM answered %s: %s", exc.status_code, exc.message)
            raise ModelUnavailable(reason, f"HTTP {exc.status_code}") from None
        if not completion.choices:
            raise ModelUnavailable("model_error", "no choices in the answer")
        return completion.choices[0].message
