"""The dashboard's login: the admin token, exchanged once for a session cookie.

The cookie never holds the token. It holds its expiry and an HMAC of it keyed by the admin
token, so it proves the token was known, is checked without any stored state (any scoring
replica accepts it), and stops working when it expires or the admin token is rotated. It is
HttpOnly (no script reads it), Secure and SameSite=Strict (never sent from another site's
page, which is also what keeps other sites from making the dashboard act).
"""

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

COOKIE = "retain_dashboard"
_bearer = HTTPBearer(auto_error=False, description="RETAIN_ADMIN_TOKEN")


class DashboardSessions:
    def __init__(self, admin_token: str | None, lifetime: timedelta) -> None:
        self._key = admin_token.encode() if admin_token else None
        self.lifetime = lifetime

    def token_matches(self, offered: str) -> bool:
        return self._key is not None and hmac.compare_digest(offered.encode(), self._key)

    def issue(self, now: datetime) -> str:
        """A session for `lifetime` from `now` (call only once the token matched)."""
        if self._key is None:
            raise RuntimeError("no admin token: no session can be issued")
        expires = int((now + self.lifetime).timestamp())
        return f"{expires}.{self._sign(expires)}"

    def valid(self, cookie: str | None, now: datetime) -> bool:
        if not cookie or self._key is None:
            return False
        expires, _, signature = cookie.partition(".")
        # ASCII digits only: str.isdigit() also admits "²", which int() refuses; and the
        # signature is compared as bytes, since compare_digest refuses non-ASCII text.
        if not (expires.isascii() and expires.isdigit()) or len(expires) > 12:
            return False
        if not hmac.compare_digest(signature.encode(), self._sign(int(expires)).encode()):
            return False
        return now.timestamp() < int(expires)

    def _sign(self, expires: int) -> str:
        assert self._key is not None
        message = f"retain-dashboard-session:{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()


def admin_or_session(
    sessions: DashboardSessions,
    clock: Callable[[], datetime],
    admin: Callable[..., Awaitable[None]],
) -> Callable[..., Awaitable[None]]:
    """A FastAPI dependency that admits a dashboard session, else whatever `admin` (the
    service's admin-token check) admits."""

    async def require(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Security(_bearer),  # noqa: B008
    ) -> None:
        if credentials is None and sessions.valid(request.cookies.get(COOKIE), clock()):
            return
        await admin(credentials)

    return require
