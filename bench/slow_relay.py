"""An SMTP relay 50 ms away, on 127.0.0.1: every reply leaves 50 ms after the
command (or the message's end of data) it answers arrived, as if the relay
were across a network with a 50 ms round trip. It accepts and discards.
Pipelined commands that arrive together are answered together, 50 ms
later, as a real relay across that network would answer them.

    with SlowRelay(delay=0.05) as relay:
        ... send to 127.0.0.1:relay.port ...
        relay.accepted()      # messages accepted so far

Run alone: ``python -m bench.slow_relay PORT DELAY`` (prints ``ready PORT``).
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
from pathlib import Path

EHLO = b"250-relay.example\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 0\r\n"


class _Session(asyncio.Protocol):
    count = 0  # messages accepted, by every session

    def __init__(self, delay: float):
        self.delay = delay
        self.buffer = b""
        self.scanned = 0
        self.in_data = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.reply(b"220 relay.example ESMTP\r\n")

    def reply(self, data: bytes, close: bool = False) -> None:
        asyncio.get_running_loop().call_later(self.delay, self._send, data, close)

    def _send(self, data: bytes, close: bool) -> None:
        if not self.transport.is_closing():
            self.transport.write(data)
            if close:
                self.transport.close()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.buffer:
            if self.in_data:
                end = self.buffer.find(b"\r\n.\r\n", max(0, self.scanned - 4))
                if end < 0:
                    self.scanned = len(self.buffer)
                    return
                self.buffer, self.scanned, self.in_data = self.buffer[end + 5 :], 0, False
                _Session.count += 1
                self.reply(b"250 2.0.0 Ok: queued\r\n")
                continue
            end = self.buffer.find(b"\r\n")
            if end < 0:
                return
            command, self.buffer = self.buffer[:4].upper(), self.buffer[end + 2 :]
            if command == b"EHLO":
                self.reply(EHLO)
            elif command == b"DATA":
                self.in_data = True
                self.reply(b"354 End data with <CR><LF>.<CR><LF>\r\n")
            elif command == b"QUIT":
                self.reply(b"221 Bye\r\n", close=True)
            else:  # HELO, MAIL, RCPT, RSET, NOOP
                self.reply(b"250 Ok\r\n")


async def _serve(port: int, delay: float, count_file: Path | None) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Session(delay), "127.0.0.1", port, backlog=1024)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print(f"ready {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        while not stop.is_set():
            if count_file is not None:
                count_file.write_text(str(_Session.count))
            try:
                await asyncio.wait_for(stop.wait(), 0.2)
            except asyncio.TimeoutError:
                pass
    if count_file is not None:
        count_file.write_text(str(_Session.count))


class SlowRelay:
    """The relay in a process of its own (it must not share our GIL), on a free port."""

    def __init__(self, delay: float = 0.05, *, folder: Path):
        self.delay = delay
        self.count_file = folder / "relay-count"
        self.process: subprocess.Popen | None = None
        self.port = 0

    def __enter__(self) -> SlowRelay:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.slow_relay", str(port), str(self.delay), str(self.count_file)],
            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent,
        )
        ready = self.process.stdout.readline().split()
        if not ready or ready[0] != "ready":
            raise RuntimeError("the slow relay did not start")
        self.port = int(ready[1])
        return self

    def accepted(self) -> int:
        try:
            return int(self.count_file.read_text() or 0)
        except (OSError, ValueError):
            return 0

    def __exit__(self, *exc_info: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)


if __name__ == "__main__":
    asyncio.run(_serve(int(sys.argv[1]), float(sys.argv[2]), Path(sys.argv[3]) if len(sys.argv) > 3 else None))
