"""The dashboard's pages: `/` (the app, once logged in), `/login`, `/logout`, and `/static/`
(the app's script and styles, and ECharts, vendored: nothing is fetched from elsewhere)."""

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from services.scoring.dashboard.session import COOKIE, DashboardSessions

STATIC = Path(__file__).resolve().parent / "static"
MAX_LOGIN_BODY = 4096

# Scripts, styles and data from this origin only; no frames. ECharts styles what it draws
# through the DOM, which a policy on style attributes in markup does not restrict.
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


# One script per page of the dashboard, each registering itself with the app's script.
_PAGE_SCRIPTS = "\n".join(
    f'  <script src="/static/pages/{script.name}" defer></script>'
    for script in sorted((STATIC / "pages").glob("*.js"))
)


def _page(name: str, status: int = 200, error: str = "") -> HTMLResponse:
    html = (STATIC / name).read_text(encoding="utf-8")
    html = html.replace("{{error}}", error).replace("{{pages}}", _PAGE_SCRIPTS)
    return HTMLResponse(html, status_code=status, headers=_HEADERS)


def mount_dashboard(
    app: FastAPI, sessions: DashboardSessions, clock: Callable[[], datetime]
) -> None:
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    async def index(request: Request) -> Response:
        if not sessions.valid(request.cookies.get(COOKIE), clock()):
            return RedirectResponse("/login", status_code=303)
        return _page("index.html")

    @router.get("/login")
    async def login_page() -> Response:
        return _page("login.html")

    @router.post("/login")
    async def login(request: Request) -> Response:
        body = await request.body()
        form = parse_qs(body.decode("utf-8", "replace")) if len(body) <= MAX_LOGIN_BODY else {}
        offered = (form.get("token") or [""])[0]
        if not sessions.token_matches(offered):
            return _page("login.html", 401, "That is not the admin token.")
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            COOKIE,
            sessions.issue(clock()),
            max_age=int(sessions.lifetime.total_seconds()),
            httponly=True,
            secure=True,
            samesite="strict",
        )
        return response

    @router.post("/logout")
    async def logout() -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, httponly=True, secure=True, samesite="strict")
        return response

    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="dashboard-static")
