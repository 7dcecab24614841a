"""`uvicorn app.main:app`: the ASGI app, built on first access from the environment's settings.

Built lazily (a module __getattr__), so that importing this module reads no environment and no
.env file: tests and tools import create_app without building an app they do not use."""

from typing import Any

from app.web.app import create_app

__all__ = ["create_app"]  # and `app`, through __getattr__


def __getattr__(name: str) -> Any:
    if name == "app":
        built = create_app()
        globals()["app"] = built  # later lookups find it without calling here again
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
