# Butler Agent: every developer command. `make` alone lists them.

# `docker compose` (v2) when the plugin exists, else `docker-compose` (v1); override with COMPOSE=...
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
PROD_FILES := -f docker-compose.butler.yml
DEV_FILES := -f docker-compose.butler.yml -f docker-compose.butler.dev.yml
VENV ?= .venv
PYTEST_ARGS ?=
# e.g. BENCH_ARGS="--max-tokens 128 --skip dev-loop" (python -m bench --help)
BENCH_ARGS ?=

# BuildKit for cache mounts, with Compose v1 too.
export DOCKER_BUILDKIT := 1
export COMPOSE_DOCKER_CLI_BUILD := 1

# Read .env as compose does, so the defaults below only fill what it leaves empty.
-include .env

EMULATOR_BOT_TOKEN := 123456:dev-only-emulator-token
EMULATOR_URL = http://127.0.0.1:$(or $(TELEGRAM_EMULATOR_PORT),8081)
CHAT_USER_ID ?= 1
CHAT_WAIT ?= 60
# Prints the bot's new messages to CHAT_USER_ID, each with its [buttons] (make press); fails when there are none.
READ_INBOX = curl -fsS $(EMULATOR_URL)/getUpdates -H 'Content-Type: application/json' \
  -d '{"token": "$(EMULATOR_BOT_TOKEN)", "chat_id": $(CHAT_USER_ID)}' \
  | python3 -c 'import json, sys; r = json.load(sys.stdin)["result"]; [print("butler:", u["message"]["text"] + "".join("\n  [" + " | ".join(b["text"] for b in row) + "]" for row in u["message"].get("reply_markup", {}).get("inline_keyboard", []))) for u in r]; sys.exit(0 if r else 1)'
# Prints the drafts the bot showed CHAT_USER_ID since SINCE (epoch ms): the answer as it was being written.
READ_DRAFTS = curl -fsS $(EMULATOR_URL)/getDrafts -H 'Content-Type: application/json' \
  -d '{"token": "$(EMULATOR_BOT_TOKEN)", "chat_id": $(CHAT_USER_ID)}' \
  | python3 -c 'import json, sys; [print("butler (writing):", d["text"] or "…") for d in json.load(sys.stdin)["result"] if d["time"] >= int(sys.argv[1])]'

