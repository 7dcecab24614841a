"""Multipart forms read by the route itself, checked by one pydantic model, as FastAPI would.

FastAPI works out a route's Form and File parameters anew on every request, from their
annotations: for /predict's six fields that took about 0.3 ms of CPU a request, more than the
Net's forward pass on one picture (`python -m bench.inprocess predict1`, against the same route
reading its form as below). A route that takes a FormModel instead reads the form with Starlette's
parser, as FastAPI does (the same caps and the same 400s), picks each field's value by FastAPI's
rules (a list field takes every value of its name, any other field the last one; an empty string
or an empty file input counts as absent) and validates them in one go, so that a 422 lists the
same errors, located in "body" (app.web.errors adds the prefix)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from typing import Any, Self, get_args, get_origin

from fastapi import Request
from pydantic import BaseModel
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException


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
        form = await request.form()
    except HTTPException:  # Starlette's 400 for a malformed multipart body
        raise
    except Exception as exc:  # as FastAPI answers any other failure to read the form
        raise HTTPException(400, "There was an error parsing the body") from exc
    try:
        yield form
    finally:
        await form.close()
