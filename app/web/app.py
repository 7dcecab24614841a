"""Builds the app: settings, the model loaded once in the lifespan, routes, middleware."""

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import torch
from fastapi import FastAPI
from starlette.formparsers import MultiPartParser

from app.model.classifier import Classifier
from app.web import api, docs, errors, live, pages, try_calls
from app.web.assets import static_app
from app.web.middleware.edge import EdgeMiddleware
from app.web.middleware.logs import configure_logging, flush_access_log
from app.web.serialize import OrjsonResponse
from app.web.settings import Settings, get_settings

log = logging.getLogger("app")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    configure_logging(json_lines=settings.log_json)
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    app.state.torch_threads = torch.get_num_threads()  # what the compute lane's threads use
    app.state.classifier = Classifier.load(settings.weights, settings.device, settings.metrics_path)
    app.state.compute_lane = anyio.CapacityLimiter(settings.compute_threads)
    log.info("model loaded: %s on %s", settings.weights, app.state.classifier.device)
    # Everything loaded so far (torch, the model, the app: some 200,000 objects) lives as long
    # as the app: out of the garbage collector's sight, a full collection no longer walks it.
    # Requests allocate many containers (a 4096 x 10 /loss body parses into 4,097 lists), which
    # sets collections off: orjson.loads of that body took 2.6 ms with the heap in sight and
    # 1.6 ms frozen (1.3 ms with no collection at all). gc.freeze is for this (see its docs).
    gc.freeze()
    yield
    flush_access_log()


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app, with `settings` (default: read from the environment)."""
    settings = settings or get_settings()
    # Uploads stay in memory: no part can outgrow the body cap, so none is spooled to disk.
    MultiPartParser.spool_max_size = settings.max_upload_bytes + 1
    app = FastAPI(
        title="Cross-Entropy Explainer",
        summary="Every stage of PyTorch's nn.CrossEntropyLoss, computed and shown.",
        version="0.1.0",
        lifespan=lifespan,
        default_response_class=OrjsonResponse,
        # The app exports no telemetry (it runs offline); left on, FastAPI looks up
        # OpenTelemetry's global providers on every request to see whether anyone listens.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        docs_url=None,
        redoc_url=None,
        openapi_tags=[
            {"name": "loss", "description": "The loss on your own logits and targets."},
            {"name": "pictures", "description": "The tutorial's Net on your pictures."},
            {"name": "training", "description": "Training steps and training from scratch."},
            {"name": "model", "description": "The served Net: classes, card, accuracy."},
            {"name": "service", "description": "The server itself."},
        ],
        # The API's routes are the app's own, first: routes are matched in order, and /loss and
        # /predict are the busiest (no path is in two routers, so the order changes nothing
        # else). Not through include_router: FastAPI (0.165) matches an included router's
        # routes twice a request, once to pick the router and again inside it, which cost a
        # small /loss request 28 us of CPU in process (of some 450; the app built both ways,
        # alternating, 15 rounds of 300 requests).
        routes=api.router.routes,
    )
    app.state.settings = settings
    app.include_router(pages.router)
    app.include_router(live.router)
    app.include_router(try_calls.router)
    app.include_router(docs.router)
    app.mount("/static", static_app(), name="static")
    errors.install(app)
    # One layer for the access log, the body caps, gzip and the security headers (see edge.py).
    app.add_middleware(
        EdgeMiddleware,
        limits={
            "/predict": settings.max_upload_bytes,
            "/step": settings.max_upload_bytes,
            "/evaluate": settings.max_upload_bytes,
            "/train/live": live.MAX_BODY_BYTES,
            "/model/figures": pages.FIGURES_MAX_BYTES,
        },
        default=settings.max_json_bytes,
    )
    return app
