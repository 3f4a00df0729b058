"""The sink's web side: a page to read caught mail, a JSON API for tests, fault controls.

Pages: ``/`` (every message), ``/messages/{id}`` (headers, rendered HTML, text part),
``/messages/{id}/raw``. API: ``GET /api/messages[?to=addr]``, ``GET /api/messages/{id}``,
``DELETE /api/messages``, ``GET|POST|DELETE /api/faults``, ``GET /api/health``.
"""

from __future__ import annotations

from html import escape
from typing import Any

from aiohttp import web

from cairn_devstack.mailsink.faults import SmtpFaults
from cairn_devstack.mailsink.store import MessageStore

__all__ = ["make_web_app"]

STORE: web.AppKey[MessageStore] = web.AppKey("store", MessageStore)
FAULTS: web.AppKey[SmtpFaults] = web.AppKey("faults", SmtpFaults)

_STYLE = """<style>body{font-family:system-ui,sans-serif;margin:2em}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;
vertical-align:top}iframe{width:100%;height:480px;border:1px solid #ccc}
pre{background:#f6f6f6;padding:1em;white-space:pre-wrap}</style>"""


def _page(title: str, body: str, refresh: bool = False) -> web.Response:
    meta = '<meta http-equiv="refresh" content="5">' if refresh else ""
    return web.Response(
        text=f"<!doctype html><meta charset=utf-8>{meta}<title>{escape(title)}</title>"
        f"{_STYLE}{body}",
        content_type="text/html",
    )


def _links(links: list[str]) -> str:
    return "<br>".join(f'<a href="{escape(u)}">{escape(u)}</a>' for u in links)


async def _index(request: web.Request) -> web.Response:
    rows = "".join(
        f"<tr><td><a href='/messages/{m['id']}'>#{m['id']}</a></td>"
        f"<td>{escape(m['received_at'])}</td><td>{escape(m['from'])}</td>"
        f"<td>{escape(', '.join(m['to']))}</td>"
        f"<td><a href='/messages/{m['id']}'>{escape(m['subject'] or '(no subject)')}</a></td>"
        f"<td>{_links(m['links'])}</td></tr>"
        for m in reversed(request.app[STORE].all())
    )
    clear = (
        "<button onclick=\"fetch('/api/messages',{method:'DELETE'})"
        '.then(()=>location.reload())">Clear all</button>'
    )
    return _page(
        "Cairn mail sink",
        f"<h1>Cairn mail sink</h1><p>{len(request.app[STORE].all())} message(s), newest first. "
        f"{clear}</p><table><tr><th>#</th><th>received</th><th>from</th><th>to</th>"
        f"<th>subject</th><th>links</th></tr>{rows}</table>",
        refresh=True,
    )


def _message_or_404(request: web.Request) -> dict[str, Any]:
    try:
        message = request.app[STORE].get(int(request.match_info["id"]))
    except ValueError:
        message = None
    if message is None:
        raise web.HTTPNotFound(text="no such message\n")
    return message


async def _message_page(request: web.Request) -> web.Response:
    m = _message_or_404(request)
    headers = "".join(f"<tr><th>{escape(n)}</th><td>{escape(v)}</td></tr>" for n, v in m["headers"])
    # sandbox: the email's HTML must not run scripts or navigate this page.
    rendered = (
        f'<iframe sandbox srcdoc="{escape(m["html"], quote=True)}"></iframe>'
        if m["html"]
        else "<p>(no HTML part)</p>"
    )
    text = f"<pre>{escape(m['text'])}</pre>" if m["text"] else "<p>(no text part)</p>"
    return _page(
        m["subject"] or "(no subject)",
        f"<p><a href='/'>&larr; all messages</a> · <a href='/messages/{m['id']}/raw'>raw</a></p>"
        f"<h1>{escape(m['subject'] or '(no subject)')}</h1>"
        f"<p>Envelope: from <b>{escape(m['from'])}</b> to <b>{escape(', '.join(m['to']))}</b>"
        f" at {escape(m['received_at'])}</p><table>{headers}</table>"
        f"<h2>HTML part</h2>{rendered}<h2>Text part</h2>{text}"
        f"<h2>Links</h2><p>{_links(m['links']) or '(none)'}</p>",
    )


async def _raw(request: web.Request) -> web.Response:
    return web.Response(text=_message_or_404(request)["raw"], content_type="text/plain")


async def _api_list(request: web.Request) -> web.Response:
    messages = request.app[STORE].all()
    to = request.query.get("to")
    if to:
        messages = [m for m in messages if to.lower() in (a.lower() for a in m["to"])]
    return web.json_response(messages)


async def _api_get(request: web.Request) -> web.Response:
    return web.json_response(_message_or_404(request))


async def _api_clear(request: web.Request) -> web.Response:
    request.app[STORE].clear()
    return web.json_response({"deleted": True})


async def _api_faults(request: web.Request) -> web.Response:
    return web.json_response(request.app[FAULTS].describe())


async def _api_set_faults(request: web.Request) -> web.Response:
    try:
        request.app[FAULTS].update(await request.json())
    except ValueError as exc:  # bad JSON is a ValueError too
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response(request.app[FAULTS].describe())


async def _api_clear_faults(request: web.Request) -> web.Response:
    request.app[FAULTS].clear()
    return web.json_response(request.app[FAULTS].describe())


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "messages": len(request.app[STORE].all())})


def make_web_app(store: MessageStore, faults: SmtpFaults) -> web.Application:
    """The aiohttp application over ``store`` and ``faults``."""
    app = web.Application()
    app[STORE] = store
    app[FAULTS] = faults
    app.router.add_get("/", _index)
    app.router.add_get("/messages/{id}", _message_page)
    app.router.add_get("/messages/{id}/raw", _raw)
    app.router.add_get("/api/messages", _api_list)
    app.router.add_get("/api/messages/{id}", _api_get)
    app.router.add_delete("/api/messages", _api_clear)
    app.router.add_get("/api/faults", _api_faults)
    app.router.add_post("/api/faults", _api_set_faults)
    app.router.add_delete("/api/faults", _api_clear_faults)
    app.router.add_get("/api/health", _health)
    return app
