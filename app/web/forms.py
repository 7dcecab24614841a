"""Multipart forms read by the route itself, checked by one pydantic model, as FastAPI would.

FastAPI works out a route's Form and File parameters anew on every request, from their
annotations: for /predict's six fields that took 0.3-0.4 ms of CPU a request on the loaded
development machine, as much as the Net's forward pass on one picture (`python -m
bench.inprocess predict1`, against the same route reading its form as below). A route that takes
a FormModel instead reads the form as FastAPI does, with Starlette's parser (the same caps and
400s; a small plain body is split by the code at the end of this module, to the same form),
picks each field's value by FastAPI's rules (a list field takes every value of its name, any
other field the last one; an empty string or an empty file input counts as absent) and
validates them in one go, so that a 422 lists the same errors, located in "body"
(app.web.errors adds the prefix)."""

import io
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from typing import Any, Self, get_args, get_origin

from fastapi import Request
from pydantic import BaseModel
from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData, Headers, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import _user_safe_decode


class FormModel(BaseModel):
    """The fields of a multipart form; fastapi.UploadFile for a file part."""

    @classmethod
    def of(cls, form: FormData) -> Self:
        """The model of a parsed form; pydantic's ValidationError (a 422) for a bad value."""
        values: dict[str, Any] = {}
        lists = _list_fields(cls)
        for name in cls.model_fields:
            if name in lists:
                items = [item for item in form.getlist(name) if not _empty_file(item)]
                if items:
                    values[name] = items
            else:
                value = form.get(name)
                if value is not None and value != "" and not _empty_file(value):
                    values[name] = value
        return cls.model_validate(values)

    @classmethod
    def openapi_body(cls) -> dict[str, Any]:
        """The requestBody of a route that reads its form itself (the schema /docs shows)."""
        return {
            "required": True,
            "content": {"multipart/form-data": {"schema": cls.model_json_schema()}},
        }


@cache
def _list_fields(model: type[BaseModel]) -> frozenset[str]:
    """The fields that take every value of their name: list, or list | None."""
    return frozenset(
        name
        for name, field in model.model_fields.items()
        if any(get_origin(kind) is list for kind in (field.annotation, *get_args(field.annotation)))
    )


def _empty_file(value: Any) -> bool:
    """What a browser sends for a file input left empty: no name, no bytes."""
    return isinstance(value, UploadFile) and value.filename == "" and value.size == 0


@asynccontextmanager
async def read_form(request: Request) -> AsyncIterator[FormData]:
    """The request's form (its files in memory: see create_app), closed on the way out.

    A body that is not multipart (or urlencoded) reads as an empty form, as with FastAPI; a
    malformed one is a 400 with the parser's reason."""
    try:
        form = await _simple_form(request) or await request.form()
    except HTTPException:  # Starlette's 400 for a malformed multipart body
        raise
    except Exception as exc:  # as FastAPI answers any other failure to read the form
        raise HTTPException(400, "There was an error parsing the body") from exc
    try:
        yield form
    finally:
        await form.close()


# Small multipart bodies are split by the code below rather than by Starlette's parser, which
# walks each part's headers a byte at a time in Python: 0.95 ms for the 64 parts of 32 CIFAR-10
# JPEGs and their labels. This takes only the plainest form, the one browsers and HTTP clients
# write; anything else (a preamble or epilogue, other headers or spacing, escaped or quoted
# characters in a name, a charset, more parts than Starlette allows) goes to Starlette's parser,
# which gives the form or the 400 it always gave. Bounded: bodies of SIMPLE_FORM_BYTES at most.
SIMPLE_FORM_BYTES = 64 * 1024
MAX_FILES = MAX_FIELDS = 1000  # Starlette's defaults for Request.form(), which FastAPI keeps
_DISPOSITION = re.compile(rb'form-data; name="([^"\\;\r\n]*)"(?:; filename="([^"\\;\r\n]*)")?')


async def _simple_form(request: Request) -> FormData | None:
    """The form of a small, plainly written multipart body, or None for any other body (which
    Starlette's parser then reads, from the body read here)."""
    length = request.headers.get("content-length", "")
    if not (length.isdigit() and int(length) <= SIMPLE_FORM_BYTES):
        return None
    kind, params = parse_options_header(request.headers.get("content-type"))
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary or b"charset" in params:
        return None
    return simple_multipart(await request.body(), boundary)


def simple_multipart(body: bytes, boundary: bytes) -> FormData | None:
    """The form Starlette's MultiPartParser makes of `body` (in utf-8, its default), or None
    where the body is not of the plain form read here."""
    # --boundary CRLF part CRLF --boundary CRLF part ... CRLF --boundary-- CRLF, each part its
    # header lines, an empty line, then its bytes
    pieces = (b"\r\n" + body).split(b"\r\n--" + boundary)
    if len(pieces) < 3 or pieces[0] or pieces[-1] != b"--\r\n":
        return None
    items: list[tuple[str, str | UploadFile]] = []
    files = fields = 0
    for piece in pieces[1:-1]:
        part = _plain_part(piece)
        if part is None:
            return None
        name, filename, headers, data = part
        if filename is None:
            fields += 1
            items.append((name, _user_safe_decode(data, "utf-8")))
        else:
            files += 1
            items.append((name, _upload(data, filename, headers)))
        if files > MAX_FILES or fields > MAX_FIELDS:
            return None
    return FormData(items)


def _plain_part(piece: bytes) -> tuple[str, str | None, list[tuple[bytes, bytes]], bytes] | None:
    """(name, filename or None, headers, bytes) of a part with a Content-Disposition header
    and perhaps a Content-Type, each written as `Name: value`; None for any other."""
    head, blank, data = piece.partition(b"\r\n\r\n")
    if not blank or not head.startswith(b"\r\n"):
        return None
    headers: list[tuple[bytes, bytes]] = []
    for line in head[2:].split(b"\r\n"):
        name, colon, value = line.partition(b": ")
        if not colon or value != value.strip() or b"\r" in line or b"\n" in line:
            return None
        headers.append((name.lower(), value))
    if [name for name, _ in headers] not in ([b"content-disposition"], _BOTH_HEADERS):
        return None
    disposition = _DISPOSITION.fullmatch(headers[0][1])
    if disposition is None:
        return None
    filename = None if disposition[2] is None else _user_safe_decode(disposition[2], "utf-8")
    return _user_safe_decode(disposition[1], "utf-8"), filename, headers, data


_BOTH_HEADERS = [b"content-disposition", b"content-type"]


class InMemoryFile(io.BytesIO):
    """A file part's bytes, in memory. Starlette's parser keeps a part in a
    SpooledTemporaryFile, which never spills here (the body cap keeps every part under its
    max_size); this is the same bytes in a BytesIO, without the spooling (3.6 us a part, 115 us
    for 32 pictures), and `_rolled` is how UploadFile tells a file in memory from one on disk
    (SpooledTemporaryFile's own flag), so that reading and closing it stay on the loop."""

    _rolled = False


def _upload(data: bytes, filename: str, headers: list[tuple[bytes, bytes]]) -> UploadFile:
    """A file part as Starlette's parser keeps it: in memory, at its start (closed with the
    form, by read_form, as Starlette's parser leaves its files)."""
    raw = Headers(raw=headers)
    return UploadFile(file=InMemoryFile(data), size=len(data), filename=filename, headers=raw)
