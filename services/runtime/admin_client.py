"""A small client for another Retain service's admin API (Bearer admin token), for the few
callers that act on a person's behalf: the dashboard's customer page, the `retain` CLI.

Every call has a timeout. A service that cannot be reached, times out or answers 5xx raises
`ServiceUnavailable` naming the service, so a page can say which one failed; 404 is None."""

from typing import Any
from urllib.parse import quote

import httpx

DEFAULT_TIMEOUT_SECONDS = 5.0


class ServiceUnavailable(Exception):
    def __init__(self, service: str, reason: str) -> None:
        super().__init__(f"the {service} service is unavailable: {reason}")
        self.service = service


class AdminClient:
    def __init__(
        self,
        service: str,
        base_url: str,
        token: str,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.service = service
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            transport=transport,
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def request(
        self, method: str, path: str, params: dict[str, Any] | None = None
    ) -> dict[str, Any] | None:
        """The JSON answer, or None when the service answers 404."""
        try:
            answer = await self._http.request(method, path, params=params)
        except httpx.HTTPError as error:
            raise ServiceUnavailable(self.service, _reason(error)) from error
        if answer.status_code == 404:
            return None
        if answer.status_code >= 500 or answer.status_code in (401, 403):
            # The token not taken is a misconfiguration of this deployment, not the caller's.
            raise ServiceUnavailable(self.service, f"it answered {answer.status_code}")
        answer.raise_for_status()
        body: dict[str, Any] = answer.json()
        return body


def segment(value: str) -> str:
    """`value` as one path segment: an id with a slash or a space stays one id."""
    return quote(value, safe="")


def _reason(error: httpx.HTTPError) -> str:
    if isinstance(error, httpx.TimeoutException):
        return "it did not answer in time"
    if isinstance(error, httpx.ConnectError):
        return "it cannot be reached"
    return type(error).__name__
