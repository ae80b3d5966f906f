"""Helpers for tests that run the engine (or clients) in child processes."""

from __future__ import annotations

import asyncio
import random
import re
import socket
import sys
from pathlib import Path
from typing import BinaryIO

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port nobody listens on right now, for a child process to listen on."""
    # Below Linux's ephemeral range (32768+): the port the kernel would pick for "port 0" may be handed to an
    # outgoing connection before the child binds it; a port from this range is only ever taken by a listener.
    while True:
        port = random.randrange(20_000, 32_000)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


def _listening(log_path: Path) -> list[str]:
    if not log_path.exists():
        return []
    return re.findall(r"listening on (mongodb://\S+)", log_path.read_text(errors="replace"))


def _open_log(log_path: Path) -> BinaryIO:
    return log_path.open("ab")


async def start_engine(
    data_dir: Path, log_path: Path, *args: str, port: int = 0
) -> tuple[asyncio.subprocess.Process, str]:
    """`python -m embedded_mongo` in a child process; returns it and its URI once it listens."""
    earlier = len(_listening(log_path))
    command = [sys.executable, "-m", "embedded_mongo", "--port", str(port), "--data-dir", str(data_dir), *args]
    with _open_log(log_path) as log:  # the child keeps its own descriptor
        process = await asyncio.create_subprocess_exec(
            *command, stdout=log, stderr=asyncio.subprocess.STDOUT, cwd=str(REPO_ROOT)
        )
    for _ in range(1200):
        found = _listening(log_path)
        if len(found) > earlier:
            return process, found[-1]
        if process.returncode is not None:
            break
        await asyncio.sleep(0.05)
    process.kill()
    await process.wait()
    raise AssertionError(f"engine did not start:\n{_log_text(log_path)}")


def _log_text(log_path: Path) -> str:
    return log_path.read_text(errors="replace")


async def stop(process: asyncio.subprocess.Process) -> None:
    """Terminate a child process (if still running) and reap it."""
    if process.returncode is None:
        process.terminate()
    await process.wait()


async def run_python(code: str, *args: str, timeout: float = 60) -> tuple[int, str]:
    """Run a Python snippet in a child process; returns (exit code, combined output)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=str(REPO_ROOT),
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")
