"""The targeting officers' worklist: a small server-rendered web app mounted at ``/ui``.

Pages (Jinja2 templates, a little CSS, one small script; no JavaScript build):

* ``/ui/login`` - sign in with a worklist account (user name and password) or an officer API
  key; ``POST /ui/logout`` signs out;
* ``/ui/worklist`` - the shipments of a day ranked by risk with the capacity cut line and the
  random exploration picks (:mod:`serving.ui.worklist`), filters by stream, port, vessel or
  flight, band, and not-yet-inspected;
* ``/ui/shipments/{id}`` - the declaration, score, band, the reasons as a bar chart, the
  parties' history and linked parties, and the inspection-outcome form (recorded through
  :meth:`serving.engine.ScoringEngine.record_outcomes`, the path of ``POST /outcomes``);
* ``/ui/model`` - the champion in service, its test metrics beside the baselines and its
  capacity curve;
* ``/ui/search`` - every identifier, party, phone, address and name (issue 17);
  ``/ui/parties/{kind}/{id}`` a party's or identifier's timeline, features, partners and links,
  with its evidence export (``/export.csv``, ``/print``); ``/ui/network/{kind}/{id}`` its
  network drawn (also ``/export.csv``, ``/print``); ``/ui/watchlist`` the officers' watchlist
  (:mod:`serving.ui.pages.investigate`).
* ``/ui/health`` - model health: drift of the served traffic per feature, stream and ISO
  week against the champion's training window, the alerts, and the outcome figures
  (:mod:`serving.ui.pages.health`).

Every page needs a session (:mod:`serving.ui.session`, held in the store) and names the action
it performs in the authority table the API uses (:data:`serving.auth.PERMISSIONS`): the
worklist and shipment pages read shipments (officers), the outcome form records outcomes
(officers), the model and health pages are for officers and admins. Every sign-in (refused
ones too, with the client address), sign-out, page view and outcome is written to the store's
audit trail with the officer's identity. The app gets the running
:class:`~serving.engine.ScoringEngine` from a resolver, so the BentoML service, the tests and
any other ASGI host can mount it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from features.contracts import (
    MODES,
)
from serving.auth import may
from serving.edge import SECURITY_HEADERS as EDGE_HEADERS
from serving.edge import with_headers
from serving.ui import worklist as wl
from serving.ui.format import field_label, odds_change, shown_value
from serving.ui.model_info import ModelReports
from serving.ui.pages.health import HealthPages
from serving.ui.pages.investigate import InvestigationPages, NetworkPages, WatchlistPages
from serving.ui.pages.model import ModelPages
from serving.ui.pages.shipment import ShipmentPages
from serving.ui.pages.sign_in import SignInPages
from serving.ui.pages.worklist import WorklistPages
from serving.ui.session import (
    CookieSigner,
)
from serving.ui.session_gate import Refused

HERE = Path(__file__).resolve().parent

SECURITY_HEADERS = {**EDGE_HEADERS, "cache-control": "no-store"}
"""The service's security headers (the same when the worklist is mounted elsewhere) and no
caching: pages hold shipments, parties and the session's CSRF token."""


class WorklistApp(
    SignInPages,
    WorklistPages,
    ShipmentPages,
    ModelPages,
    InvestigationPages,
    NetworkPages,
    WatchlistPages,
    HealthPages,
):
    """The worklist ASGI app; ``resolve`` returns the running scoring engine (or None while
    the service starts)."""

    def __init__(self, resolve: Callable[[], Any]) -> None:
        self.resolve = resolve
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        env = self.templates.env
        env.filters["fmt"] = shown_value
        env.filters["label"] = field_label
        env.filters["odds"] = odds_change
        env.globals["BANDS"] = wl.BANDS
        env.globals["MODES"] = MODES
        env.globals["STREAM_WORDS"] = wl.STREAM_WORDS
        env.globals["may"] = may
        self._signer: tuple[tuple, CookieSigner] | None = None
        self._reports: tuple[str, ModelReports] | None = None
        routes = [
            Route("/", self.index, name="index"),
            Route("/login", self.login_page, name="login", methods=["GET"]),
            Route("/login", self.login, name="login_post", methods=["POST"]),
            Route("/logout", self.logout, name="logout", methods=["POST"]),
            Route("/worklist", self.worklist, name="worklist"),
            Route(
                "/shipments/{shipment_id:path}/outcome",
                self.outcome,
                methods=["POST"],
                name="outcome",
            ),
            Route("/shipments/{shipment_id:path}", self.shipment, name="shipment"),
            Route("/search", self.search, name="search"),
            Route("/parties/{kind}/{term:path}/export.csv", self.party_csv, name="party_csv"),
            Route("/parties/{kind}/{term:path}/print", self.party, name="party_print"),
            Route("/parties/{kind}/{term:path}", self.party, name="party"),
            Route("/network/{kind}/{term:path}/export.csv", self.network_csv, name="network_csv"),
            Route("/network/{kind}/{term:path}/print", self.network, name="network_print"),
            Route("/network/{kind}/{term:path}", self.network, name="network"),
            Route("/watchlist", self.watchlist_page, name="watchlist", methods=["GET"]),
            Route("/watchlist", self.watch_add, name="watch_add", methods=["POST"]),
            Route("/watchlist/{entry}", self.watch_change, name="watch_change", methods=["POST"]),
            Route("/model", self.model, name="model"),
            Route("/model/capacity-curve.png", self.capacity_curve, name="capacity_curve"),
            Route("/health", self.health, name="health"),
            Route("/health/drift-{stream}.png", self.health_heatmap, name="health_heatmap"),
            Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
        ]
        self.app = Starlette(
            routes=routes,
            exception_handlers={500: self._server_error, Refused: self._refused},
        )

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                message = with_headers(message, SECURITY_HEADERS)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(resolve: Callable[[], Any]) -> WorklistApp:
    """The worklist ASGI app over the engine ``resolve()`` returns."""
    return WorklistApp(resolve)
