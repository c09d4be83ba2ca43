"""One user message in, one answer out: history, the system prompt, the agent run, and the turn kept."""

import asyncio
import logging
import time
import weakref
from dataclasses import dataclass

from butler_bot.agent import AgentRun
from butler_bot.backends import ToolsUnavailable
from butler_bot.llm import ChatModel, ModelUnavailable
from butler_bot.prompt import SystemPrompt
from butler_bot.settings import BotSettings
from butler_bot.store import BotStore
from butler_bot.texts import Texts
from butler_bot.tools import McpTools

log = logging.getLogger(__name__)

# How long a user's timezone is trusted before it is asked again (it changes only through a tool call).
TIMEZONE_TTL = 600.0


@dataclass
class Answer:
    text: str
    # Markdown-ish model output, rendered for Telegram; the bot's own texts are sent as they are.
    from_model: bool


class Conversations:
    def __init__(
        self, settings: BotSettings, store: BotStore, prompt: SystemPrompt, model: ChatModel, tools: McpTools
    ) -> None:
        self.settings = settings
        self.store = store
        self.prompt = prompt
        self.model = model
        self.tools = tools
        self._chat_locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()
        self._timezones: dict[int, tuple[str, float]] = {}

    async def close(self) -> None:
        await asyncio.gather(self.model.close(), self.tools.close())

    async def timezone(self, user_id: int) -> str | None:
        cached = self._timezones.get(user_id)
        if cached and time.monotonic() - cached[1] < TIMEZONE_TTL:
            return cached[0]
        try:
            result = await self.tools.call(user_id, "time_now", {})
        except ToolsUnavailable:
            return None
        zone = (result.data or {}).get("timezone") if not result.is_error else None
        if isinstance(zone, str):
            self._timezones[user_id] = (zone, time.monotonic())
        return zone

    async def reply(self, chat_id: int, user_id: int, text: str, texts: Texts) -> Answer:
        # One run per chat at a time, so turns are kept in the order the user wrote them.
        lock = self._chat_locks.setdefault(chat_id, asyncio.Lock())
        async with lock:
            return await self._reply(chat_id, user_id, text, texts)

    async def _reply(self, chat_id: int, user_id: int, text: str, texts: Texts) -> Answer:
        started = time.perf_counter()
        system_prompt = self.prompt.render(timezone=await self.timezone(user_id), language=texts.language)
        run = AgentRun(
            self.model,
            self.tools.for_user(user_id),
            max_steps=self.settings.agent_max_steps,
            result_max_chars=self.settings.tool_result_max_chars,
        )
        try:
            reply = await run.answer(system_prompt, self.store.history(chat_id), text)
        except ModelUnavailable as exc:
            log.warning("chat %s: no answer from the model (%s)", chat_id, exc)
            return Answer(texts(exc.reason), from_model=False)
        if "time_set_timezone" in reply.tools_called:
            self._timezones.pop(user_id, None)
        if reply.exhausted:
            answer = Answer(texts("steps_exhausted", steps=reply.steps), from_model=False)
        elif reply.text:
            answer = Answer(reply.text, from_model=True)
        else:
            answer = Answer(texts("empty_reply"), from_model=False)
        if reply.tools_unavailable:
            answer = Answer(f"{texts('tools_down_notice')}\n\n{answer.text}", from_model=answer.from_model)
        self.store.add_turn(chat_id, [{"role": "user", "content": text}, {"role": "assistant", "content": answer.text}])
        log.info(
            "chat %s: answered in %.0f ms, %s step(s), tools %s",
            chat_id,
            (time.perf_counter() - started) * 1000,
            reply.steps,
            reply.tools_called or "none",
        )
        return answer
