"""The admin credential for read APIs: `Authorization: Bearer <RETAIN_ADMIN_TOKEN>`.

Write keys only write (docs/architecture.md, rule 7): they are never accepted here.
"""

import hmac
from collections.abc import Awaitable, Callable

from fastapi import HTTPException, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.runtime.settings import ServiceSettings

_bearer = HTTPBearer(auto_error=False, description="RETAIN_ADMIN_TOKEN")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def admin_required(settings: ServiceSettings) -> Callable[..., Awaitable[None]]:
    """A FastAPI dependency that admits only the admin token."""
    expected = settings.admin_token.get_secret_value().encode() if settings.admin_token else None

    async def require_admin(
        credentials: HTTPAuthorizationCredentials | None = Security(_bearer),  # noqa: B008
    ) -> None:
        if credentials is None:
            raise HTTPException(
                401, "admin token required: Authorization: Bearer <token>", headers=_CHALLENGE
            )
        if expected is None or not hmac.compare_digest(credentials.credentials.encode(), expected):
            raise HTTPException(401, "invalid admin token", headers=_CHALLENGE)

    return require_admin
