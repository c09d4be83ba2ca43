"""One user message in, one answer out: history, the system prompt, the agent run, and the turn kept."""

import asyncio
import logging
import time
import weakref
from dataclasses import dataclass

from cachetools import TTLCache

from butler_bot.agent import AgentReply, AgentRun
from butler_bot.budget import TokenBudget
from butler_bot.core import ModelUnavailable, Progress, ServerLimits, ToolsUnavailable
from butler_bot.llm import LlmClient
from butler_bot.prompt import SystemPrompt, stamped
from butler_bot.settings import BotSettings
from butler_bot.store import BotStore
from butler_bot.texts import Texts
from butler_bot.tools import McpTools

log = logging.getLogger(__name__)

# How long a user's timezone is trusted before it is asked again (it changes only through a tool call).
TIMEZONE_TTL = 600.0
# How long the model server's limits are trusted: a restarted server may load another model or template.
LIMITS_TTL = 300.0


@dataclass
class Answer:
    text: str
    # Markdown-ish model output, rendered for Telegram; the bot's own texts are sent as they are.
    from_model: bool


class Conversations:
    def __init__(
        self, settings: BotSettings, store: BotStore, prompt: SystemPrompt, model: LlmClient, tools: McpTools
    ) -> None:
        self.settings = settings
        self.store = store
        self.prompt = prompt
        self.model = model
        self.tools = tools
        self.budget = TokenBudget(
            context_tokens=settings.llm_context_tokens,
            reserve_chars=settings.tool_result_max_chars,
            answer_tokens=settings.llm_max_tokens,
        )
        self._chat_locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()
        self._timezones: TTLCache[int, str] = TTLCache(maxsize=10_000, ttl=TIMEZONE_TTL)
        self._limits: TTLCache[str, ServerLimits] = TTLCache(maxsize=1, ttl=LIMITS_TTL)
        self._told_no_tools: set[int] = set()

    async def close(self) -> None:
        await asyncio.gather(self.model.close(), self.tools.close())

    async def timezone(self, user_id: int) -> str | None:
        if user_id in self._timezones:
            return self._timezones[user_id]
        try:
            result = await self.tools.call(user_id, "time_now", {})
        except ToolsUnavailable:
            return None
        zone = (result.data or {}).get("timezone") if not result.is_error else None
        if isinstance(zone, str):
            self._timezones[user_id] = zone
        return zone

    async def limits(self) -> ServerLimits:
        """The model server's limits, asked once it is up and again after a while."""
        if "server" not in self._limits:
            limits = await self.model.limits()
            self.budget.context_tokens = limits.context_tokens or self.settings.llm_context_tokens
            if not limits.supports_tools:
                log.warning(
                    "the model's chat template cannot call tools: answering without tools "
                    "(set MISTRAL_CHAT_TEMPLATE to a tool-aware template, see README)"
                )
            self._limits["server"] = limits
        return self._limits["server"]

    async def reply(self, chat_id: int, user_id: int, text: str, texts: Texts, progress: Progress) -> Answer:
        # One run per chat at a time, so turns are kept in the order the user wrote them.
        lock = self._chat_locks.setdefault(chat_id, asyncio.Lock())
        async with lock:
            return await self._reply(chat_id, user_id, text, texts, progress)

    async def _reply(self, chat_id: int, user_id: int, text: str, texts: Texts, progress: Progress) -> Answer:
        started = time.perf_counter()
        timezone = await self.timezone(user_id)
        user_text = stamped(text, timezone=timezone)
        try:
            limits = await self.limits()
            system_prompt = self.prompt.render(timezone=timezone, language=texts.language)
            reply = await self._run(chat_id, user_id, system_prompt, user_text, progress, limits)
        except ModelUnavailable as exc:
            log.warning("chat %s: no answer from the model (%s)", chat_id, exc)
            return Answer(texts(exc.reason), from_model=False)
        if "time_set_timezone" in reply.tools_called:
            self._timezones.pop(user_id, None)
        notices = []
        if not limits.supports_tools and chat_id not in self._told_no_tools:
            self._told_no_tools.add(chat_id)
            notices.append(texts("tools_unsupported_notice"))
        if reply.tools_unavailable:
            notices.append(texts("tools_down_notice"))
        if reply.exhausted:
            answer = Answer(texts("steps_exhausted", steps=reply.steps), from_model=False)
        elif reply.text:
            # Only the model's own words go into the history, never the bot's fixed texts.
            turn = [{"role": "user", "content": user_text}, {"role": "assistant", "content": reply.said}]
            if not self.store.add_turn(chat_id, turn):
                notices.append(texts("not_saved"))
            cut = f"\n\n{texts('answer_cut')}" if reply.truncated else ""
            answer = Answer(reply.text + cut, from_model=True)
        else:
            answer = Answer(texts("empty_reply"), from_model=False)
        log.info(
            "chat %s: answered in %.0f ms, %s step(s), tools %s, prompt %s tokens, %s evaluated anew",
            chat_id,
            (time.perf_counter() - started) * 1000,
            reply.steps,
            reply.tools_called or "none",
            reply.prompt_tokens,
            reply.prompt_evaluated,
        )
        return Answer("\n\n".join([*notices, answer.text]), from_model=answer.from_model)

    async def _run(
        self, chat_id: int, user_id: int, system_prompt: str, user_text: str, progress: Progress, limits: ServerLimits
    ) -> AgentReply:
        """The agent run after the history that fits; the turns that no longer fit are forgotten."""
        turns = self.store.turns(chat_id)
        run = AgentRun(
            self.model,
            self.tools.for_user(user_id),
            progress,
            self.budget,
            max_steps=self.settings.agent_max_steps,
            timeout=self.settings.llm_timeout,
            result_max_chars=self.settings.tool_result_max_chars,
            tools_supported=limits.supports_tools,
        )
        reply = await run.answer(system_prompt, turns, user_text)
        # The turns left out are forgotten in one block, so the next prompts start alike; but not on a guess.
        if reply.kept_turns < len(turns) and self.budget.calibrated:
            self.store.keep_newest_turns(chat_id, reply.kept_turns)
        return reply
