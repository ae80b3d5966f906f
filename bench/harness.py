"""Shared by bench/roundtrips.py, throughput.py and scale.py: the gateway as a child process on the embedded
engine, the Telegram and Twilio emulators it talks to, customers that write to it, and /proc readings.

Nothing to run on its own (`make bench` runs it too, and it only says so).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the emulators live in tests/, not installed

from gateway.config import WebWidgetSettings
from tests.emulators.telegram import TelegramEmulator
from tests.emulators.twilio import TwilioEmulator

ROOT = Path(__file__).resolve().parent.parent

CUSTOMER_BOT = "7000002:customer-bot-token"
OPERATOR_BOT = "7000001:operator-bot-token"
CUSTOMER_SECRET = "customer-webhook-secret"
OPERATOR_SECRET = "operator-webhook-secret"
ACCOUNT_SID = "AC" + "5f0e" * 8
AUTH_TOKEN = "bench-twilio-auth-token"
SENDER = "whatsapp:+14155238886"
WIDGET_SECRET = "bench-widget-secret-0123456789"
WIDGET_ORIGIN = "https://shop.example"
API_TOKEN = "bench-api-token-0123456789"
FIRST_OPERATOR = 1001
FIRST_CUSTOMER = 500_000  # Telegram user ids of customers; operators are below
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Telegram opens at most this many connections to a webhook at once (its default max_connections); Twilio is
# held to the same, so every channel is offered the same concurrency.
WEBHOOK_CONNECTIONS = 40


def reproduce(script: str, args: Sequence[str] = ()) -> str:
    """The command that reruns a benchmark, for its last line."""
    return " ".join([".venv/bin/python", f"bench/{script}", *args])


def revision() -> str:
    """The commit measured, with a mark when the work tree differs from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True)  # fmt: skip
    except OSError:
        return "unknown revision"
    if head.returncode != 0:
        return "unknown revision"
    return head.stdout.strip() + (" + uncommitted changes" if dirty.stdout.strip() else "")


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (NaN for no values)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


# -- /proc ---------------------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    """A process's children (the gateway's: its embedded engine, when that runs in a process of its own)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found.extend(int(child) for child in (task / "children").read_text().split())
    return found


def cpu_seconds(pid: int) -> float:
    """User plus system CPU of a process (every thread, the embedded engine's included when it is a thread)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def memory_mb(pid: int) -> tuple[float, float]:
    """(RSS, peak RSS) of a process in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss = re.search(r"VmRSS:\s+(\d+)", status)
    peak = re.search(r"VmHWM:\s+(\d+)", status)
    return (int(rss[1]) / 1024 if rss else float("nan"), int(peak[1]) / 1024 if peak else float("nan"))


def own_cpu_seconds() -> float:
    """CPU of this process: the emulators and the customers."""
    return time.process_time()


