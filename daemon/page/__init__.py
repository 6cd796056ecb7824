"""The operator's page: a live view, a trend, alarms and the review queue, for a shift.

`server` serves it (Starlette on uvicorn, in its own thread), `accounts` says who is logged in,
`alarms` says what is wrong and what to check; the page itself is in `assets/`.
"""

from lineside.daemon.page.server import Page, PageSource

__all__ = ["Page", "PageSource"]
