"""Each staff page reads one snapshot of the database.

A report page adds up many reads (ten reports, their stops, the rollup, the raw days).
Were the daily job (``vanbox prune``) to commit its fold between two of them, one page
could count a day twice, raw and folded. So a staff page's GET runs inside
``store.snapshot()`` (SQLite: one read transaction on the thread's reader; PostgreSQL:
``REPEATABLE READ READ ONLY``), from before the view until the response is made. Posts
write and read back what they wrote, so they read as before; public pages read one row
each and stay as light as they are.
"""

from __future__ import annotations

from contextlib import ExitStack

from flask import Flask, current_app, g, request

from . import appctx

READ_METHODS = frozenset({"GET", "HEAD"})


def _wanted() -> bool:
    bp = request.blueprint or ""
    return request.method in READ_METHODS and bp.startswith("staff")


def _open() -> None:
    if _wanted() and "vanbox_store" in current_app.extensions:
        stack = ExitStack()
        stack.enter_context(appctx.store().snapshot())
        g.vanbox_snapshot = stack


def _close(_exc: BaseException | None) -> None:
    stack = g.pop("vanbox_snapshot", None)
    if stack is not None:
        stack.close()


def init_app(app: Flask) -> None:
    app.before_request(_open)
    app.teardown_request(_close)
