"""Investigations: the search, a party's or identifier's page (timeline, features as of now,
partners, linked parties), its evidence export (CSV and a printable page) and its network.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from serving.store import SearchError, WatchlistError, utcnow
from serving.store.search import KINDS, key_of
from serving.ui.format import shown_value
from serving.ui.session_gate import PageBase, safe_next

SEARCH_PAGE = 20
"""Results per page of the search."""
TIMELINE_SHIPMENTS = 300
"""A party page shows its latest shipments (and their events) up to this many."""
NETWORK_KINDS = ("consignee", "phone", "address", "recipient")
"""Kinds whose network can be drawn: consignees and the identifiers that link them."""


class InvestigationPages(PageBase):
    # -- search ----------------------------------------------------------------------------
    def search(self, request: Request) -> Response:
        engine, session, caller = self.officer(request, "read_shipments")
        ctx: dict[str, Any] = {"session": session, "caller": caller, "active": "search"}
        q = request.query_params.get("q", "")
        if not q.strip():
            return self.render(request, "search.html", q="", page=None, error=None, **ctx)
        try:
            number = int(request.query_params.get("page", "1"))
        except ValueError:
            number = 0
        if not 1 <= number <= 50:
            return self.render(
                request, "search.html", 400, q=q, page=None,
                error="page: a page number from 1 to 50", **ctx,
            )  # fmt: skip
        try:
            page = engine.store.search(q, limit=SEARCH_PAGE, offset=(number - 1) * SEARCH_PAGE)
        except SearchError as exc:
            return self.render(request, "search.html", 400, q=q, page=None, error=str(exc), **ctx)
        engine.store.audit(
            "ui_search", caller, {"q": page.query, "page": number, "results": len(page.hits)}
        )
        return self.render(
            request, "search.html", q=page.query, page=page, number=number, error=None, **ctx
        )

    # -- a party or identifier -------------------------------------------------------------
    def _subject(self, request: Request) -> tuple[str, str | None]:
        kind = request.path_params["kind"]
        if kind not in KINDS:
            return kind, None
        return kind, key_of(kind, request.path_params["term"])

    def _not_found(self, request: Request, kind: str, given: str, ctx: dict) -> Response:
        words = KINDS[kind].words if kind in KINDS else None
        message = (
            f"{kind!r} is not a kind of party or identifier; one of {', '.join(KINDS)}"
            if words is None
            else f"The store holds no shipment with the {words} {given!r}."
        )
        return self.render(request, "error.html", 404, title="Not found", message=message, **ctx)

    def _party_data(self, engine, kind: str, term: str) -> dict[str, Any]:
        store = engine.store
        ids = store.shipments_with(kind, term, limit=TIMELINE_SHIPMENTS)
        ships, events = store.timeline(ids)
        latest = store.shipment(ships[0]["shipment_id"]) if ships else None
        view = engine.party_view(kind, term, latest)
        seizures = sorted(
            (e for e in events if e["event"] in ("inspected", "corrected")),
            key=lambda e: e["at"],
        )
        seizures = _in_force_seizures(seizures)
        return {
            "kind": kind,
            "term": term,
            "words": KINDS[kind].words,
            "display": store.key_display(kind, term) or term,
            "total": store.count_with(kind, term),
            "ships": ships,
            "events": events,
            "seizures": seizures,
            "partners": _partners(kind, term, ships),
            "view": view,
            "networked": kind in NETWORK_KINDS,
        }

    def party(self, request: Request) -> Response:
        engine, session, caller = self.officer(request, "read_shipments")
        ctx: dict[str, Any] = {"session": session, "caller": caller, "active": "search"}
        kind, term = self._subject(request)
        if term is None or not engine.store.count_with(kind, term):
            return self._not_found(request, kind, request.path_params["term"], ctx)
        data = self._party_data(engine, kind, term)
        printing = request.url.path.endswith("/print")
        engine.store.audit(
            "ui_party_printed" if printing else "ui_party_viewed",
            caller,
            {"kind": kind, "id": term, "shipments": data["total"]},
        )
        return self.render(
            request,
            "party.html",
            printing=printing,
            now=utcnow(),
            watches=engine.store.watched(kind, term),
            **data,
            **ctx,
        )

    def party_csv(self, request: Request) -> Response:
        engine, session, caller = self.officer(request, "read_shipments")
        ctx: dict[str, Any] = {"session": session, "caller": caller, "active": "search"}
        kind, term = self._subject(request)
        if term is None or not engine.store.count_with(kind, term):
            return self._not_found(request, kind, request.path_params["term"], ctx)
        data = self._party_data(engine, kind, term)
        rows: list[list[Any]] = [
            [f"cargorisk evidence export: {data['words']} {data['display']}"],
            [f"exported by {caller.label}"],
            [],
            ["at_utc", "event", "shipment_id", "by", "detail"],
        ]
        for e in data["events"]:
            rows.append([shown_value(e["at"]), e["event"], e["shipment_id"], e["by"] or "",
                         e["detail"]])  # fmt: skip
        engine.store.audit(
            "ui_party_exported",
            caller,
            {"kind": kind, "id": term, "format": "csv", "events": len(data["events"])},
        )
        return _csv_response(rows, f"{kind}-{term}")


def _csv_response(rows: list[list[Any]], name: str) -> Response:
    """An evidence export: the rows as a CSV attachment, formula-safe (:func:`_csv_safe`)."""
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    name = "".join(ch if ch.isalnum() else "-" for ch in name)[:80]
    return Response(
        _csv_safe(out.getvalue()),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="cargorisk-{name}.csv"'},
    )


def _csv_safe(text: str) -> str:
    """CSV whose cells cannot start a spreadsheet formula (a declared name "=HYPERLINK(..)"
    is data, not code): such cells get a leading apostrophe."""
    rows = list(csv.reader(io.StringIO(text)))
    out = io.StringIO()
    writer = csv.writer(out)
    for row in rows:
        writer.writerow(["'" + c if c[:1] in ("=", "+", "-", "@") else c for c in row])
    return out.getvalue()


def _in_force_seizures(reports: list[dict]) -> list[dict]:
    """Seizures among a party's inspection reports (oldest first), each inspection once as
    its report in force (a corrected report counts as corrected)."""
    latest: dict[tuple, dict] = {}
    for e in reports:  # later revisions replace earlier ones of the same inspection
        latest[(e["shipment_id"], e["at"])] = e
    return [e for e in latest.values() if e.get("result") == "seized"]


def _partners(kind: str, term: str, ships: list[dict]) -> list[dict[str, Any]]:
    """The other parties of a party's shipments, most shipments first: shippers and
    consignees (the counterparty of a shipper or consignee; both for any other kind)."""
    counts: Counter = Counter()
    names: dict[tuple[str, str], tuple[str, str]] = {}
    for row in ships:
        for role, id_col, name_col in (
            ("shipper", "shipper_id", "shipper_name"),
            ("consignee", "consignee_id", "consignee_name"),
        ):
            value = row.get(id_col)
            key = key_of(role, value) if value else None
            if key is None or (role == kind and key == term):
                continue
            counts[(role, key)] += 1
            names.setdefault((role, key), (str(value), row.get(name_col) or ""))
    return [
        {
            "kind": role,
            "term": key,
            "id": names[(role, key)][0],
            "name": names[(role, key)][1],
            "shipments": n,
        }
        for (role, key), n in counts.most_common(30)
    ]


class NetworkPages(PageBase):
    # -- the network drawn -----------------------------------------------------------------
    def _network_data(self, request: Request, engine, ctx: dict) -> dict[str, Any] | Response:
        """The network around the page's subject, or the error page saying why not."""
        kind = request.path_params["kind"]
        given = request.path_params["term"]
        if kind not in NETWORK_KINDS:
            return self.render(
                request, "error.html", 404, title="Not found",
                message=f"{kind!r}: a network is drawn around a consignee, a phone, an "
                "address or a customs code", **ctx,
            )  # fmt: skip
        term = key_of(kind, given)
        if term is None or not engine.store.count_with(kind, term):
            return self.render(
                request, "error.html", 404, title="Not found",
                message=f"The store holds no shipment with the {KINDS[kind].words} {given!r}.",
                **ctx,
            )  # fmt: skip
        graph = engine.network(kind, term)
        if graph is None:
            return self.render(
                request, "error.html", 503, title="History loading",
                message="The history is not loaded yet; the network shows once it is.", **ctx,
            )  # fmt: skip
        return {
            "kind": kind,
            "term": term,
            "words": KINDS[kind].words,
            "display": engine.store.key_display(kind, term) or term,
            "graph": graph,
            "watched": engine.store.watched_keys("consignee", [p["key"] for p in graph["parties"]]),
            "names": {p["key"]: p["party_id"] for p in graph["parties"]},
        }

    def network(self, request: Request) -> Response:
        engine, session, caller = self.officer(request, "read_shipments")
        ctx: dict[str, Any] = {"session": session, "caller": caller, "active": "search"}
        data = self._network_data(request, engine, ctx)
        if isinstance(data, Response):
            return data
        printing = request.url.path.endswith("/print")
        engine.store.audit(
            "ui_network_printed" if printing else "ui_network_viewed",
            caller,
            {"kind": data["kind"], "id": data["term"], "parties": len(data["graph"]["parties"])},
        )
        return self.render(
            request,
            "network.html",
            printing=printing,
            now=utcnow(),
            elements=[] if printing else _elements(self, request, data["graph"], data["watched"]),
            **data,
            **ctx,
        )

    def network_csv(self, request: Request) -> Response:
        engine, session, caller = self.officer(request, "read_shipments")
        ctx: dict[str, Any] = {"session": session, "caller": caller, "active": "search"}
        data = self._network_data(request, engine, ctx)
        if isinstance(data, Response):
            return data
        graph, watched, names = data["graph"], data["watched"], data["names"]
        rows: list[list[Any]] = [
            [f"cargorisk evidence export: network of {data['words']} {data['display']}"],
            [f"exported by {caller.label}"],
        ]
        if graph.get("truncated"):
            rows.append([f"the walk stopped at {len(graph['parties'])} consignees, nearest first"])
        rows += [[], ["nodes"], list(NETWORK_NODE_COLUMNS)]
        for p in sorted(graph["parties"], key=lambda p: (p["hops"], p["party_id"])):
            rows.append(["consignee", p["party_id"], p["key"], p["hops"], p["shipments"],
                         p["seizures"], "yes" if p["key"] in watched else "no", ""])  # fmt: skip
        for h in graph["hubs"]:
            rows.append([h["kind"], h["value"], h["value"], "", "", "", "", h["parties"]])
        rows += [[], ["edges"], list(NETWORK_EDGE_COLUMNS)]
        for link in graph["links"]:
            rows.append(["consignee", names.get(link["a"], link["a"]), "consignee",
                         names.get(link["b"], link["b"]), ", ".join(link["shared"])])  # fmt: skip
        for hl in graph["hub_links"]:
            hub_kind, _, hub_value = hl["hub"].partition(":")
            rows.append([hub_kind, hub_value, "consignee",
                         names.get(hl["party"], hl["party"]), hub_kind])  # fmt: skip
        engine.store.audit(
            "ui_network_exported",
            caller,
            {
                "kind": data["kind"],
                "id": data["term"],
                "format": "csv",
                "parties": len(graph["parties"]),
                "links": len(graph["links"]) + len(graph["hub_links"]),
            },
        )
        return _csv_response(rows, f"network-{data['kind']}-{data['term']}")


