"""Why a request has no tenant, as an RFC 9457 problem document.

The middleware sends it as ``application/problem+json``; the FastAPI dependencies
raise it inside an ``HTTPException`` that
:meth:`tenancy_fixtures.routing.fastapi.TenantDependencies.install` renders the same way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus

__all__ = ["PROBLEM_JSON", "TenantProblem"]

PROBLEM_JSON = "application/problem+json"


class TenantProblem(Exception):
    """The request names no tenant, an invalid one, or one that is unknown or inactive.

    ``status`` is 400 (no tenant given), 401 (a token that does not verify) or 404
    (unknown, inactive or malformed tenant id); ``headers`` go on the response
    (``WWW-Authenticate`` for 401).
    """

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        tenant_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.tenant_id = tenant_id
        self.headers = dict(headers or {})

    @property
    def title(self) -> str:
        """The status phrase: ``Not Found``, ``Bad Request``..."""
        return HTTPStatus(self.status).phrase

    def document(self) -> dict[str, object]:
        """The problem document (``type``, ``title``, ``status``, ``detail``)."""
        body: dict[str, object] = {
            "type": "about:blank",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.tenant_id is not None:
            body["tenant_id"] = self.tenant_id
        return body

    def body(self) -> bytes:
        """The document encoded as the response body."""
        return json.dumps(self.document()).encode()
