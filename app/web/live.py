"""POST /train/live: a fresh Net trained in its own thread, its events streamed as they come.

One job per worker process: the job holds the slot (app.state.live_job) until its thread has
ended, and another request meanwhile gets 429 with the seconds left on the job's cap. The
stream is sse-starlette's EventSourceResponse; when the client leaves, the response is torn
down, which sets the job's stop flag, and the thread ends after the step it is in.
"""

import asyncio
import base64
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated

import orjson
import torch
from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.types import Receive, Scope, Send

from app.training.live import LiveOptions, train_live
from app.training.subset import load_subset
from app.web.deps import ClassifierDep, SettingsDep
from app.web.schemas import ERRORS, BodyError, ErrorAnswer
from app.web.service import torch_threads
from app.web.settings import Settings

log = logging.getLogger("app.live")

router = APIRouter()

# The options fit in a hundred bytes; a larger body is refused before it is read (see app.py).
MAX_BODY_BYTES = 4096
# A client that stops reading without leaving cannot hold its connection for ever.
SEND_TIMEOUT_S = 30.0

# Training images, training labels, test images, test labels: uint8 (N, 3, 32, 32) and int64 (N).
TrainingData = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def shipped_subset() -> TrainingData:
    """The CIFAR-10 subsets that ship with the package, decoded once (in the job's thread)."""
    train_images, train_labels = load_subset("train")
    test_images, test_labels = load_subset("test")
    return train_images, train_labels, test_images, test_labels


async def data_source() -> Callable[[], TrainingData]:
    """What a job trains on: a loader, called in the job's thread (tests override this)."""
    return shipped_subset


DataSourceDep = Annotated[Callable[[], TrainingData], Depends(data_source)]


