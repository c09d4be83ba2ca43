"""No secret reaches an image: a .env and a key planted in the tree stay out of the build contexts and the layers.

The images are built from a copy of the repo holding the planted files, under a tag of their own. Every file that
`docker save` writes (each layer and the image config) is searched for the planted marker, and `docker history`
for the marker and for anything shaped like a token.
"""

import io
import os
import re
import secrets
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.e2e.stack import COMPOSE_FLAVOURS, MCP_TOKEN, Stack, compose_available, copy_worktree

pytestmark = pytest.mark.e2e

MARKER = "planted-secret-" + secrets.token_hex(12)
ENV_FILE = f"""TELEGRAM_BOT_TOKEN=987654321:{MARKER}
MCP_AUTH_TOKEN={MARKER}
LLM_API_KEY={MARKER}
"""
KEY_FILE = f"-----BEGIN OPENSSH PRIVATE KEY-----\n{MARKER}\n-----END OPENSSH PRIVATE KEY-----\n"
# Where a developer's secrets end up: .env at the top and beside the code, a key next to the config.
PLANTED = {
    ".env": ENV_FILE,
    ".env.production": ENV_FILE,
    "config/.env": ENV_FILE,
    "butler_bot/.env": ENV_FILE,
    "mcp_server/.env": ENV_FILE,
    "shared/.env": ENV_FILE,
    "mistral/.env": ENV_FILE,
    "telegram_emulator/.env": ENV_FILE,
    "config/id_ed25519": KEY_FILE,
    "config/tls.key": KEY_FILE,
    "config/tls.pem": KEY_FILE,
}
PLANTED_NAMES = re.compile(r"(^|/)(\.env(\.\w+)?|id_ed25519|tls\.key|tls\.pem)$")
# The compose build contexts: the repo for the three services, telegram_emulator/ for the emulator.
CONTEXTS = (".", "telegram_emulator")
BUILT = ("mcp-server", "butler-bot", "mistral", "telegram-emulator")
TOKEN_LIKE = {
    "a Telegram bot token": re.compile(r"\b\d{6,12}:[A-Za-z0-9_-]{30,}"),
    "a private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "a secret-named variable with a value": re.compile(
        r"(?i)\b\w*(token|secret|passw(or)?d|api_?key|private_?key)\w*=\S+"
    ),
    "a long hex string": re.compile(r"\b[0-9a-fA-F]{32,}\b"),
}


@dataclass
class TaggedStack(Stack):
    """The stack's images under a tag of their own, so the shared :latest images are left alone."""

    tag: str = field(default_factory=lambda: "secrets-" + secrets.token_hex(4))

    @property
    def env(self) -> dict[str, str]:
        return {**super().env, "BUTLER_IMAGE_TAG": self.tag}

    def image(self, service: str) -> str:
        return f"butler-agent/{service}:{self.tag}"


@pytest.fixture(scope="module")
def planted_build(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TaggedStack]:
    """The images, and a probe of each build context, built from a tree that holds the planted secrets."""
    command = COMPOSE_FLAVOURS["compose-v2"]
    assert compose_available(command), f"expected `{' '.join(command)}` to be installed (see .ci/run)"
    built = TaggedStack(workdir=copy_worktree(tmp_path_factory.mktemp("secrets")), compose=command)
    for relative, text in PLANTED.items():
        (built.workdir / relative).write_text(text)
    try:
        built.run("build", *BUILT, timeout=1800)
        for context in CONTEXTS:
            probe_context(built.workdir / context, context_probe(built, context))
        yield built
    finally:
        images = [built.image(service) for service in BUILT] + [context_probe(built, c) for c in CONTEXTS]
        subprocess.run(["docker", "rmi", *images], capture_output=True, check=False)


def context_probe(built: TaggedStack, context: str) -> str:
    return f"butler-agent/context-probe:{built.tag}-{'root' if context == '.' else context}"


def probe_context(directory: Path, tag: str) -> None:
    """An image holding exactly what the daemon receives as this build context (after its .dockerignore)."""
    subprocess.run(
        ["docker", "build", "--quiet", "--tag", tag, "--file", "-", str(directory)],
        input=b"FROM scratch\nCOPY . /context/\n",
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
        capture_output=True,
        check=True,
    )


def leaks(image: str, needles: list[str]) -> list[str]:
    """Where `docker save` of the image holds a needle, or a file with a planted file's name."""
    found = []
    wanted = [needle.encode() for needle in needles]
    save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
    assert save.stdout is not None
    with tarfile.open(fileobj=save.stdout, mode="r|") as archive:
        for member in archive:
            extracted = archive.extractfile(member) if member.isfile() else None
            if extracted is None:
                continue
            data = extracted.read()
            # A tar keeps each file's bytes in one piece, so a plain search of a layer also searches its files.
            found += [f"{member.name} holds {needle!r}" for needle in wanted if needle in data]
            if data[257:262] == b"ustar":
                with tarfile.open(fileobj=io.BytesIO(data)) as layer:
                    found += [f"{member.name} has {name}" for name in layer.getnames() if PLANTED_NAMES.search(name)]
    assert save.wait() == 0, f"expected `docker save {image}` to succeed; exit {save.returncode}"
    return found


def history_lines(image: str) -> list[str]:
    return subprocess.run(
        ["docker", "history", "--no-trunc", "--format", "{{.CreatedBy}}", image],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()


@pytest.mark.parametrize("context", CONTEXTS)
def test_a_build_context_holds_no_planted_secret(planted_build: TaggedStack, context: str) -> None:
    found = leaks(context_probe(planted_build, context), [MARKER])
    assert found == [], f"expected .dockerignore to keep .env and keys out of the {context!r} context; saw {found}"


@pytest.mark.parametrize("service", BUILT)
def test_no_image_layer_holds_a_planted_secret(planted_build: TaggedStack, service: str) -> None:
    found = leaks(planted_build.image(service), [MARKER, MCP_TOKEN])
    assert found == [], f"expected no secret in any layer or the config of {service}; saw {found}"


@pytest.mark.parametrize("service", BUILT)
def test_no_image_history_line_looks_like_a_secret(planted_build: TaggedStack, service: str) -> None:
    lines = history_lines(planted_build.image(service))
    assert lines, f"expected docker history of {service} to list its layers"
    found = [(what, line) for line in lines for what, shape in TOKEN_LIKE.items() if shape.search(line)]
    found += [("the planted marker", line) for line in lines if MARKER in line]
    assert found == [], f"expected no token-like text in docker history of {service}; saw {found}"
