"""`retain`: run the local stack.

retain run     start Kafka, PostgreSQL, Mailpit and the four services in the foreground; Ctrl-C
               stops all
retain up      the same in the background; returns once every service answers /readyz
retain down    stop what `retain up` started
retain status  what is running
retain keys    manage write keys
retain spend import FILE   set marketing spend from a CSV file, through scoring's API
retain demo    simulate a storefront through the tracking API (history, then live traffic)
retain replay cdnow [FILE] | csv FILE   past orders through the tracking API
retain customers find|export|erase, scores show|refit, journeys list   the admin APIs
retain dlq list|show|redrive|purge TOPIC, topics describe   dead letters and topics in Kafka
"""

import argparse
import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from types import FrameType
from typing import NoReturn

from services.devstack import demo_cli, kafka_ops, operate
from services.devstack.errors import DevStackError
from services.devstack.stack import SERVICES, LocalStack, StackConfig
from services.ingest import cli as ingest_cli


def _banner(stack: LocalStack) -> str:
    config = stack.config
    lines = ["", "Retain is ready:"]
    lines += [f"  {name:<8} {config.service_url(name)}" for name in SERVICES]
    lines += [
        f"  kafka    {stack.bootstrap_servers}",
        f"  postgres {stack.database_url.replace(stack.postgres.password, '***')}",
        f"  smtp     {stack.smtp_host}:{config.smtp_port}",
    ]
    if not config.external_smtp:
        lines.append(f"  inbox    {stack.mailpit.ui_url}  (every email sent locally)")
    lines += [
        f"  admin token: {stack.secrets['RETAIN_ADMIN_TOKEN']}",
        f"  dev write key: {stack.secrets['RETAIN_DEV_WRITE_KEY']}",
        f"  (secrets are in {config.env_file})",
        "",
        f"Try it: `make demo` sends a simulated storefront's last 180 days through ingest; then "
        f"open the dashboard at {config.service_url('scoring')}/ (log in with the admin token)"
        + ("" if config.external_smtp else f" and the inbox at {stack.mailpit.ui_url}"),
        "",
    ]
    return "\n".join(lines)


def _progress(message: str) -> None:
    """Word of slow one-time work (building Mailpit), so a long first start is not silent."""
    print(f"retain: {message}", file=sys.stderr, flush=True)


def _run(stack: LocalStack) -> None:
    processes: dict[str, subprocess.Popen[bytes]] = {}

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        stack.start_infrastructure()
        processes = {name: stack.spawn_service(name, detached=False) for name in SERVICES}
        stack.wait_ready(processes)
        print(_banner(stack) + "Press Ctrl-C to stop.\n", flush=True)
        while all(process.poll() is None for process in processes.values()):
            time.sleep(0.5)
        failed = [name for name, process in processes.items() if process.poll() is not None]
        raise DevStackError(f"the {', '.join(failed)} service stopped unexpectedly")
    except KeyboardInterrupt:
        print("\nstopping Retain ...", flush=True)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        stack.stop_infrastructure()


def _up(stack: LocalStack) -> None:
    running = stack.running_services()
    if running:
        raise DevStackError(f"already running: {', '.join(running)} (run `make down` first)")
    try:
        stack.start_infrastructure()
        processes = {name: stack.spawn_service(name, detached=True) for name in SERVICES}
        stack.wait_ready(processes)
    except BaseException:
        _down(stack)
        raise
    print(_banner(stack) + f"Logs: {stack.log_dir}. Stop with `make down`.\n", flush=True)


def _down(stack: LocalStack) -> None:
    stack.stop_services()
    stack.stop_infrastructure()
    print("Retain stopped.", flush=True)


def _status(stack: LocalStack) -> None:
    running = stack.running_services()
    print(f"services running: {', '.join(running) or 'none'}")
    print(f"kafka: {'running' if stack.kafka.is_running() else 'stopped'}")
    print(f"postgres: {'running' if stack.postgres.is_running() else 'stopped'}")
    if stack.config.external_smtp:
        print(f"mailpit: not used (RETAIN_SMTP_HOST={stack.config.external_smtp})")
    elif stack.mailpit.is_running():
        print(f"mailpit: running, inbox {stack.mailpit.ui_url}, SMTP port {stack.config.smtp_port}")
    else:
        print("mailpit: stopped")


COMMANDS: dict[str, tuple[Callable[[LocalStack], None], str]] = {
    "run": (_run, "start everything in the foreground; Ctrl-C stops it all"),
    "up": (_up, "start everything in the background and wait until ready"),
    "down": (_down, "stop everything `up` started"),
    "status": (_status, "show what is running"),
}


def _keys(stack: LocalStack, args: argparse.Namespace) -> None:
    if not stack.config.external_database and not stack.postgres.is_running():
        raise DevStackError("PostgreSQL is not running: start the stack with `make up` first")
    print(asyncio.run(ingest_cli.run(args, stack.database_url)))


REMOTE_COMMANDS: dict[str, Callable[[StackConfig, argparse.Namespace], None]] = {
    "spend": operate.spend,
    "demo": demo_cli.run,
    "replay": demo_cli.replay,
    "customers": operate.customers,
    "scores": operate.scores,
    "journeys": operate.journeys,
    "dlq": kafka_ops.dlq,
    "topics": kafka_ops.topics,
}


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, like every other error of the CLI (subcommands inherit it)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def main(argv: list[str] | None = None) -> None:
    parser = _Parser(prog="retain", description="Run Retain locally.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (_, help_text) in COMMANDS.items():
        commands.add_parser(name, help=help_text)
    ingest_cli.add_commands(commands.add_parser("keys", help="manage write keys"))
    operate.add_spend_command(commands)
    demo_cli.add_command(commands)
    demo_cli.add_replay_command(commands)
    operate.add_api_commands(commands)
    kafka_ops.add_commands(commands)
    args = parser.parse_args(argv)
    try:
        if args.command in REMOTE_COMMANDS:
            # They call a deployment's APIs: no local server is set up or touched.
            REMOTE_COMMANDS[args.command](StackConfig.from_environment(), args)
            return
        stack = LocalStack(StackConfig.from_environment(), progress=_progress)
        if args.command == "keys":
            _keys(stack, args)
        else:
            COMMANDS[args.command][0](stack)
    except DevStackError as error:
        print(f"retain: {error}", file=sys.stderr)
        raise SystemExit(1) from None
