"""Running a service process: settings, logging, start-up, HTTP, workers and graceful stop.

Each service's composition root (`services/<name>/main.py`) supplies a `build` coroutine that
wires its parts and registers every resource it opens on the given exit stack; `run_service` does
the rest the same way for all four services:

- settings are validated before anything starts (a readable message and exit code 2 if not);
- dependencies are awaited with a deadline and a message naming what is unreachable;
- on SIGTERM/SIGINT: /readyz turns 503, consumer loops finish and commit their batch, the HTTP
  server completes requests in flight, then resources close in reverse order of opening;
- a worker that dies takes the process down (non-zero exit) so the supervisor restarts it.
"""

import asyncio
import contextlib
import gc
import logging
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import TypeVar

import uvicorn
from fastapi import FastAPI

from services.runtime.http import Readiness, guarded_http_protocol
from services.runtime.logs import configure_logging
from services.runtime.settings import ServiceSettings, SettingsError, load_settings

log = logging.getLogger(__name__)

Worker = Callable[[asyncio.Event], Coroutine[object, object, None]]
SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


class StartupError(RuntimeError):
    """A dependency stayed unreachable or a port is taken; the message says which."""


@dataclass
class Service:
    app: FastAPI
    readiness: Readiness
    workers: Sequence[Worker] = field(default_factory=tuple)
    # uvicorn's HTTP protocol class, e.g. services.runtime.http.guarded_http_protocol(...)
    # with a service's own error bodies; None is the guarded protocol with the settings' limits.
    http_protocol: type[asyncio.Protocol] | None = None


Build = Callable[[SettingsT, AsyncExitStack], Awaitable[Service]]


async def wait_for(what: str, attempt: Callable[[], Awaitable[object]], seconds: float) -> None:
    """Retry `attempt` until it succeeds or `seconds` pass, then fail naming `what`."""
    deadline = time.monotonic() + seconds
    delay = 0.2
    while True:
        try:
            await attempt()
        except Exception as error:
            if time.monotonic() + delay > deadline:
                raise StartupError(f"{what} is unreachable after {seconds:.0f}s: {error}") from None
            log.info("waiting for %s", what, extra={"error": str(error)})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
        else:
            return


class _Server(uvicorn.Server):
    # The service owns signal handling, so shutdown can be ordered (drain, workers, then HTTP).
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _bind(host: str, port: int, *, shared: bool) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared:
        # Several processes of a stateless service share the port; the kernel spreads
        # connections across them (one ingest process per core).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise StartupError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    sock.set_inheritable(True)
    return sock


async def _run_until_stopped(
    name: str,
    settings: SettingsT,
    build: Build[SettingsT],
    resources: AsyncExitStack,
    stop: asyncio.Event,
) -> None:
    sock = _bind(settings.http_host, settings.http_port, shared=settings.http_reuse_port)
    resources.callback(sock.close)
    service = await build(settings, resources)
    # Every service faces clients that may be hostile (the dashboard's login, notify's links,
    # an admin API reachable by mistake): a head too large is a 431, a head or body that does
    # not arrive in time a 408, whatever proxy stands in front.
    protocol = service.http_protocol or guarded_http_protocol(
        name,
        max_header_bytes=settings.max_header_bytes,
        header_timeout=settings.header_timeout_seconds,
        body_timeout=settings.body_timeout_seconds,
    )
    # Everything allocated at start-up lives as long as the process: keep it out of the
    # collector's way, which shortens the pauses that set tail latency.
    gc.freeze()
    server = _Server(
        uvicorn.Config(
            service.app,
            log_config=None,
            access_log=False,
            lifespan="off",
            http=protocol,
            timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
        )
    )
    server_task = asyncio.create_task(server.serve(sockets=[sock]), name="http")
    worker_tasks = [
        asyncio.create_task(worker(stop), name=f"worker-{i}")
        for i, worker in enumerate(service.workers)
    ]
    stop_task = asyncio.create_task(stop.wait(), name="stop")
    log.info(
        "service started",
        extra={"url": f"http://{settings.http_host}:{settings.http_port}", "env": settings.env},
    )
    done, _ = await asyncio.wait(
        [stop_task, server_task, *worker_tasks], return_when=asyncio.FIRST_COMPLETED
    )
    failed = [task for task in done if task is not stop_task and task.exception()]
    log.info("service stopping")
    stop.set()
    service.readiness.start_draining()
    if worker_tasks:
        await asyncio.wait(worker_tasks, timeout=settings.shutdown_grace_seconds)
    server.should_exit = True
    await asyncio.wait([server_task], timeout=settings.shutdown_grace_seconds + 1)
    leftovers = [*worker_tasks, server_task, stop_task]
    for task in leftovers:
        task.cancel()
    # Let cancelled tasks unwind (a consumer leaves its group) before resources close.
    await asyncio.gather(*leftovers, return_exceptions=True)
    if failed:
        raise failed[0].exception() or RuntimeError("a task failed")


async def _serve(name: str, settings: SettingsT, build: Build[SettingsT]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    resources = AsyncExitStack()
    try:
        await _run_until_stopped(name, settings, build, resources, stop)
    finally:
        # Closing flushes the producer; with the broker gone that could wait forever, and what
        # is still unacknowledged was never confirmed to anyone, so bound it.
        try:
            await asyncio.wait_for(resources.aclose(), timeout=settings.shutdown_grace_seconds)
        except TimeoutError:
            log.warning("resources did not close within the grace period; giving up on them")
    log.info("service stopped")


def run_service(name: str, settings_type: type[SettingsT], build: Build[SettingsT]) -> None:
    """Entry point of `python -m services.<name>`."""
    try:
        settings = load_settings(settings_type)
    except SettingsError as error:
        print(f"retain {name}: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(name, settings.log_level, settings.log_format)
    try:
        import uvloop

        uvloop.run(_serve(name, settings, build))
    except StartupError as error:
        log.error("cannot start: %s", error)
        raise SystemExit(1) from None
