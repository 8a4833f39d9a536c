"""`/docs`: the API reference as one self-contained HTML page, rendered from the OpenAPI document.

FastAPI's interactive pages load their scripts from a CDN; payoff works offline, so its
reference page is plain HTML made here, with no script, font or style from elsewhere.
"""

from __future__ import annotations

import html
import json
from typing import Any

STYLE = (
    "body{font:15px/1.45 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
    "code,pre{font-family:ui-monospace,monospace}pre{background:#f5f5f5;padding:.5rem;"
    "overflow:auto}h2{margin-top:2rem;border-top:1px solid #ddd;padding-top:1rem}"
    ".m{display:inline-block;min-width:4rem;font-weight:bold}"
)


def _parameters(operation: dict[str, Any]) -> str:
    rows = "".join(
        f"<li><code>{html.escape(p['name'])}</code> ({html.escape(p['in'])}"
        f"{', required' if p.get('required') else ''})"
        f"{' — ' + html.escape(p['description']) if p.get('description') else ''}</li>"
        for p in operation.get("parameters", [])
    )
    return f"<ul>{rows}</ul>" if rows else ""


def _body(operation: dict[str, Any]) -> str:
    content = operation.get("requestBody", {}).get("content", {})
    if not content:
        return ""
    kinds = ", ".join(f"<code>{html.escape(kind)}</code>" for kind in content)
    shown = "".join(
        _example(kind, example)
        for kind, media in content.items()
        for example in media.get("examples", {}).values()
    )
    return f"<p>Body: {kinds}</p>{shown}"


def _example(kind: str, example: dict[str, Any]) -> str:
    """One request example: a JSON value pretty-printed, a text body (JSON Lines) as sent."""
    value = example.get("value")
    body = value if isinstance(value, str) else json.dumps(value, indent=2)
    note = example.get("description", "")
    return (
        f"<p>Example ({html.escape(kind)}): {html.escape(example.get('summary', ''))}</p>"
        + (f"<p>{html.escape(note)}</p>" if note else "")
        + f"<pre>{html.escape(body)}</pre>"
    )


def _responses(operation: dict[str, Any]) -> str:
    codes = ", ".join(
        f"{html.escape(str(code))} {html.escape(answer.get('description', ''))}"
        for code, answer in operation.get("responses", {}).items()
    )
    return f"<p>Answers: {codes}</p>"


def render(openapi: dict[str, Any]) -> str:
    info = openapi.get("info", {})
    sections = []
    for path, methods in openapi.get("paths", {}).items():
        for method, operation in methods.items():
            sections.append(
                f"<h3><span class=m>{method.upper()}</span> <code>{html.escape(path)}</code></h3>"
                f"<p>{html.escape(operation.get('summary', ''))}</p>"
                f"<p>{html.escape(operation.get('description', ''))}</p>"
                + _parameters(operation)
                + _body(operation)
                + _responses(operation)
            )
    schemas = json.dumps(openapi.get("components", {}).get("schemas", {}), indent=2)
    return (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        f"<title>{html.escape(info.get('title', 'API'))} API</title><style>{STYLE}</style>"
        f"<h1>{html.escape(info.get('title', ''))} {html.escape(info.get('version', ''))}</h1>"
        f"<p>{html.escape(info.get('summary', ''))}</p>"
        "<p>Every <code>/v1</code> endpoint needs <code>Authorization: Bearer KEY</code>; this"
        " page, <code>/healthz</code> and the machine-readable document"
        " <a href=/openapi.json>/openapi.json</a> need none.</p>"
        "<h2>Endpoints</h2>" + "".join(sections) + "<h2>Schemas</h2>"
        f"<pre>{html.escape(schemas)}</pre></html>"
    )