NETWORK_NODE_COLUMNS = (
    "kind", "id", "key", "links_away", "shipments", "seizures", "watched", "consignees_sharing",
)  # fmt: skip
"""The node table of a network's CSV: consignees, then hub identifiers (drawn once, not
followed; ``consignees_sharing`` says how many consignees carry them)."""
NETWORK_EDGE_COLUMNS = ("source_kind", "source", "target_kind", "target", "shared")
"""The edge table of a network's CSV: consignees that declared the same identifiers
(``shared``), and hub identifiers to the consignees that carry them."""


def _elements(pages: PageBase, request: Request, graph: dict, watched: set[str]) -> list[dict]:
    """The network as Cytoscape elements: consignees (sized by shipments, marked when seized
    or watched), the links between them (the identifiers they share) and hub identifiers."""
    out: list[dict] = []
    for p in graph["parties"]:
        out.append(
            {
                "data": {
                    "id": f"c:{p['key']}",
                    "label": p["party_id"],
                    "shipments": p["shipments"],
                    "seizures": p["seizures"],
                    "watched": p["key"] in watched,
                    "start": p["hops"] == 0,
                    "href": pages.path(request, "party", kind="consignee", term=p["key"]),
                }
            }
        )
    for link in graph["links"]:
        out.append(
            {
                "data": {
                    "id": f"l:{link['a']}|{link['b']}",
                    "source": f"c:{link['a']}",
                    "target": f"c:{link['b']}",
                    "label": ", ".join(link["shared"]),
                }
            }
        )
    for h in graph["hubs"]:
        out.append(
            {
                "data": {
                    "id": f"h:{h['kind']}:{h['value']}",
                    "label": f"{h['kind']} shared by {h['parties']}",
                    "hub": True,
                    "parties": h["parties"],
                    "href": pages.path(request, "party", kind=h["kind"], term=h["value"]),
                }
            }
        )
    for hl in graph["hub_links"]:
        out.append(
            {
                "data": {
                    "id": f"hl:{hl['hub']}|{hl['party']}",
                    "source": f"h:{hl['hub']}",
                    "target": f"c:{hl['party']}",
                    "label": "",
                }
            }
        )
    return out


