"""The page's web server: routes for the live view, the state, the review queue and labels.

Served by the daemon (Starlette on uvicorn, in its own thread, only when `ui:` is configured).
It reads what the station keeps: the latest result (kept by `sinks.page.PageSink`, a reference
and a trend point per inspection, nothing rendered), the station's health and the review store.
The overlay is rendered when a browser asks for it, at the page's rate, never on the frame
thread, and not at all while no page is open. Every route but the login and the page's script
and style needs the session cookie set by logging in with an operator's password (or the
password as a bearer header); labelling is a POST, recorded under the operator's name.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from lineside.daemon.config import Ui
from lineside.daemon.core import heatmap
from lineside.daemon.page.accounts import SESSION_S, Sessions
from lineside.daemon.page.alarms import alarms
from lineside.daemon.sinks.page import PageSink
from lineside.daemon.sinks.review import FRAME, HEATMAP, NotInStore, ReviewStore
from lineside.daemon.transport.commands import CommandError, check_label
from lineside.deploy.manifest import VERDICTS

log = logging.getLogger(__name__)

COOKIE = "lineside_session"
REVIEW_ROWS = 60
ITEM_FILES = (FRAME, HEATMAP)  # what the page may fetch of a kept part
ASSETS = {"page.js": "text/javascript", "page.css": "text/css"}  # served without a login
PROTECTED = ("/api/", "/events", "/live", "/review/")


@dataclass(frozen=True)
class PageSource:
    """What the page reads of the station, and the one thing it may do: record a label."""

    station: str
    health: Callable[[], dict]
    state: Callable[[], dict]  # the drift monitor's and the review queue's state
    review: ReviewStore | None
    record_label: Callable[..., dict]  # (seq, part_id, label, by, note) -> the label message
    outbox_rows: int  # the outbox's capacity, for its banner


class Page:
    def __init__(self, cfg: Ui, accounts: dict[str, str], source: PageSource, sink: PageSink):
        self.cfg, self.source, self.sink = cfg, source, sink
        self.sessions = Sessions(accounts)
        self._render_lock = threading.Lock()
        self._rendered: dict[bool, tuple[int, bytes]] = {}  # with the map or not -> seq, JPEG
        self._state: tuple[float, str] | None = None
        self.renders = 0
        app = Starlette(routes=self._routes())
        config = uvicorn.Config(
            app,
            host=cfg.bind,
            port=cfg.port,
            log_level="warning",
            timeout_graceful_shutdown=2,
            access_log=False,
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, name="page", daemon=True)

    def _routes(self) -> list[Route]:
        return [
            Route("/login", self.login_form, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/assets/{name}", self.asset),
            Route("/", self.index),
            Route("/events", self.events),
            Route("/api/state", self.state_json),
            Route("/live.jpg", self.live),
            Route("/api/review", self.review_list),
            Route("/api/part/{seq:int}", self.part),
            Route("/api/label", self.label, methods=["POST"]),
            Route("/review/{seq:int}/{name}", self.review_file),
        ]

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            if not self._thread.is_alive():
                break
            time.sleep(0.05)
        if not self.server.started:
            raise OSError(f"the page cannot listen on {self.cfg.bind}:{self.cfg.port}")
        log.info("page on http://%s:%d/", self.cfg.bind, self.cfg.port)

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=5)

    # --- login ---------------------------------------------------------------------------------

    def _operator(self, request: Request) -> str | None:
        """The name of the operator the request comes from; None when not logged in."""
        name = self.sessions.name(request.cookies.get(COOKIE))
        if name is not None:
            return name
        bearer = request.headers.get("authorization", "")
        return self.sessions.who(bearer[7:]) if bearer.startswith("Bearer ") else None

    def _refuse(self, request: Request) -> Response:
        if request.url.path.startswith(PROTECTED):
            return JSONResponse({"error": "log in first"}, status_code=401)
        return RedirectResponse("/login", status_code=303)

    async def login_form(self, request: Request) -> Response:
        return HTMLResponse(_asset("login.html"))

    async def login(self, request: Request) -> Response:
        form = await request.form()
        name = self.sessions.who(str(form.get("password", "")))
        if name is None:
            await asyncio.sleep(1.0)  # slows guessing
            page = _asset("login.html").replace("<!--error-->", "Wrong password.")
            return HTMLResponse(page, 401)
        log.info("page: %s logged in", name)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            COOKIE, self.sessions.open(name), max_age=SESSION_S, httponly=True, samesite="strict"
        )
        return response

    async def logout(self, request: Request) -> Response:
        self.sessions.close(request.cookies.get(COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    async def asset(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ASSETS:
            return Response(status_code=404)
        return Response(_asset(name), media_type=ASSETS[name])

    # --- the live view -------------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        operator = self._operator(request)
        if operator is None:
            return self._refuse(request)
        page = _asset("page.html").replace("{{operator}}", html.escape(operator))
        return HTMLResponse(page.replace("{{station}}", html.escape(self.source.station)))

    def state_text(self) -> str:
        """The state as JSON, computed at most once per `refresh_s` however many pages are open."""
        now = time.monotonic()
        cached = self._state
        if cached is None or now - cached[0] >= self.cfg.refresh_s * 0.9:
            cached = self._state = (now, json.dumps(self.state()))
        return cached[1]

    def state(self) -> dict:
        health = self.source.health()
        values = self.sink.view.values(health)
        stats = self.source.state()
        latest = self.sink.latest
        return {
            "station": self.source.station,
            "seq": values["Inspection/Seq"],
            "part_id": values["Inspection/PartId"] or None,
            "verdict": values["Inspection/Verdict"],
            "score": values["Inspection/Score"],
            "regions": len(latest.inspection.regions) if latest else 0,
            "review_at": values["Thresholds/ReviewAt"],
            "fail_at": values["Thresholds/FailAt"],
            "counts": {v: values[f"Counts/{v.capitalize()}"] for v in VERDICTS},
            "fps": values["Rates/InspectedFps"],
            "dropped": values["Camera/DroppedFrames"],
            "camera": health["camera"],
            "broker": "connected" if health["mqtt_connected"] else "disconnected",
            "outbox": health["outbox_depth"],
            "model": health["model"],
            "drift": stats["drift"],
            "review": stats["review"],
            "alarms": alarms(
                health, stats["drift"], self.source.outbox_rows, self.cfg.outbox_alarm_share
            ),
            "trend": self.sink.points(),
            "trend_s": self.sink.trend_s,
            "refresh_s": self.cfg.refresh_s,
            "now": round(time.time(), 1),
        }

    async def state_json(self, request: Request) -> Response:
        if self._operator(request) is None:
            return self._refuse(request)
        return JSONResponse(self.state())

    async def events(self, request: Request) -> Response:
        """Server-sent events: the state at the page's rate, while the page is open."""
        if self._operator(request) is None:
            return self._refuse(request)

        async def stream():
            while not self.server.should_exit and not await request.is_disconnected():
                yield f"data: {self.state_text()}\n\n"
                await asyncio.sleep(self.cfg.refresh_s)

        return StreamingResponse(stream(), media_type="text/event-stream")

    def live(self, request: Request) -> Response:
        """The latest frame with its heatmap (`?map=0`: outlines only) and outlines, rendered once
        per inspection shown (several open pages share it). A plain function: Starlette runs it
        in a worker thread."""
        if self._operator(request) is None:
            return self._refuse(request)
        result = self.sink.latest
        if result is None:
            return Response(status_code=204)
        with_map = request.query_params.get("map", "1") != "0"
        with self._render_lock:
            done = self._rendered.get(with_map)
            if done is None or done[0] != result.seq:
                threshold = result.bundle.manifest.postprocess.pixel_threshold
                overlay = heatmap.render(result.frame.image, result.inspection, threshold, with_map)
                done = self._rendered[with_map] = (result.seq, heatmap.encode_jpeg(overlay, 80))
                self.renders += 1
        return Response(done[1], media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    # --- the review queue ----------------------------------------------------------------------

    def review_list(self, request: Request) -> Response:
        """The kept parts, newest first: `?verdict=review|fail|pass` and
        `?decided=yes|no` filter them."""
        if self._operator(request) is None:
            return self._refuse(request)
        store = self.source.review
        if store is None:
            return JSONResponse({"items": [], "enabled": False})
        verdict = request.query_params.get("verdict") or None
        decided = {"yes": True, "no": False}.get(request.query_params.get("decided", ""))
        if verdict is not None and verdict not in VERDICTS:
            return JSONResponse({"error": f"verdict must be one of {', '.join(VERDICTS)}"}, 400)
        rows = store.listing(verdict, decided, REVIEW_ROWS)
        return JSONResponse({"items": rows, "enabled": True, **store.counts()})

    def part(self, request: Request) -> Response:
        """One kept part: its inspection (regions, score, thresholds, model) and decision."""
        if self._operator(request) is None:
            return self._refuse(request)
        store = self.source.review
        if store is None:
            return JSONResponse({"error": "the review queue is turned off"}, 404)
        try:
            doc = store.read(request.path_params["seq"])
        except (OSError, ValueError):
            return JSONResponse({"error": "no such kept part (removed by the limits?)"}, 404)
        for region in doc.get("regions", []):
            region.pop("contour", None)  # drawn on the heatmap image; the page lists the rest
        return JSONResponse(doc)

    def review_file(self, request: Request) -> Response:
        if self._operator(request) is None:
            return self._refuse(request)
        name, seq = request.path_params["name"], request.path_params["seq"]
        store = self.source.review
        if store is None or name not in ITEM_FILES:
            return Response(status_code=404)
        path = Path(store.root) / f"{seq:012d}" / name
        try:
            return Response(path.read_bytes(), media_type="image/jpeg")
        except OSError:
            return Response(status_code=404)

    async def label(self, request: Request) -> Response:
        """`{"seq": N, "label": "good" | "defective", "note": "..."}`, recorded under the name
        of the operator who sent it."""
        operator = self._operator(request)
        if operator is None:
            return self._refuse(request)
        try:
            doc = await request.json()
            note = str(doc.get("note") or "").strip() or None
            decision = {"seq": doc["seq"], "label": doc["label"], "note": note}
        except (ValueError, KeyError, TypeError, AttributeError):
            return JSONResponse({"error": 'expected {"seq": N, "label": ...}'}, 400)
        try:
            check_label(decision)  # the checks of `cmd/label`
        except CommandError as exc:
            return JSONResponse({"error": str(exc)}, 400)
        seq, label = decision["seq"], decision["label"]
        try:
            message = await asyncio.to_thread(
                self.source.record_label, seq, None, label, operator, note
            )
        except NotInStore as exc:
            return JSONResponse({"error": str(exc)}, 404)
        return JSONResponse(message)


def _asset(name: str) -> str:
    return resources.files("lineside.daemon.page").joinpath("assets", name).read_text()
