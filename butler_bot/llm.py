"""The OpenAI-compatible chat API (llama-server, vLLM, Mistral's hosted API): streamed answers, and its limits."""

from typing import Any
from urllib.parse import urlsplit

from openai import APIConnectionError, APIError, APIStatusError, APITimeoutError, AsyncOpenAI, AsyncStream
from openai.types.chat import ChatCompletionChunk

from butler_bot.core import ModelTurn, ModelUnavailable, PromptTooLong, RequestedCall, ServerLimits, TextSink
from butler_bot.settings import BotSettings

# How llama-server and vLLM name a prompt longer than the context (llama-server: type, vLLM: message).
CONTEXT_ERRORS = ("exceed_context_size", "context length", "context size")


def failure_of(exc: APIStatusError) -> ModelUnavailable:
    detail = f"HTTP {exc.status_code}: {exc.message}"
    if exc.status_code == 503:
        # llama-server answers 503 while it loads the model.
        return ModelUnavailable("model_not_ready", detail)
    if exc.status_code == 400 and any(marker in str(exc.body).lower() for marker in CONTEXT_ERRORS):
        body = exc.body if isinstance(exc.body, dict) else {}
        error = body.get("error", body) if isinstance(body.get("error", body), dict) else {}
        counts = {key: value for key, value in error.items() if isinstance(value, int)}
        return PromptTooLong(detail, prompt_tokens=counts.get("n_prompt_tokens"), context_tokens=counts.get("n_ctx"))
    return ModelUnavailable("model_error", detail)


class StreamedTurn:
    """Chunks of a streamed chat completion put back together: text, tool calls by index, and the totals."""

    def __init__(self) -> None:
        self.content = ""
        self.calls: dict[int, dict[str, str]] = {}
        self.finish_reason: str | None = None
        self.prompt_tokens: int | None = None
        self.prompt_evaluated: int | None = None

    def add(self, chunk: ChatCompletionChunk) -> None:
        if chunk.usage is not None:
            self.prompt_tokens = chunk.usage.prompt_tokens
        timings = (chunk.model_extra or {}).get("timings")
        if isinstance(timings, dict) and isinstance(timings.get("prompt_n"), int):
            # llama-server streams no usage chunk: the prompt is what it evaluated plus what it reused.
            self.prompt_evaluated = timings["prompt_n"]
            self.prompt_tokens = self.prompt_tokens or timings["prompt_n"] + int(timings.get("cache_n") or 0)
        for choice in chunk.choices:
            self.finish_reason = choice.finish_reason or self.finish_reason
            self.content += choice.delta.content or ""
            for delta in choice.delta.tool_calls or []:
                call = self.calls.setdefault(delta.index, {"name": "", "arguments": ""})
                if delta.function is not None:
                    call["name"] += delta.function.name or ""
                    call["arguments"] += delta.function.arguments or ""

    def turn(self) -> ModelTurn:
        return ModelTurn(
            content=self.content,
            tool_calls=[RequestedCall(call["name"], call["arguments"]) for _, call in sorted(self.calls.items())],
            finish_reason=self.finish_reason,
            prompt_tokens=self.prompt_tokens,
            prompt_evaluated=self.prompt_evaluated,
        )


class LlmClient:
    def __init__(self, settings: BotSettings) -> None:
        self.model = settings.llm_model
        self.sampling: dict[str, Any] = {"max_tokens": settings.llm_max_tokens}
        if settings.llm_temperature is not None:
            self.sampling["temperature"] = settings.llm_temperature
        self.default_context = settings.llm_context_tokens
        base = urlsplit(settings.llm_base_url)
        # llama-server's own endpoints (/props) sit at the server's root, beside /v1.
        self.server_root = f"{base.scheme}://{base.netloc}"
        self.client = AsyncOpenAI(
            base_url=settings.llm_base_url,
            api_key=settings.llm_api_key.get_secret_value(),
            # Per read: a stalled stream fails; the agent bounds the whole answer.
            timeout=settings.llm_timeout,
            # One attempt: the user is waiting.
            max_retries=0,
        )

    async def close(self) -> None:
        await self.client.close()

    async def limits(self) -> ServerLimits:
        """The context per slot and whether the chat template can call tools; a server without /props can."""
        try:
            props = await self.client.get(f"{self.server_root}/props", cast_to=object)
        except APIStatusError as exc:
            if exc.status_code == 503:
                raise ModelUnavailable("model_not_ready", "the model is loading") from None
            return ServerLimits(context_tokens=self.default_context, supports_tools=True)
        except (APIConnectionError, APITimeoutError) as exc:
            raise ModelUnavailable("model_not_ready", str(exc)) from None
        props = props if isinstance(props, dict) else {}
        settings = props.get("default_generation_settings") or {}
        caps = props.get("chat_template_caps") or {}
        return ServerLimits(
            context_tokens=settings.get("n_ctx") or self.default_context,
            supports_tools=bool(caps.get("supports_tools", True)) and bool(caps.get("supports_tool_calls", True)),
        )

    async def complete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], *, final: bool, on_text: TextSink
    ) -> ModelTurn:
        """One streamed chat completion; `final` keeps the tools in context but asks for a plain answer."""
        request: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            **self.sampling,
        }
        if tools:
            request |= {"tools": tools, "tool_choice": "none" if final else "auto"}
        turn = StreamedTurn()
        try:
            # The client's plain POST: `chat.completions.create` would walk every tool schema and message
            # through its type transforms first, which was most of the bot's own time per message.
            stream = await self.client.post(
                "/chat/completions",
                body=request,
                cast_to=ChatCompletionChunk,
                stream=True,
                stream_cls=AsyncStream[ChatCompletionChunk],
            )
            async for chunk in stream:
                turn.add(chunk)
                await on_text(turn.content)
        except APITimeoutError:
            raise ModelUnavailable("model_too_slow", "the stream stalled") from None
        except APIConnectionError as exc:
            raise ModelUnavailable("model_not_ready", f"{self.client.base_url} unreachable: {exc}") from None
        except APIStatusError as exc:
            raise failure_of(exc) from None
        except APIError as exc:
            # An error event mid-stream, e.g. llama-server failing to parse the tool call the model wrote.
            raise ModelUnavailable("model_error", f"the stream failed: {exc.message}") from None
        return turn.turn()