class WatchlistPages(PageBase):
    # -- watchlists ------------------------------------------------------------------------
    def watchlist_page(self, request: Request) -> Response:
        engine, session, caller = self.officer(request, "manage_watchlist")
        return self._watchlist(request, engine, session, caller)

    def _watchlist(self, request, engine, session, caller, *, form=None, error=None,
                   status=200) -> Response:  # fmt: skip
        everything = request.query_params.get("all") == "1"
        entries = engine.store.watchlist(all_entries=everything)
        if error is None:
            engine.store.audit("ui_watchlist_viewed", caller, {"entries": len(entries)})
        return self.render(
            request,
            "watchlist.html",
            status,
            entries=entries,
            everything=everything,
            kinds=[(k, spec.words) for k, spec in KINDS.items()],
            form=form or {"kind": "phone", "value": "", "reason": "", "expires": ""},
            error=error,
            now=utcnow(),
            session=session,
            caller=caller,
            active="watchlist",
        )

    async def watch_add(self, request: Request) -> Response:
        engine, session, caller = await run_in_threadpool(self.officer, request, "manage_watchlist")
        form = await request.form()
        if not self.csrf_ok(session, form):
            return self.form_expired(request, session, caller)
        given = {k: str(form.get(k) or "").strip()[:600] for k in ("kind", "value", "reason",
                                                                  "expires", "next")}  # fmt: skip
        try:
            expires = _expiry(given["expires"])
            entry = await run_in_threadpool(
                engine.store.watch, given["kind"], given["value"], reason=given["reason"],
                expires_at=expires, caller=caller,
            )  # fmt: skip
        except WatchlistError as exc:
            return await run_in_threadpool(
                self._watchlist, request, engine, session, caller, form=given, error=str(exc),
                status=400,
            )  # fmt: skip
        target = safe_next(given["next"], self.root(request)) or self.path(
            request, "watchlist", {"added": entry[:8]}
        )
        return RedirectResponse(target, 303)

    async def watch_change(self, request: Request) -> Response:
        engine, session, caller = await run_in_threadpool(self.officer, request, "manage_watchlist")
        form = await request.form()
        if not self.csrf_ok(session, form):
            return self.form_expired(request, session, caller)
        entry = request.path_params["entry"]
        remove = str(form.get("action") or "") == "remove"
        try:
            expires = None if remove else _expiry(str(form.get("expires") or ""))
            await run_in_threadpool(
                lambda: engine.store.change_watch(
                    entry, reason=str(form.get("reason") or "")[:600], expires_at=expires,
                    caller=caller, remove=remove,
                )
            )  # fmt: skip
        except WatchlistError as exc:
            return await run_in_threadpool(
                self._watchlist, request, engine, session, caller, error=str(exc), status=400
            )
        return RedirectResponse(self.path(request, "watchlist"), 303)


def _expiry(text: str) -> dt.datetime:
    """An expiry date from a form (the end of that day, UTC)."""
    if not text:
        raise WatchlistError("expires_at: every entry needs an expiry")
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise WatchlistError(f"expires_at: {text[:20]!r} is not a date (YYYY-MM-DD)") from None
    return dt.datetime.combine(day, dt.time(23, 59))
