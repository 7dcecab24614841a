"""Every error answers JSON {"detail": sentence, "code": snake_case name, "params": {...}}: bad
input gets a 4xx saying what is wrong, in a sentence for a reader and as a stable code with the
values in that sentence for a client that says it in its own language (the pages do). Every 4xx
is built here, the middleware's included (error_body)."""

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.routing import Match

from app.engine import InputError
from app.web.serialize import OrjsonResponse

log = logging.getLogger("app")


# What a 422 shows of the input: at most MAX_ERRORS errors, and each part of an error's location
# (a key the body used, which can be a megabyte long) cut to LOC_CHARS characters.
MAX_ERRORS = 10
LOC_CHARS = 40
# Where pydantic says a value came from: not part of the field's name.
SOURCES = frozenset({"body", "query", "path", "header", "cookie"})

# The codes of the errors that starlette raises as HTTPException, by status.
HTTP_CODES: dict[int, str] = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    429: "training_busy",
}

VALIDATION_CODES = {"missing": "field_missing", "extra_forbidden": "field_unknown"}
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# Sentences for starlette's own 404 and 405, whose detail is the status phrase.
HTTP_SENTENCES: dict[int, str] = {
    404: "nothing here: {path} is not a page or route of this app",
    405: "{method} is not allowed here; this path answers {allowed}",
}


def error_content(
    detail: str, code: str, params: dict[str, Any] | None = None, **more: Any
) -> dict[str, Any]:
    """The one shape of every 4xx answer."""
    return {"detail": detail, "code": code, "params": params or {}, **more}


def error_body(detail: str, code: str, params: dict[str, Any] | None = None) -> bytes:
    """The JSON of an error answer, for the ASGI layers that answer before the app does."""
    return orjson.dumps(error_content(detail, code, params))


def error_answer(
    status: int,
    detail: str,
    code: str,
    params: dict[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> OrjsonResponse:
    return OrjsonResponse(error_content(detail, code, params), status_code=status, headers=headers)


def _clean(error: Any, prefix: tuple[str, ...]) -> dict[str, Any]:
    """Pydantic's error without the echoed input, which can be megabytes."""
    parts = (str(part) for part in error.get("loc", ()))
    loc = [*prefix, *(p if len(p) <= LOC_CHARS else p[:LOC_CHARS] + "..." for p in parts)]
    return {"loc": loc, "msg": error.get("msg", ""), "type": error.get("type", "")}


def field_name(loc: list[str]) -> str:
    """A location as the name of the field it points at: ["body", "weight", "3"] -> weight[3]."""
    parts = loc[1:] if loc and loc[0] in SOURCES else loc
    if not parts:
        return "body"
    return parts[0] + "".join(f"[{p}]" for p in parts[1:])


def validation_sentence(
    errors: list[dict[str, Any]], total: int
) -> tuple[str, str, dict[str, Any]]:
    """Pydantic's errors as one sentence naming the first field and saying pydantic's reason,
    its code and params: a missing field (field_missing), one the route does not take
    (field_unknown), or a value it cannot use (field_invalid)."""
    first = errors[0]
    field = field_name(first["loc"])
    more = total - 1
    code = VALIDATION_CODES.get(first["type"], "field_invalid")
    reason = first["msg"][:1].lower() + first["msg"][1:]
    sentence = f"{field}: {reason}"
    if more:
        sentence += f" (and {more:,} more problem{'s' if more > 1 else ''})"
    return sentence + ".", code, {"field": field, "reason": first["msg"], "more": more}


def validation_content(raw: list[Any], prefix: tuple[str, ...] = ()) -> dict[str, Any]:
    """A 422's body for pydantic's errors (ValidationError.errors()): a sentence naming the
    field, with the errors (without the input they echo, at most MAX_ERRORS) under `errors`
    for a client that wants them all. Any parser of a request body answers its validation
    errors with this."""
    errors = [_clean(e, prefix) for e in raw[:MAX_ERRORS]]
    if not errors:
        return error_content("the request is not valid.", "field_invalid", {"field": "body"})
    detail, code, params = validation_sentence(errors, len(raw))
    if len(raw) > MAX_ERRORS:
        more = f"{len(raw) - MAX_ERRORS:,} more errors not shown"
        errors.append({"loc": [], "msg": more, "type": "more_errors"})
    return error_content(detail, code, params, errors=errors)


async def validation_error(request: Request, exc: Exception) -> OrjsonResponse:
    assert isinstance(exc, RequestValidationError | ValidationError)
    prefix = ("body",) if isinstance(exc, ValidationError) else ()
    return OrjsonResponse(validation_content(list(exc.errors()), prefix), status_code=422)


async def input_error(request: Request, exc: Exception) -> OrjsonResponse:
    """Every error our own layers raise for input the user sent (InputError and its kinds)."""
    assert isinstance(exc, InputError)
    return error_answer(exc.status, str(exc), exc.code, exc.params)


async def http_error(request: Request, exc: Exception) -> OrjsonResponse:
    assert isinstance(exc, HTTPException)
    headers = exc.headers
    params: dict[str, Any] = {}
    if exc.status_code == 405:
        # Starlette's Allow names the methods of the first route of the path only; GET and
        # POST /try are two routes
        methods = allowed_methods(request)
        headers = {**(headers or {}), "Allow": ", ".join(methods)}
        params = {"method": request.method, "allowed": ", ".join(methods)}
    elif exc.status_code == 404:
        params = {"path": request.url.path[:200]}
    elif exc.status_code == 429 and exc.headers and "Retry-After" in exc.headers:
        params = {"seconds": int(exc.headers["Retry-After"])}
    code = HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    detail = str(exc.detail)
    if detail == HTTPStatus(exc.status_code).phrase:  # starlette's own: "Not Found"
        detail = HTTP_SENTENCES.get(exc.status_code, detail).format(**params)
    return error_answer(exc.status_code, detail, code, params, headers)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app answers at this request's path. Each route is asked
    whether it takes the request with that method (Route.matches), since FastAPI keeps the
    routes of an included router inside a route of its own, without methods to read."""
    found = []
    for method in METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            found.append(method)
    return found


async def server_error(request: Request, exc: Exception) -> OrjsonResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_answer(500, "internal server error", "internal_error")


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(ValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(InputError, input_error)
    app.add_exception_handler(Exception, server_error)