# A model elsewhere (vLLM, a hosted API) needs no local one: no GGUF download and no mistral service then.
LOCAL_MODEL := $(if $(LLM_BASE_URL),$(findstring //mistral:,$(LLM_BASE_URL)),yes)
APP_SERVICES := $(if $(LOCAL_MODEL),,mcp-server butler-bot)

# The dev stack needs no .env: safe local stand-ins for what production requires (production refuses them).
# Exported rather than written on the command line, so make never prints a secret.
DEV_TARGETS := dev dev-mcp dev-bot build rebuild config-check model model-or-warn down logs ps pair backup restore
$(DEV_TARGETS): export MCP_AUTH_TOKEN := $(or $(MCP_AUTH_TOKEN),dev-only-mcp-token)
ifeq ($(strip $(TELEGRAM_BOT_TOKEN)),)
EMULATOR := telegram-emulator
EMULATOR_PROFILE := --profile emulator
$(DEV_TARGETS): export TELEGRAM_BOT_TOKEN := $(EMULATOR_BOT_TOKEN)
$(DEV_TARGETS): export TELEGRAM_API_URL := http://telegram-emulator:8081
# The emulator's user is the owner, unless .env names others.
$(DEV_TARGETS): export ALLOWED_USER_IDS := $(or $(ALLOWED_USER_IDS),$(CHAT_USER_ID))
endif
DEV := $(COMPOSE) $(DEV_FILES) $(EMULATOR_PROFILE)
PROD := $(COMPOSE) $(PROD_FILES)
# The running stack, production or dev, with the files it was started with (its containers' compose labels).
RUNNING_FILES = $(shell docker ps -a --filter label=com.docker.compose.project.working_dir=$(CURDIR) \
  --format '{{.Label "com.docker.compose.project.config_files"}}' 2>/dev/null | head -n 1 | tr , ' ')
RUNNING = $(COMPOSE) $(addprefix -f ,$(or $(RUNNING_FILES),docker-compose.butler.yml)) --profile emulator

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

.PHONY: dev
dev: build $(if $(LOCAL_MODEL),model-or-warn) ## Run all three services with hot reload, attached (Ctrl+C stops)
	@$(if $(EMULATOR),echo "No TELEGRAM_BOT_TOKEN: the bot talks to the local emulator. Say hi: make chat MSG=/start")
	@$(if $(LOCAL_MODEL),,echo "LLM_BASE_URL points elsewhere: no local model, mistral stays off.")
	$(DEV) up $(if $(APP_SERVICES),$(APP_SERVICES) $(EMULATOR))

.PHONY: dev-mcp
dev-mcp: ## Run only mcp-server with hot reload, attached
	$(DEV) up --build mcp-server

.PHONY: dev-bot
dev-bot: ## Run butler-bot (and the mcp-server it needs) with hot reload, attached
	$(DEV) up --build butler-bot $(EMULATOR)

.PHONY: chat
chat: ## Message the bot through the emulator and print its replies: make chat MSG="remind me in 5 minutes to stretch"
	@test -n "$$MSG" || { echo 'usage: make chat MSG="your message"'; exit 2; }
	@since=$$(python3 -c 'import time; print(int(time.time() * 1000))'); \
	  python3 -c 'import json, os; print(json.dumps({"token": "$(EMULATOR_BOT_TOKEN)", "user_id": $(CHAT_USER_ID), "text": os.environ["MSG"]}))' \
	  | curl -fsS $(EMULATOR_URL)/sendMessage -H 'Content-Type: application/json' -d @- >/dev/null; \
	  for _ in $$(seq $(CHAT_WAIT)); do sleep 1; \
	    if replies=$$($(READ_INBOX)); then $(READ_DRAFTS) "$$since"; echo "$$replies"; exit 0; fi; done; \
	  echo "no reply within $(CHAT_WAIT) s (see: make logs)"; exit 1

.PHONY: inbox
inbox: ## Print the bot's new messages in the emulator (reminders land here); WATCH=1 keeps waiting
	@$(READ_INBOX) || echo "(no new messages)"
	@while [ -n "$(WATCH)" ]; do sleep 2; $(READ_INBOX) || true; done

.PHONY: press
press: ## Press a button the bot sent (make chat and make inbox show them) and print its answer: make press BUTTON="+10 min"
	@test -n "$$BUTTON" || { echo 'usage: make press BUTTON="+10 min" [MSG_ID=<message id>; else the newest message with it]'; exit 2; }
	@id=$$(python3 -c 'import json, os; print(json.dumps({"token": "$(EMULATOR_BOT_TOKEN)", "user_id": $(CHAT_USER_ID), "text": os.environ["BUTTON"], **({"message_id": os.environ["MSG_ID"]} if os.environ.get("MSG_ID") else {})}))' \
	  | curl -sS $(EMULATOR_URL)/sendCallback -H 'Content-Type: application/json' -d @- \
	  | python3 -c 'import json, sys; r = json.load(sys.stdin); print(r["result"]["callback_query_id"]) if r.get("ok") else sys.exit(r.get("description"))') || exit 1; \
	  for _ in $$(seq $(CHAT_WAIT)); do sleep 1; \
	    if curl -fsS $(EMULATOR_URL)/getCallbackAnswers -H 'Content-Type: application/json' -d '{"token": "$(EMULATOR_BOT_TOKEN)", "chat_id": $(CHAT_USER_ID)}' \
	      | python3 -c 'import json, sys; a = [q["answer"] for q in json.load(sys.stdin)["result"] if q["callback_query_id"] == sys.argv[1] and q["answer"]]; a and print("butler:", a[0]["text"]); sys.exit(0 if a else 1)' "$$id"; \
	    then $(READ_INBOX) 2>/dev/null; exit 0; fi; done; \
	  echo "no answer within $(CHAT_WAIT) s (see: make logs)"; exit 1

.PHONY: up
up: ## Run the production stack in the background (needs .env)
	$(PROD) config -q
	@# The services' own settings check, so a placeholder secret stops here and not in a restart loop.
	$(PROD) run --rm --no-deps mcp-server python -c "import mcp_server.settings as s, shared.settings as b; b.load_settings(s.McpServerSettings, 'mcp-server')"
	@$(if $(LOCAL_MODEL),$(MAKE) --no-print-directory model-or-warn,echo "LLM_BASE_URL points elsewhere: no local model, mistral stays off.")
	$(PROD) up -d --build $(APP_SERVICES)

.PHONY: down
down: ## Stop and remove the containers of the running stack, production or dev (data and model volumes stay)
	$(RUNNING) down --remove-orphans

.PHONY: logs
logs: ## Follow the logs of every service
	$(RUNNING) logs -f

.PHONY: ps
ps: ## Show the services and their health
	$(RUNNING) ps

.PHONY: pair
pair: ## Show the one-time code that makes you the bot's owner (with ALLOWED_USER_IDS empty): send it as /pair CODE
	$(RUNNING) exec -T butler-bot python -m butler_bot.pairing || { echo "Is the bot running? (make ps)"; exit 1; }

.PHONY: backup
backup: ## Snapshot the running stack's data (MCP database, bot store) into backups/butler-<UTC time>.tar.gz
	@mkdir -p backups
	@# umask 077: the archive holds everyone's tasks and chats; a failed step leaves no partial archive behind.
	@umask 077; name=backups/butler-$$(date -u +%Y%m%dT%H%M%SZ).tar.gz; \
	  $(RUNNING) exec -T butler-bot python -m butler_bot.backup snapshot > "$$name.bot-store" \
	  && $(RUNNING) exec -T mcp-server python -m mcp_server.backup create < "$$name.bot-store" > "$$name.partial" \
	  && mv "$$name.partial" "$$name"; status=$$?; rm -f "$$name.bot-store" "$$name.partial"; \
	  if [ $$status -eq 0 ]; then echo "backup written: $$name"; else echo "no backup written (is the stack running? make ps)"; fi; \
	  exit $$status

.PHONY: restore
restore: ## Put a backup back (mcp-server and butler-bot stop meanwhile): make restore FILE=backups/butler-….tar.gz
	@test -f "$(FILE)" || { echo "usage: make restore FILE=backups/butler-<UTC time>.tar.gz"; exit 2; }
	@# Checked before anything stops: a truncated or altered archive changes nothing.
	$(RUNNING) run --rm --no-deps -T mcp-server python -m mcp_server.backup verify < "$(FILE)"
	$(RUNNING) stop butler-bot mcp-server
	$(RUNNING) run --rm --no-deps -T mcp-server python -m mcp_server.backup restore < "$(FILE)"
	$(RUNNING) run --rm --no-deps -T butler-bot python -m butler_bot.backup restore < "$(FILE)"
	@# The MCP server's migrations bring a backup from an older release forward as it starts.
	$(RUNNING) start mcp-server butler-bot

.PHONY: build
build: ## Build every image (cached layers make it seconds when nothing changed)
	$(DEV) build $(if $(APP_SERVICES),$(APP_SERVICES) $(EMULATOR))

.PHONY: rebuild
rebuild: ## Rebuild the mcp-server and butler-bot images after a dependency change
	$(DEV) build mcp-server butler-bot

.PHONY: config-check
config-check: ## Validate the production file alone and the merged dev pair
	$(PROD) config -q
	$(DEV) config -q
	@echo "compose files are valid"

.PHONY: model
model: ## Download the Mistral GGUF into the models volume, unless it is there
	$(PROD) build mistral
	$(PROD) --profile model run --rm model-download

.PHONY: model-or-warn
model-or-warn:
	@$(MAKE) --no-print-directory model || echo "Model download failed (offline?): the stack starts without it; run 'make model' later."

$(VENV)/.synced: pyproject.toml uv.lock
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet "uv==0.13.9"
	$(VENV)/bin/uv sync --locked --quiet
	touch $@

.PHONY: lint
lint: $(VENV)/.synced ## Check style with ruff and the one-way import graph with import-linter
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

.PHONY: test
test: $(VENV)/.synced ## Run every test, the Docker end-to-end ones included
	$(VENV)/bin/pytest $(PYTEST_ARGS)

.PHONY: bench
bench: $(VENV)/.synced ## Run the benchmarks (real model, MCP tools, bot, dev loop): one table, also in bench/RESULTS.md
	$(VENV)/bin/python -m bench $(BENCH_ARGS)