def machine_busy_seconds() -> float:
    """CPU time every process on the machine has used (all cores, from /proc/stat)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


class Others:
    """How busy the rest of the machine was over a stretch of time (the machine is shared: this is the noise)."""

    def __init__(self, *pids: int) -> None:
        self.pids = pids
        self.started = (time.perf_counter(), machine_busy_seconds(), self._ours())

    def _ours(self) -> float:
        return own_cpu_seconds() + sum(cpu_seconds(pid) for pid in self.pids)

    def cores(self) -> float:
        """Cores other processes kept busy, on average, since this was made."""
        at, busy, ours = self.started
        elapsed = time.perf_counter() - at
        return max(0.0, (machine_busy_seconds() - busy) - (self._ours() - ours)) / elapsed if elapsed > 0 else 0.0


# -- the emulators ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BotCall:
    """One Bot API call the emulator answered."""

    token: str
    method: str
    status: int
    result: Any
    at: float


class Telegram(TelegramEmulator):
    """The Telegram emulator, telling `watchers` about every Bot API call as soon as it has answered it."""

    def __init__(self) -> None:
        super().__init__()
        self.watchers: list[Callable[[BotCall], None]] = []

    async def _execute(self, token: str, name: str, *args: Any, **kwargs: Any) -> tuple[int, Any]:
        status, body = await super()._execute(token, name, *args, **kwargs)
        call = BotCall(token, name, status, body.get("result") if isinstance(body, dict) else None, time.perf_counter())
        for watcher in self.watchers:
            watcher(call)
        return status, body


def setup_telegram(tg: TelegramEmulator, operators: int, customers: Iterable[int]) -> None:
    """Both bots, the operators and the customers."""
    tg.add_bot(CUSTOMER_BOT, "shop_support_bot", first_name="Shop support")
    tg.add_bot(OPERATOR_BOT, "desk_bot", first_name="Support desk")
    for n in range(operators):
        tg.user(FIRST_OPERATOR + n, f"Operator{n}", username=f"op{n}")
    for uid in customers:
        tg.user(uid, f"Customer{uid - FIRST_CUSTOMER}", username=f"customer{uid}")


def twilio_emulator() -> TwilioEmulator:
    """Twilio's Messages API, posting each message's status callbacks (sent, delivered, read) as Twilio does."""
    return TwilioEmulator(ACCOUNT_SID, AUTH_TOKEN, whatsapp_number=SENDER)


class Relayed:
    """Waits for the operator bot to show customer messages, by the marker each message's text carries."""

    MARKER = re.compile(r"\bm(\d+)x\b")

    def __init__(self, tg: Telegram) -> None:
        self.seen: dict[int, tuple[float, int, int]] = {}  # marker -> (when, operator chat, message id)
        self.replies: dict[int, float] = {}  # customer chat -> when the customer bot last sent there
        self._waiters: dict[int, asyncio.Future[None]] = {}
        self._reply_waiters: dict[int, asyncio.Future[None]] = {}
        tg.watchers.append(self._watch)

    def _watch(self, call: BotCall) -> None:
        if call.method != "sendMessage" or call.status != 200 or not isinstance(call.result, dict):
            return
        chat = call.result.get("chat", {}).get("id")
        if call.token == CUSTOMER_BOT:
            self.replies[chat] = call.at
            if (waiter := self._reply_waiters.pop(chat, None)) and not waiter.done():
                waiter.set_result(None)
            return
        for found in self.MARKER.finditer(call.result.get("text") or ""):
            marker = int(found[1])
            self.seen.setdefault(marker, (call.at, chat, call.result["message_id"]))
            if (waiter := self._waiters.pop(marker, None)) and not waiter.done():
                waiter.set_result(None)

    async def shown(self, marker: int) -> tuple[float, int, int]:
        """When and where (operator chat, message id) the operator bot showed the message with this marker."""
        if marker not in self.seen:
            waiter = self._waiters.setdefault(marker, asyncio.get_running_loop().create_future())
            async with asyncio.timeout(60):
                await asyncio.shield(waiter)
        return self.seen[marker]

    def expect_reply(self, chat: int) -> asyncio.Future[None]:
        """A future set when the customer bot next sends a message into this customer's chat."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._reply_waiters[chat] = waiter
        return waiter


def text(marker: int) -> str:
    """A customer message that can be recognised wherever it is shown."""
    return f"m{marker}x: hello, I have a question about my order"


# -- the gateway in a child process ----------------------------------------------------------------


def widget_limits() -> str:
    """Every widget limit as high as its setting allows: the benchmark's visitors all come from one address."""
    lines = []
    for name, info in WebWidgetSettings.model_fields.items():
        if "per_minute" in name or name.startswith(("sockets_per", "visitors_per")):
            ceilings = [m.le for m in info.metadata if getattr(m, "le", None) is not None]
            lines.append(f"{name} = {min([1_000_000, *ceilings])}")
    return "\n".join(lines)


