"""The OpenAI-compatible chat client, and the one sentence the user sees when the model cannot answer."""

import logging

from openai import APIConnectionError, APIStatusError, APITimeoutError, AsyncOpenAI

from butler_bot.settings import BotSettings

log = logging.getLogger(__name__)

MODEL_NOT_READY = (
    "The language model is not ready yet: it is still starting, or its file is missing (run `make model`). "
    "Try again in a minute."
)
MODEL_TOO_SLOW = "The language model did not answer in time. Please try again."


class ModelNotReady(Exception):
    """The LLM server is unreachable or still loading its weights."""


def make_llm_client(settings: BotSettings) -> AsyncOpenAI:
    return AsyncOpenAI(
        base_url=settings.llm_base_url,
        api_key=settings.llm_api_key.get_secret_value(),
        timeout=settings.llm_timeout,
        max_retries=0,
    )


async def ask(llm: AsyncOpenAI, model: str, text: str) -> str:
    try:
        completion = await llm.chat.completions.create(model=model, messages=[{"role": "user", "content": text}])
    except APITimeoutError:
        raise ModelNotReady(MODEL_TOO_SLOW) from None
    except APIConnectionError as exc:
        log.warning("LLM unreachable: %s", exc)
        raise ModelNotReady(MODEL_NOT_READY) from None
    except APIStatusError as exc:
        # llama-server answers 503 while it loads the model.
        if exc.status_code == 503:
            raise ModelNotReady(MODEL_NOT_READY) from None
        raise
    return completion.choices[0].message.content or ""
