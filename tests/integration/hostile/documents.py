"""Each service's OpenAPI document, built as its composition root builds its app but with no
infrastructure behind the routes: the fuzzing tests need the documents when they are
collected, before any service runs. `test_openapi_fuzzing` checks that each is the document
the running service serves, so what is fuzzed is what is served."""

from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, cast

from pydantic import SecretStr

from services.ingest import sdk
from services.ingest.api import TrackingApi, install
from services.ingest.settings import IngestSettings
from services.notify import journeys
from services.notify.api import notify_router
from services.notify.settings import NotifySettings
from services.notify.tracking import tracking_router
from services.profile.api import profile_router
from services.runtime.auth import admin_required
from services.runtime.guard import MAX_BODY_BYTES
from services.runtime.http import Readiness, create_service_app
from services.runtime.settings import Environment, ServiceSettings
from services.scoring.analytics_api import analytics_router
from services.scoring.api import scoring_router
from services.scoring.customer_api import customer_routes
from services.scoring.dashboard.routes import mount_dashboard
from services.scoring.dashboard.session import DashboardSessions, admin_or_session
from services.scoring.main import ANALYTICS_PAGES
from tests.integration.helpers import ADMIN_TOKEN

Document = dict[str, Any]
# Stands in for what only a running service has (a database, a broker, other services): the
# routes' declarations are all a document is made of.
ABSENT = cast(Any, None)
_SETTINGS = ServiceSettings(env=Environment.LOCAL, admin_token=SecretStr(ADMIN_TOKEN))


def _app(service: str) -> Any:
    return create_service_app(
        service, Readiness({}), title=service, description="", max_body_bytes=MAX_BODY_BYTES
    )


@cache
def ingest() -> Document:
    settings = IngestSettings(env=Environment.LOCAL)
    app = create_service_app("ingest", Readiness({}), title="ingest", description="")
    install(app, TrackingApi(settings, keys=ABSENT, publisher=ABSENT, limiter=ABSENT), settings)
    sdk.install(app, sdk.SdkApi(settings, ABSENT, None))
    document: Document = app.openapi()
    return document


@cache
def profile() -> Document:
    app = _app("profile")
    app.include_router(profile_router(ABSENT, admin_required(_SETTINGS)))
    document: Document = app.openapi()
    return document


@cache
def scoring() -> Document:
    app = _app("scoring")
    admin = admin_required(_SETTINGS)
    app.include_router(scoring_router(ABSENT, ABSENT, admin))
    sessions = DashboardSessions(ADMIN_TOKEN, timedelta(hours=12))

    def clock() -> datetime:
        return datetime.now(UTC)

    pages = (*ANALYTICS_PAGES, customer_routes(ABSENT, ABSENT))
    app.include_router(analytics_router(ABSENT, admin_or_session(sessions, clock, admin), pages))
    mount_dashboard(app, sessions, clock)
    document: Document = app.openapi()
    return document


@cache
def notify() -> Document:
    settings = NotifySettings(env=Environment.LOCAL)
    app = _app("notify")
    app.include_router(
        tracking_router(settings.link_signer(), ABSENT, ABSENT, ABSENT, store_name="")
    )
    catalog = journeys.load(settings.notify_journeys_dir)
    app.include_router(notify_router(ABSENT, catalog, admin_required(_SETTINGS), ABSENT))
    document: Document = app.openapi()
    return document


DOCUMENTS = {"ingest": ingest, "profile": profile, "scoring": scoring, "notify": notify}