@dataclass
class Config:
    """What a benchmark configures; the rest is as a small production install would have it."""

    workdir: Path
    data_dir: Path
    telegram_api: str
    twilio_api: str | None = None
    mode: str = "webhook"  # both the customer bot and the operator bot
    operators: int = 10
    max_chats: int = 200
    port: int = field(default_factory=free_port)
    storage_uri: str = "embedded"  # or a shared engine's mongodb:// URI, for several processes
    engine: str = "process"  # where an embedded engine runs: "process" or "thread"
    name: str = "gateway"  # of its config and log files in the work directory

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write(self) -> Path:
        operators = "\n".join(
            f'[[operators]]\ntelegram_id = {FIRST_OPERATOR + n}\nname = "Operator{n}"\nusername = "op{n}"\n'
            f"max_chats = {self.max_chats}\n"
            for n in range(self.operators)
        )
        whatsapp = (
            f'[whatsapp]\naccount_sid = "{ACCOUNT_SID}"\nauth_token = "{AUTH_TOKEN}"\nsender = "{SENDER}"\n'
            f'api_base = "{self.twilio_api}"\n'
            if self.twilio_api
            else ""
        )
        config = f"""
[server]
host = "127.0.0.1"
port = {self.port}
public_url = "{self.base}"
secret = "bench-server-secret-0123456789"

[storage]
uri = "{self.storage_uri}"
engine = "{self.engine}"
database = "gateway"
data_dir = "{self.data_dir}"

[telegram]
api_base = "{self.telegram_api}"
mode = "{self.mode}"

[[telegram.bots]]
name = "support"
token = "{CUSTOMER_BOT}"
webhook_secret = "{CUSTOMER_SECRET}"

[operator_bot]
token = "{OPERATOR_BOT}"
webhook_secret = "{OPERATOR_SECRET}"
mode = "{self.mode}"

{whatsapp}
[webwidget]
allowed_origins = ["{WIDGET_ORIGIN}"]
secret = "{WIDGET_SECRET}"
{widget_limits()}

[api]
tokens = ["{API_TOKEN}"]

[routing]
max_chats_per_operator = {self.max_chats}

{operators}
"""
        path = self.workdir / f"{self.name}.toml"
        path.write_text(config, encoding="utf-8")
        return path


class Gateway:
    """`python -m gateway run --config FILE` in a child process, its log in the work directory."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.base = config.base
        self.log = config.workdir / f"{config.name}.log"
        self.process: asyncio.subprocess.Process | None = None
        self.ready_seconds = float("nan")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self, session: aiohttp.ClientSession) -> None:
        """Start it and wait for /readyz; ready_seconds is the time from spawn to the first 200."""
        path = self.config.write()
        env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
        began = time.perf_counter()
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway", "run", "--config", str(path), cwd=ROOT, env=env,
                stdout=out, stderr=out,
            )  # fmt: skip
        for _ in range(1200):
            if self.process.returncode is not None:
                tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-15:])
                raise RuntimeError(f"the gateway exited with {self.process.returncode}:\n{tail}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(self.base + "/readyz") as response:
                    if response.status == 200:
                        self.ready_seconds = time.perf_counter() - began
                        return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"the gateway was not ready within a minute; see {self.log}")

    async def stop(self) -> None:
        """SIGTERM (it writes its snapshot and closes), SIGKILL after 60 s."""
        if self.process is None or self.process.returncode is not None:
            return
        self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), 60)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()

    def pids(self) -> list[int]:
        """Its process and its engine's, when that runs in a process of its own."""
        return [self.pid, *children(self.pid)]

    def cpu(self) -> float:
        """CPU seconds of the gateway and its engine."""
        return sum(cpu_seconds(pid) for pid in self.pids())

    def memory(self) -> tuple[float, float]:
        """(RSS, peak RSS) in MB of the gateway and its engine together."""
        readings = [memory_mb(pid) for pid in self.pids()]
        return sum(r[0] for r in readings), sum(r[1] for r in readings)

    def engine_uri(self) -> str | None:
        """Where the embedded engine inside the gateway listens (from its start-up log line)."""
        found = re.findall(r"embedded MongoDB engine on (mongodb://\S+?),? ", self.log.read_text(errors="replace"))
        return found[-1] if found else None

    def slow(self) -> list[str]:
        """The embedded engine's warnings of commands and commits that held everyone up."""
        lines = self.log.read_text(errors="replace").splitlines()
        return [line.split("WARNING ", 1)[-1] for line in lines if "slow command:" in line or "slow commit:" in line]

    def errors(self) -> list[str]:
        """Tracebacks and errors in its log."""
        return [line for line in self.log.read_text(errors="replace").splitlines() if " ERROR " in line
                or line.startswith("Traceback")]  # fmt: skip