class LiveRequest(BaseModel):
    """The options of one job; every one may be left out."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"examples": [{}, {"epochs": 2, "batch_size": 32, "lr": 0.02}]},
    )

    epochs: int = Field(2, ge=1, le=20, description="Passes over the training pictures.")
    batch_size: int = Field(32, ge=1, le=512, description="Pictures per SGD step.")
    lr: float = Field(0.02, gt=0.0, allow_inf_nan=False, description="SGD's learning rate.")
    momentum: float = Field(0.9, ge=0.0, lt=1.0, description="SGD's momentum.")
    seed: int = Field(
        0,
        ge=0,
        le=2**63 - 1,
        description="Decides the initial weights and the batches: "
        "the same seed gives the same run on the same device.",
    )

    @classmethod
    def parse(cls, body: bytes) -> "LiveRequest":
        """An empty body means every default."""
        try:
            data = orjson.loads(body) if body.strip() else {}
        except orjson.JSONDecodeError as e:
            raise BodyError(f"body is not valid JSON: {e}", error=str(e)) from None
        return cls.model_validate(data)

    def options(self) -> LiveOptions:
        return LiveOptions(**self.model_dump())


class Job:
    """One training run in its own thread; its events wait in an asyncio queue for the stream."""

    def __init__(
        self,
        options: LiveOptions,
        load: Callable[[], TrainingData],
        settings: Settings,
        device: torch.device,
    ) -> None:
        self.options = options
        self.load = load
        self.threads = settings.live_threads
        self.device = device
        self.deadline = time.monotonic() + settings.live_cap_s
        self.stop = threading.Event()  # set when nobody is listening any more
        self.ended = threading.Event()  # set by the thread as its last act
        self.step = 0  # the last step reported by the training loop
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[ServerSentEvent | None] = asyncio.Queue()
        self.thread = threading.Thread(target=self.run, name="live-training", daemon=True)

    @property
    def active(self) -> bool:
        return not self.ended.is_set()

    def seconds_left(self) -> int:
        """Whole seconds until the cap ends the job, at least 1 (for Retry-After)."""
        return max(1, math.ceil(self.deadline - time.monotonic()))

    def run(self) -> None:
        """The thread: train, and hand each event to the event loop, serialised."""
        # the job's own count on this thread, put back after: torch_threads says why
        try:
            with torch_threads(self.threads):
                data = self.load()
                events = train_live(*data, self.options, self.stop, self.deadline, self.device)
                for name, payload in events:
                    step = payload.get("step", payload.get("steps"))  # done says "steps"
                    self.step = self.step if step is None else step
                    if name == "stopped":
                        log.info("live job stopped at step %d: its stream ended", self.step)
                        break
                    if name == "done":
                        log.info(
                            "live job done: %(steps)d steps in %(seconds).1f s, test accuracy "
                            "%(test_accuracy).3f, cut: %(cut)s",
                            payload,
                        )
                        payload = {
                            **payload,
                            "weights": base64.b64encode(payload["weights"]).decode(),
                        }
                    self.put(ServerSentEvent(orjson.dumps(payload).decode(), event=name))
        except Exception:
            log.exception("live training failed")
            detail = {"detail": "training failed on the server"}
            self.put(ServerSentEvent(orjson.dumps(detail).decode(), event="error"))
        finally:
            self.ended.set()
            self.put(None)

    def put(self, event: ServerSentEvent | None) -> None:
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, event)
        except RuntimeError:  # the event loop has closed: the server is gone
            self.stop.set()

    async def events(self) -> AsyncIterator[ServerSentEvent]:
        while (event := await self.queue.get()) is not None:
            yield event


class LiveResponse(EventSourceResponse):
    """The job's events as Server-Sent Events; the job stops when the response ends, however
    it ends (the client left, the server shuts down, a send timed out)."""

    def __init__(self, job: Job) -> None:
        super().__init__(job.events(), send_timeout=SEND_TIMEOUT_S)
        self.job = job

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.job.stop.set()


LIVE_BODY = {
    "required": False,
    "content": {"application/json": {"schema": LiveRequest.model_json_schema()}},
}
EVENTS = """Server-Sent Events, each `event: NAME` and `data: JSON`:
`start` (the options, `train_images`, `test_images`, `steps_per_epoch`, `total_steps`,
`classes`, `chance_loss` = ln 10, the fresh Net's `test_accuracy` and `test_loss`, and
`samples`: the 4 test pictures followed, `{index, label, image, softmax}`, `image` a PNG data
URL); `progress` a few times a second (`step`, `epoch`, `loss` of the last batch, `losses`:
every batch loss since the previous progress event, `seconds`); `epoch` after each epoch
(`epoch`, `step`, `train_loss`, `test_accuracy`, `test_loss`, `samples`:
`{index, label, softmax}`, `seconds`); `done` last (`steps`, `seconds`, `test_accuracy`,
`test_loss`, `cut`: true when the time cap ended the job, `weights`: base64 of the bytes
`torch.save` writes for the trained state_dict). A loss that is not finite is `null`."""


@router.post(
    "/train/live",
    tags=["training"],
    summary="Train a fresh Net on a CIFAR-10 subset, its progress streamed as it trains",
    response_class=EventSourceResponse,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": EVENTS,
        },
        **ERRORS,
        429: {
            "model": ErrorAnswer,
            "description": "A job is running in this worker; "
            "Retry-After says in how many seconds its cap ends it.",
        },
    },
    openapi_extra={"requestBody": LIVE_BODY},
)
async def live(
    request: Request, settings: SettingsDep, classifier: ClassifierDep, load: DataSourceDep
) -> LiveResponse:
    # Read and size-capped by the middleware (edge.py); bad options get their 4xx even while busy.
    options = LiveRequest.parse(await request.body()).options()
    running: Job | None = getattr(request.app.state, "live_job", None)
    if running is not None and running.active:
        seconds = running.seconds_left()
        raise HTTPException(
            429,
            detail=f"a training job is already running on this server; try again in {seconds} s "
            f"(a job stops when its client leaves, or after {settings.live_cap_s:g} s)",
            headers={"Retry-After": str(seconds)},
        )
    job = Job(options, load, settings, classifier.device)
    request.app.state.live_job = job
    # Started here, not when the stream starts: should the response never be sent, the job
    # still ends at its cap and frees the slot.
    job.thread.start()
    return LiveResponse(job)
