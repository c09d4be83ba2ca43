#!/bin/sh
# Starts llama-server on /models/$MISTRAL_MODEL_FILE. While that file is missing it says so once and waits
# (no crash loop); extra arguments are passed on to llama-server, settings come from LLAMA_ARG_* variables.
# MISTRAL_CHAT_TEMPLATE is a Jinja chat template file to use instead of the GGUF's own; empty keeps the GGUF's.
set -eu

if [ -z "${MISTRAL_MODEL_FILE:-}" ]; then
    echo "mistral: MISTRAL_MODEL_FILE is not set; set it to the GGUF file name under /models" >&2
    exit 64
fi
model="/models/${MISTRAL_MODEL_FILE}"
poll="${MISTRAL_MODEL_POLL_SECONDS:-3}"

# Before the exec, this shell is PID 1: stop at once on `docker stop` instead of waiting for SIGKILL.
trap 'exit 143' TERM
trap 'exit 130' INT

size_of() {
    stat -c %s "$1" 2>/dev/null || echo missing
}

if [ ! -f "$model" ]; then
    echo "mistral: model file $model is missing; run 'make model' to download it" >&2
    while [ ! -f "$model" ]; do
        sleep "$poll" & wait $!
    done
    # A file being copied in (docker cp) grows: start only once its size holds still for one poll.
    previous=""
    current="$(size_of "$model")"
    while [ "$current" != "$previous" ]; do
        sleep "$poll" & wait $!
        previous="$current"
        current="$(size_of "$model")"
    done
    echo "mistral: model file $model is here; starting llama-server" >&2
fi

if [ -n "${MISTRAL_CHAT_TEMPLATE:-}" ]; then
    set -- --chat-template-file "$MISTRAL_CHAT_TEMPLATE" "$@"
fi
exec llama-server --model "$model" --jinja "$@"
