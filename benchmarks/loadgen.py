"""A small open-loop HTTP/1.1 load generator for loopback benchmarks.

Requests are pre-encoded bytes sent over a fixed pool of keep-alive connections on raw asyncio
streams, on a fixed schedule (``rate`` per second, for ``duration`` seconds - bounded, never
more than ``rate * duration`` requests). A request whose slot comes while every connection is
busy waits for one (its latency counts from its scheduled time, so queueing shows). Client cost
is a fraction of a millisecond per request, so on a 2-core machine the server, not the
generator, gets the CPU.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    sent: int = 0
    ok: int = 0
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    """The status of each answered request, in the order of ``latencies``."""
    retry_after: int = 0
    """503 answers that carried ``Retry-After``."""
    elapsed: float = 0.0


def encode_post(host: str, port: int, path: str, body: dict, headers: dict[str, str]) -> bytes:
    payload = json.dumps(body, separators=(",", ":")).encode()
    head = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(payload)}",
        "Connection: keep-alive",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + payload


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("connection closed")
    status = int(status_line.split()[1])
    length = 0
    chunked = False
    retry_after = False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        lname = name.strip().lower()
        if lname == b"content-length":
            length = int(value.strip())
        elif lname == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif lname == b"retry-after":
            retry_after = True
    if chunked:
        while True:
            size = int((await reader.readline()).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status, retry_after


async def run_load(
    host: str, port: int, requests: list[bytes], rate: float, duration: float, connections: int
) -> LoadResult:
    """Send ``rate`` requests/s for ``duration`` s (cycling through ``requests``)."""
    result = LoadResult()
    pool: asyncio.Queue = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await asyncio.open_connection(host, port))

    async def exchange(reader, writer, payload: bytes) -> tuple[int, bool]:
        writer.write(payload)
        await writer.drain()
        return await _read_response(reader)

    async def one(payload: bytes, due: float) -> None:
        reader, writer = await pool.get()
        try:
            try:
                status, retry_after = await exchange(reader, writer, payload)
            except ConnectionError as exc:
                # the server closed a connection left idle past its keep-alive time-out
                # (uvicorn: 5 s; at low rates each connection idles rate/connections s)
                # before reading the request: send it again on a new connection, once, as
                # HTTP clients do. Any other failure counts as an error.
                if "connection closed" not in str(exc):
                    raise
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                status, retry_after = await exchange(reader, writer, payload)
            result.latencies.append(time.perf_counter() - due)
            result.statuses.append(status)
            result.retry_after += status == 503 and retry_after
            if status == 200:
                result.ok += 1
            else:
                result.errors.append(str(status))
        except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError) as exc:
            result.errors.append(type(exc).__name__)
            writer.close()
            reader, writer = await asyncio.open_connection(host, port)
        finally:
            pool.put_nowait((reader, writer))

    n = int(rate * duration)
    tasks = []
    start = time.perf_counter()
    for i in range(n):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(requests[i % len(requests)], due)))
        result.sent += 1
    await asyncio.gather(*tasks)
    result.elapsed = time.perf_counter() - start
    while not pool.empty():
        _, writer = pool.get_nowait()
        writer.close()
    return result
