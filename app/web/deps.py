"""FastAPI dependencies: what a route may ask for, read from the app's state.

They are coroutines: FastAPI runs a plain function dependency in the threadpool, a hop that costs
more than a small /loss request's whole computation."""

from typing import Annotated

from fastapi import Depends, Request

from app.model.classifier import Classifier
from app.web.settings import Settings


async def app_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    return state(request)[0]


async def get_classifier(request: Request) -> Classifier:
    """The Net loaded once in the lifespan."""
    return state(request)[1]


def state(request: Request) -> tuple[Settings, Classifier]:
    """The settings and the Net (loaded once in the lifespan): what the two dependencies give,
    and what a route that takes the request alone reads itself (see LeanRoute in app.web.api)."""
    return request.app.state.settings, request.app.state.classifier


SettingsDep = Annotated[Settings, Depends(app_settings)]
ClassifierDep = Annotated[Classifier, Depends(get_classifier)]
