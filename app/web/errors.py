"""Every error answers JSON {"detail": ...}: bad input gets a 4xx saying what is wrong."""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.routing import Route

from app.engine import InputError
from app.web.serialize import OrjsonResponse

log = logging.getLogger("app")


# What a 422 shows of the input: at most MAX_ERRORS errors, and each part of an error's location
# (a key the body used, which can be a megabyte long) cut to LOC_CHARS characters.
MAX_ERRORS = 10
LOC_CHARS = 40


def _clean(error: Any, prefix: tuple[str, ...]) -> dict[str, Any]:
    """Pydantic's error without the echoed input, which can be megabytes."""
    parts = (str(part) for part in error.get("loc", ()))
    loc = [*prefix, *(p if len(p) <= LOC_CHARS else p[:LOC_CHARS] + "..." for p in parts)]
    return {"loc": loc, "msg": error.get("msg", ""), "type": error.get("type", "")}


async def validation_error(request: Request, exc: Exception) -> OrjsonResponse:
    assert isinstance(exc, RequestValidationError | ValidationError)
    prefix = ("body",) if isinstance(exc, ValidationError) else ()
    errors = exc.errors()
    detail = [_clean(e, prefix) for e in errors[:MAX_ERRORS]]
    if len(errors) > MAX_ERRORS:
        more = f"{len(errors) - MAX_ERRORS:,} more errors not shown"
        detail.append({"loc": [], "msg": more, "type": "more_errors"})
    return OrjsonResponse({"detail": detail}, status_code=422)


async def input_error(request: Request, exc: Exception) -> OrjsonResponse:
    """Every error our own layers raise for input the user sent (InputError and its kinds)."""
    assert isinstance(exc, InputError)
    return OrjsonResponse({"detail": str(exc)}, status_code=exc.status)


async def http_error(request: Request, exc: Exception) -> OrjsonResponse:
    assert isinstance(exc, HTTPException)
    headers = exc.headers
    if exc.status_code == 405:
        # Starlette's Allow names the methods of the first route of the path only; GET and
        # POST /try are two routes
        headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
    return OrjsonResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app answers at this request's path."""
    methods: set[str] = set()
    for route in request.app.routes:
        if isinstance(route, Route) and route.methods and route.path_regex.match(request.url.path):
            methods |= route.methods
    return sorted(methods)


async def server_error(request: Request, exc: Exception) -> OrjsonResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return OrjsonResponse({"detail": "internal server error"}, status_code=500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(ValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(InputError, input_error)
    app.add_exception_handler(Exception, server_error)
