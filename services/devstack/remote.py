"""Where the CLI's commands find a deployment: the local stack by default, any other by flags.

Each command that calls a service takes `--url` (default: the local stack's port for that
service) and `--token` (default: RETAIN_ADMIN_TOKEN, else the local env file `make run`
writes); demo and replay take `--ingest-url` and `--write-key` the same way. Every failure
becomes one DevStackError line: unreachable, a refused token, an error answer.
"""

import argparse
import os
from collections.abc import Mapping
from typing import Any

import httpx

from services.devstack.errors import DevStackError
from services.devstack.stack import StackConfig, read_env_file


def add_service_args(parser: argparse.ArgumentParser, service: str) -> None:
    parser.add_argument("--url", help=f"{service}'s URL (default: the local stack's)")
    parser.add_argument(
        "--token", help="admin token (default: RETAIN_ADMIN_TOKEN, else the local env file)"
    )


def add_ingest_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ingest-url", help="ingest's URL (default: the local stack's)")
    parser.add_argument(
        "--write-key",
        help="the source's write key (default: RETAIN_DEV_WRITE_KEY, else the local env file)",
    )


def local_value(config: StackConfig, name: str, environ: Mapping[str, str] = os.environ) -> str:
    """A secret from the environment, else from the local stack's env file."""
    value = environ.get(name) or read_env_file(config.env_file).get(name)
    if not value:
        raise DevStackError(
            f"no {name}: pass it as a flag, set {name}, or start the local stack (`make up`), "
            f"which writes {config.env_file}"
        )
    return value


def write_key(config: StackConfig, args: argparse.Namespace) -> str:
    return str(args.write_key or local_value(config, "RETAIN_DEV_WRITE_KEY"))


def ingest_url(config: StackConfig, args: argparse.Namespace) -> str:
    return str(args.ingest_url or config.service_url("ingest")).rstrip("/")


class ServiceApi:
    """A service's admin API: every call with the admin token, every failure one line."""

    def __init__(self, service: str, url: str, token: str, *, timeout: float = 60.0) -> None:
        self.service = service
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url,
            timeout=timeout,
            headers={"Authorization": f"Bearer {token}"},
            trust_env=False,
        )

    @classmethod
    def of(cls, service: str, config: StackConfig, args: argparse.Namespace) -> "ServiceApi":
        url = args.url or config.service_url(service)
        token = args.token or local_value(config, "RETAIN_ADMIN_TOKEN")
        return cls(service, url, token)

    def __enter__(self) -> "ServiceApi":
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The answer when it is a success (2xx); DevStackError otherwise."""
        try:
            answer = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise DevStackError(
                f"{self.service} at {self.url} is unreachable ({type(error).__name__}: {error})"
            ) from None
        if answer.status_code == 401:
            raise DevStackError(f"{self.service} at {self.url} refused the admin token (401)")
        if answer.status_code >= 300:
            raise DevStackError(
                f"{self.service} answered {answer.status_code} to {method} {path}: "
                f"{error_text(answer)}"
            )
        return answer

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.call(method, path, **kwargs).json()


def error_text(answer: httpx.Response) -> str:
    """What an error answer says, on one line."""
    try:
        body = answer.json()
    except ValueError:
        return " ".join(answer.text.split())[:300] or answer.reason_phrase
    if isinstance(body, dict):
        detail = body.get("message") or body.get("detail") or body
        return " ".join(str(detail).split())[:300]
    return str(body)[:300]
