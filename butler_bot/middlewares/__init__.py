"""Update middlewares: who may use the bot, then the per-request context (language, texts)."""
