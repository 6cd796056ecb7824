"""The operator's page: live view, score trend, station state, and the review queue to label.

Served by the daemon (Starlette on uvicorn, in its own thread, only when `ui:` is configured).
It reads what the station keeps: the latest result (kept by `sinks.page.PageSink`, a reference
and a trend point per inspection, nothing rendered), the station's health and the review store.
The overlay is rendered when a browser asks for it, at the page's rate, never on the frame
thread, and not at all while no page is open. Every route but the login needs the session
cookie set by logging in with the token (or the token as a bearer header); labelling is a POST.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
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
from lineside.daemon.sinks.page import PageSink
from lineside.daemon.sinks.review import FRAME, HEATMAP, NotInStore, ReviewStore
from lineside.deploy.contract import LABELS
from lineside.deploy.manifest import VERDICTS

log = logging.getLogger(__name__)

COOKIE = "lineside_session"
SESSION_S = 12 * 3600
REVIEW_ROWS = 60
ITEM_FILES = (FRAME, HEATMAP)  # what the page may fetch of a kept part


@dataclass(frozen=True)
class PageSource:
    """What the page reads of the station, and the one thing it may do: record a label."""

    station: str
    health: Callable[[], dict]
    state: Callable[[], dict]  # the drift monitor's and the review queue's state
    review: ReviewStore | None
    record_label: Callable[[int | None, str | None, str, str | None], dict]


class Page:
    def __init__(self, cfg: Ui, token: str, source: PageSource, sink: PageSink) -> None:
        self.cfg, self.token, self.source, self.sink = cfg, token, source, sink
        self._sessions: dict[str, float] = {}
        self._render_lock = threading.Lock()
        self._rendered: tuple[int, bytes] | None = None
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
            Route("/", self.index),
            Route("/events", self.events),
            Route("/api/state", self.state_json),
            Route("/live.jpg", self.live),
            Route("/api/review", self.review_list),
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

    def _authorized(self, request: Request) -> bool:
        session = request.cookies.get(COOKIE)
        if session and self._sessions.get(session, 0) > time.time():
            return True
        bearer = request.headers.get("authorization", "")
        return bearer.startswith("Bearer ") and hmac.compare_digest(
            bearer[7:].encode(), self.token.encode()
        )

    def _refuse(self, request: Request) -> Response:
        if request.url.path.startswith(("/api/", "/events", "/live", "/review/")):
            return JSONResponse({"error": "log in first"}, status_code=401)
        return RedirectResponse("/login", status_code=303)

    async def login_form(self, request: Request) -> Response:
        return HTMLResponse(_asset("login.html"))

    async def login(self, request: Request) -> Response:
        form = await request.form()
        given = str(form.get("token", ""))
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            await asyncio.sleep(1.0)  # slows guessing
            return HTMLResponse(_asset("login.html").replace("<!--error-->", "Wrong token."), 401)
        session = secrets.token_urlsafe(32)
        now = time.time()
        self._sessions = {s: t for s, t in self._sessions.items() if t > now}
        self._sessions[session] = now + SESSION_S
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(COOKIE, session, max_age=SESSION_S, httponly=True, samesite="strict")
        return response

    # --- the live view -------------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        if not self._authorized(request):
            return self._refuse(request)
        return HTMLResponse(_asset("page.html"))

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
        return {
            "station": self.source.station,
            "seq": values["Inspection/Seq"],
            "verdict": values["Inspection/Verdict"],
            "score": values["Inspection/Score"],
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
            "trend": self.sink.points(),
        }

    async def state_json(self, request: Request) -> Response:
        if not self._authorized(request):
            return self._refuse(request)
        return JSONResponse(self.state())

    async def events(self, request: Request) -> Response:
        """Server-sent events: the state at the page's rate, while the page is open."""
        if not self._authorized(request):
            return self._refuse(request)

        async def stream():
            while not self.server.should_exit and not await request.is_disconnected():
                yield f"data: {self.state_text()}\n\n"
                await asyncio.sleep(self.cfg.refresh_s)

        return StreamingResponse(stream(), media_type="text/event-stream")

    def live(self, request: Request) -> Response:
        """The latest frame with its heatmap and outlines, rendered once per inspection shown
        (several open pages share it). A plain function: Starlette runs it in a worker thread."""
        if not self._authorized(request):
            return self._refuse(request)
        result = self.sink.latest
        if result is None:
            return Response(status_code=204)
        with self._render_lock:
            if self._rendered is None or self._rendered[0] != result.seq:
                threshold = result.bundle.manifest.postprocess.pixel_threshold
                overlay = heatmap.render(result.frame.image, result.inspection, threshold)
                self._rendered = (result.seq, heatmap.encode_jpeg(overlay, 80))
                self.renders += 1
            data = self._rendered[1]
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    # --- the review queue ----------------------------------------------------------------------

    def review_list(self, request: Request) -> Response:
        if not self._authorized(request):
            return self._refuse(request)
        store = self.source.review
        if store is None:
            return JSONResponse({"items": [], "enabled": False})
        rows = []
        for seq in reversed(store.items()[-REVIEW_ROWS:]):
            try:
                doc = store.read(seq)
            except (OSError, ValueError):
                continue  # removed by the limits while listing
            rows.append(
                {
                    "seq": seq,
                    "part_id": doc.get("part_id"),
                    "verdict": doc["verdict"],
                    "score": doc["score"],
                    "inspected_at": doc.get("inspected_at"),
                    "label": (doc.get("labelled") or {}).get("label"),
                }
            )
        return JSONResponse({"items": rows, "enabled": True})

    def review_file(self, request: Request) -> Response:
        if not self._authorized(request):
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
        if not self._authorized(request):
            return self._refuse(request)
        try:
            doc = await request.json()
            seq, label = int(doc["seq"]), str(doc["label"])
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": 'expected {"seq": N, "label": ...}'}, 400)
        if label not in LABELS:
            return JSONResponse({"error": f"label must be one of {', '.join(LABELS)}"}, 400)
        try:
            message = await asyncio.to_thread(self.source.record_label, seq, None, label, "page")
        except NotInStore as exc:
            return JSONResponse({"error": str(exc)}, 404)
        return JSONResponse(message)


def _asset(name: str) -> str:
    return resources.files("lineside.daemon").joinpath("assets", name).read_text()