async def import_seconds(modules: str = "gateway.app, operators.setup, channels.registry") -> float:
    """How long a bare `python` takes to import these (by default what the gateway imports: a floor under
    time-to-ready)."""
    began = time.perf_counter()
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", f"import {modules}", cwd=ROOT)
    await process.wait()
    return time.perf_counter() - began


# -- operators and customers -------------------------------------------------------------------------


class Desk:
    """Sends what the operators and customers do to the gateway, as Telegram and Twilio would."""

    def __init__(self, tg: Telegram, gateway: Gateway, twilio: TwilioEmulator | None = None) -> None:
        self.tg = tg
        self.gateway = gateway
        self.twilio = twilio
        self.polling = gateway.config.mode == "polling"
        self._slots = asyncio.Semaphore(WEBHOOK_CONNECTIONS)

    async def _deliver(self, token: str, update: dict[str, Any]) -> None:
        if self.polling:  # queued for the gateway's getUpdates
            await self.tg.deliver(token, update)
            return
        async with self._slots:
            status = await self.tg.deliver(token, update)
        if status != 200:
            raise RuntimeError(f"the gateway answered a webhook with {status}")

    async def operators_online(self, count: int) -> None:
        for n in range(count):
            await self._deliver(OPERATOR_BOT, self.tg.text_update(OPERATOR_BOT, FIRST_OPERATOR + n, "/online"))

    async def telegram(self, customer: int, marker: int) -> None:
        """A Telegram customer writes; returns when the webhook was answered (or the update queued)."""
        await self._deliver(CUSTOMER_BOT, self.tg.text_update(CUSTOMER_BOT, customer, text(marker)))

    async def whatsapp(self, customer: int, marker: int) -> None:
        """A WhatsApp customer (+1 415 2xx xxxx) writes; returns when Twilio's webhook was answered."""
        assert self.twilio is not None
        number = f"+1415{2_000_000 + customer % 8_000_000:07d}"
        params = self.twilio.inbound_text(number, text(marker), profile_name=f"Customer{customer}")
        async with self._slots:
            status, _ = await self.twilio.post_inbound(self.gateway.base + "/channels/whatsapp/inbound", params)
        if status != 200:
            raise RuntimeError(f"the gateway answered Twilio's webhook with {status}")

    async def operator_reply(self, operator: int, reply_to: int, words: str = "Thanks, looking into it") -> None:
        """The operator answers a shown message with a Telegram reply."""
        await self._deliver(OPERATOR_BOT, self.tg.text_update(OPERATOR_BOT, operator, words, reply_to=reply_to))


async def gather_limited(jobs: Iterable[Callable[[], Awaitable[Any]]], limit: int) -> list[Any]:
    """Run the jobs at most `limit` at a time, in order of start."""
    queue = list(jobs)
    results: list[Any] = [None] * len(queue)
    cursor = iter(range(len(queue)))

    async def lane() -> None:
        for i in cursor:
            results[i] = await queue[i]()

    await asyncio.gather(*(lane() for _ in range(min(limit, len(queue)) or 1)))
    return results


if __name__ == "__main__":
    print("bench/harness.py: helpers for roundtrips.py, throughput.py and scale.py; nothing to measure on its own")
