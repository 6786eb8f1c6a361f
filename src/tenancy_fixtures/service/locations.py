"""``Location`` headers as a client must follow them: under the path the service is
served at (the ASGI ``root_path``, ``uvicorn --root-path /api`` behind a proxy), as the
problems' ``instance`` and the dashboard's redirects are."""

from __future__ import annotations

from starlette.requests import Request

__all__ = ["location"]


def location(request: Request, path: str) -> str:
    """``path`` (``/tenants/...``) as the client reaches it."""
    return f"{request.scope.get('root_path', '')}{path}"
