"""The machine's ceiling: a bare Starlette JSON endpoint, served like the platform.

Run it as the benchmark runner does (uvicorn with uvloop and httptools, access log off)::

    uvicorn ceiling_app:app --app-dir bench --port 8090 --workers 1 \
        --loop uvloop --http httptools --no-access-log --log-level warning

and load ``GET /json`` with the same wrk settings as the FHIR read benchmark.

Whatever throughput the FHIR server reaches can be compared with this one: the same ASGI
server, framework and load generator, with no FHIR, storage or JSON work per request.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

_BODY = {"resourceType": "Parameters", "parameter": [{"name": "ok", "valueBoolean": True}]}


async def ceiling(request: Request) -> Response:
    """One small JSON document, the same for every request."""
    return JSONResponse(_BODY)


async def health(request: Request) -> Response:
    """Readiness probe, as the FHIR server's ``/health``."""
    return JSONResponse({"status": "ok"})


app = Starlette(routes=[Route("/json", ceiling), Route("/health", health)])
