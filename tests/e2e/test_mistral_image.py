"""The mistral image on its own: llama-server serves a tiny model from /models, or waits quietly for it.

Builds nothing: it runs the `butler-agent/mistral:latest` image the Makefile builds, with `docker run`,
publishing llama-server's port on 127.0.0.1 only (an ephemeral port).
"""

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.real_model import container_logs, docker, wait_healthy
from tests.e2e.tiny_gguf import CHAT_TEMPLATE, REPLY_TOKEN, write_tiny_gguf

pytestmark = pytest.mark.e2e

IMAGE = "butler-agent/mistral:latest"
ALIAS = "butler-tiny"
SHIPPED_TEMPLATE = Path(__file__).resolve().parents[2] / "mistral" / "templates" / "mistral-v3-tools.jinja"

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def is_running(container: str) -> bool:
    return docker("inspect", "--format", "{{.State.Running}}", container, check=False).stdout.strip() == "true"


def restart_count(container: str) -> int:
    return int(docker("inspect", "--format", "{{.RestartCount}}", container).stdout.strip())


@pytest.fixture(scope="module")
def image() -> str:
    found = docker("image", "inspect", "--format", "{{.Id}}", IMAGE, check=False)
    assert found.returncode == 0, (
        f"expected the image {IMAGE} to exist; build it first (make build, or "
        f"docker build -f Dockerfile.mistral -t {IMAGE} .); docker said: {found.stderr.strip()}"
    )
    return IMAGE


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "models"
    directory.mkdir()
    # The container runs as uid 10001: it must be able to enter the directory (pytest makes it 0700).
    directory.chmod(0o755)
    return directory


@pytest.fixture
def start_mistral(image: str) -> Iterator[Callable[..., str]]:
    """Start the image on a models directory and model file name; every container is removed afterwards."""
    started: list[str] = []

    def start(models: Path, model_file: str, *env: str) -> str:
        result = docker(
            "run",
            "--detach",
            "--publish",
            "127.0.0.1::8080",
            "--volume",
            f"{models}:/models:ro",
            "--env",
            f"MISTRAL_MODEL_FILE={model_file}",
            "--env",
            f"LLAMA_ARG_ALIAS={ALIAS}",
            "--env",
            "LLAMA_ARG_CTX_SIZE=512",
            "--env",
            "LLAMA_ARG_THREADS=2",
            "--env",
            "LLAMA_ARG_N_PARALLEL=1",
            *(option for variable in env for option in ("--env", variable)),
            image,
        )
        container = result.stdout.strip()
        started.append(container)
        return container

    yield start
    for container in started:
        docker("rm", "--force", "--volumes", container, check=False)


def base_url(container: str) -> str:
    # `docker port` prints e.g. "127.0.0.1:49153" for the published container port.
    address = docker("port", container, "8080/tcp").stdout.splitlines()[0].strip()
    return f"http://{address}"


def test_serves_the_model_with_chat_and_tools(start_mistral: Callable[..., str], models_dir: Path) -> None:
    write_tiny_gguf(models_dir / "tiny.gguf")
    container = start_mistral(models_dir, "tiny.gguf")
    url = base_url(container)
    wait_healthy(container, url)

    models = httpx.get(f"{url}/v1/models", timeout=10)
    assert models.status_code == 200, f"expected GET /v1/models to answer 200; got {models.status_code}: {models.text}"
    ids = [model["id"] for model in models.json()["data"]]
    assert ALIAS in ids, f"expected /v1/models to list {ALIAS!r}; it lists {ids}"

    chat = httpx.post(
        f"{url}/v1/chat/completions",
        json={
            "model": ALIAS,
            "messages": [
                {"role": "system", "content": "You are a butler."},
                {"role": "user", "content": "What is the weather in Paris? Ünïcödé too."},
            ],
            "tools": [WEATHER_TOOL],
            "max_tokens": 8,
            "temperature": 0,
        },
        timeout=60,
    )
    assert chat.status_code == 200, (
        f"expected POST /v1/chat/completions to answer 200; got {chat.status_code}: {chat.text}"
    )
    message = chat.json()["choices"][0]["message"]
    assert message["role"] == "assistant", f"expected an assistant message; got {message}"
    assert REPLY_TOKEN in (message.get("content") or ""), (
        f"expected the tiny model's {REPLY_TOKEN!r} reply; got {message}"
    )

    # A whole tool round trip (assistant tool call, then the tool's result) must render too.
    follow_up = httpx.post(
        f"{url}/v1/chat/completions",
        json={
            "model": ALIAS,
            "messages": [
                {"role": "user", "content": "What is the weather in Paris?"},
                {
                    "role": "assistant",
                    "content": None,
                    # The shipped Mistral template takes call ids of 9 alphanumeric characters.
                    "tool_calls": [
                        {
                            "id": "call00001",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call00001", "content": "Sunny, 21 C"},
            ],
            "tools": [WEATHER_TOOL],
            "max_tokens": 8,
        },
        timeout=60,
    )
    assert follow_up.status_code == 200, (
        f"expected a chat with a tool result to answer 200; got {follow_up.status_code}: {follow_up.text}"
    )
    assert follow_up.json()["choices"][0]["message"]["role"] == "assistant", (
        f"expected an assistant message after the tool result; got {follow_up.json()}"
    )


def test_ships_the_tool_template_and_can_use_the_ggufs_own(start_mistral: Callable[..., str], models_dir: Path) -> None:
    write_tiny_gguf(models_dir / "tiny.gguf")
    shipped = start_mistral(models_dir, "tiny.gguf")
    own = start_mistral(models_dir, "tiny.gguf", "MISTRAL_CHAT_TEMPLATE=")
    for container, expected, which in (
        (shipped, SHIPPED_TEMPLATE.read_text(), "shipped"),
        (own, CHAT_TEMPLATE, "GGUF's"),
    ):
        url = base_url(container)
        wait_healthy(container, url)
        served = httpx.get(f"{url}/props", timeout=10).json()["chat_template"]
        assert served.strip() == expected.strip(), f"expected the {which} chat template; /props serves:\n{served}"


def test_missing_model_waits_with_one_message(start_mistral: Callable[..., str], models_dir: Path) -> None:
    missing = "not-downloaded-yet.gguf"
    container = start_mistral(models_dir, missing)
    time.sleep(8)

    assert is_running(container), (
        f"expected the container to wait for the model; it exited. Logs:\n{container_logs(container)}"
    )
    assert restart_count(container) == 0, f"expected no restart; saw {restart_count(container)}"
    lines = [line for line in container_logs(container).splitlines() if line.strip()]
    naming = [line for line in lines if f"/models/{missing}" in line and "make model" in line]
    assert len(naming) == 1, f"expected exactly one line naming /models/{missing} and 'make model'; saw {lines}"
    assert len(lines) == 1, f"expected that line alone in the log (no repeats, no llama-server start); saw {lines}"


def test_starts_once_the_model_appears(start_mistral: Callable[..., str], models_dir: Path) -> None:
    container = start_mistral(models_dir, "late.gguf")
    time.sleep(2)
    write_tiny_gguf(models_dir / "late.gguf")
    wait_healthy(container, base_url(container))
    restarts = restart_count(container)
    assert restarts == 0, f"expected llama-server to start in the waiting container; saw {restarts} restarts"
