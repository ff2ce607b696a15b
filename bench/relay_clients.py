"""The SMTP client alone against the relay 50 ms away: the same message, no
store and no composing, sent over ``connections`` sessions by

- ``threads``: ``SmtpTransport`` (smtplib, pipelined), a thread per
  connection, as ``deliver_issue`` runs it;
- ``asyncio``: a minimal pipelined client on asyncio streams, every
  connection a task of one event loop (what an asyncio transport would cost
  at the least: no retries, no error handling);
- ``aiosmtplib``: ``aiosmtplib.SMTP.sendmail`` on one event loop, when
  installed (``pip install -e '.[bench]'``).

Each gives messages per second and the client's CPU per message (the
relay's own CPU is beside it, measured in its process).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from publisher.mail.mime import SmtpData, dot_stuffed

SENDER = "news@example.org"


@dataclass
class ClientRun:
    client: str
    connections: int
    messages: int
    seconds: float
    cpu: float  # the client process's user + system seconds
    relay_cpu: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    @property
    def cpu_per_message_us(self) -> float:
        return self.cpu / self.messages * 1e6


def _threads(port: int, connections: int, per: int, message: bytes) -> None:
    from publisher.config import SmtpSettings
    from publisher.mail.transports import SmtpTransport

    settings = SmtpSettings(
        host="127.0.0.1", port=port, security="none", username=None, password=None, password_env="UNUSED",
        connections=connections, rate=0.0, timeout=30.0, verify_certificates=False, messages_per_connection=0,
    )
    transport = SmtpTransport(settings)
    wire = dot_stuffed(message)  # as deliver_issue composes it for SMTP

    def work() -> None:
        connection = transport.connect()
        try:
            for n in range(per):
                connection.send(SENDER, f"reader{n}@example.net", wire)
        finally:
            connection.close()

    workers = [threading.Thread(target=work) for _ in range(connections)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


async def _reply(reader: asyncio.StreamReader) -> int:
    while True:
        line = await reader.readline()
        if line[3:4] != b"-":
            return int(line[:3])


async def _stream_session(port: int, per: int, wire: SmtpData) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await _reply(reader)
    writer.write(b"EHLO bench.example\r\n")
    await _reply(reader)
    for n in range(per):
        writer.write(f"MAIL FROM:<{SENDER}> SIZE={len(wire) - 3}\r\nRCPT TO:<reader{n}@example.net>\r\nDATA\r\n".encode())
        replies = [await _reply(reader) for _ in range(3)]
        if replies != [250, 250, 354]:
            raise RuntimeError(f"the relay answered {replies}")
        writer.write(wire)
        if await _reply(reader) != 250:
            raise RuntimeError("the relay refused a message")
    writer.write(b"QUIT\r\n")
    await _reply(reader)
    writer.close()


async def _aiosmtplib_session(port: int, per: int, message: bytes) -> None:
    import aiosmtplib

    session = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, use_tls=False, start_tls=False)
    await session.connect()
    for n in range(per):
        await session.sendmail(SENDER, [f"reader{n}@example.net"], message)
    await session.quit()


def _asyncio(port: int, connections: int, per: int, message: bytes) -> None:
    async def main() -> None:
        wire = dot_stuffed(message)
        await asyncio.gather(*(_stream_session(port, per, wire) for _ in range(connections)))

    asyncio.run(main())


def _aiosmtplib(port: int, connections: int, per: int, message: bytes) -> None:
    async def main() -> None:
        await asyncio.gather(*(_aiosmtplib_session(port, per, message) for _ in range(connections)))

    asyncio.run(main())


CLIENTS: dict[str, Callable[[int, int, int, bytes], None]] = {
    "threads": _threads,
    "asyncio": _asyncio,
    "aiosmtplib": _aiosmtplib,
}


def available() -> list[str]:
    if importlib.util.find_spec("aiosmtplib") is None:
        return ["threads", "asyncio"]
    return list(CLIENTS)


def measure(client: str, port: int, relay_pid: int, connections: int, per: int, message: bytes) -> ClientRun:
    relay_before, before, started = process_cpu(relay_pid), os.times(), time.monotonic()
    CLIENTS[client](port, connections, per, message)
    seconds, after, relay_after = time.monotonic() - started, os.times(), process_cpu(relay_pid)
    cpu = (after.user - before.user) + (after.system - before.system)
    return ClientRun(client, connections, connections * per, seconds, cpu, relay_after - relay_before)


def process_cpu(pid: int) -> float:
    """User + system seconds of process ``pid`` so far (Linux)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
