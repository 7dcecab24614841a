"""The floor: the same endpoints doing only the unavoidable work, as plain code.

POST /loss parses JSON with orjson, builds tensors with numpy and torch.from_numpy, runs
F.cross_entropy and answers {"loss": ...}. POST /predict parses multipart, decodes each picture
with Pillow to 32x32 RGB, normalises, runs the same Net on the same weights and answers the logits
(and F.cross_entropy against the labels when labels are sent). POST /step decodes the same way,
runs the tutorial's five lines `steps` times on a copy of the Net made for the request and
answers {"losses": [...]} (before the first step, then after each). No middleware, no
validation beyond what the libraries do. The benchmarks serve this app and the project's app with
the same uvicorn settings and report the project's throughput as a ratio of this one's.
"""

import copy
import io
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import torch
import torch.nn.functional as F
from fastapi import FastAPI, Request
from fastapi.responses import Response
from PIL import Image
from starlette.datastructures import FormData, UploadFile
from torch import nn

from app.model import CLASSES, MEAN, STD, Net, load_net
from app.web.settings import get_settings

torch.set_num_threads(1)  # tensors here are tiny: one thread, no fork-join overhead

INDEX = {name: i for i, name in enumerate(CLASSES)}


def _json(content: Any) -> Response:
    return Response(
        orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY), 200, None, "application/json"
    )


def loss_value(data: dict[str, Any]) -> Any:
    """F.cross_entropy on a /loss request body, already parsed; a float or a list of them."""
    logits = torch.from_numpy(np.asarray(data["logits"], dtype=np.float64))
    target_array = np.asarray(data["target"])
    if target_array.dtype.kind == "f":
        target = torch.from_numpy(target_array.astype(np.float64, copy=False))
    else:
        target = torch.from_numpy(target_array.astype(np.int64, copy=False))
    weight = data.get("weight")
    loss = F.cross_entropy(
        logits,
        target,
        weight=None if weight is None else torch.from_numpy(np.asarray(weight, dtype=np.float64)),
        ignore_index=data.get("ignore_index", -100),
        reduction=data.get("reduction", "mean"),
        label_smoothing=data.get("label_smoothing", 0.0),
    )
    return loss.tolist()


def label_index(text: str) -> int:
    return int(text) if text.isdigit() else INDEX[text.strip().lower()]


def decode(data: bytes) -> np.ndarray:
    """Any picture Pillow reads -> (32, 32, 3) uint8 RGB."""
    with Image.open(io.BytesIO(data)) as picture:
        rgb = picture.convert("RGB")
    if rgb.size != (32, 32):
        rgb = rgb.resize((32, 32), Image.Resampling.BILINEAR)
    return np.asarray(rgb)


async def pictures_and_labels(form: FormData) -> tuple[torch.Tensor, list[int]]:
    """The normalised (N, 3, 32, 32) batch of a multipart form's images, and its labels."""
    images = [await f.read() for f in form.getlist("image") if isinstance(f, UploadFile)]
    labels = [label_index(str(x)) for x in form.getlist("label")]
    # Channels first in memory, as the tutorial's ToTensor gives and the app computes: a permuted
    # view left as it is runs the Net channels last, with other logits in the last bits on AVX2
    # CPUs (one picture: 390 us against 458 us channels first, on the AVX2 development machine).
    pixels = torch.from_numpy(np.stack([decode(b) for b in images])).permute(0, 3, 1, 2)
    pixels = pixels.contiguous()
    return (pixels.to(torch.float32) / 255.0 - MEAN) / STD, labels


def five_lines(
    net: Net, inputs: torch.Tensor, labels: torch.Tensor, lr: float, momentum: float, steps: int
) -> list[float]:
    """The tutorial's training lines `steps` times on a copy of `net`: the loss before each
    step, and the one after the last."""
    net = copy.deepcopy(net).requires_grad_(True)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    criterion = nn.CrossEntropyLoss()
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        outputs = net(inputs)
        loss = criterion(outputs, labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    with torch.no_grad():
        losses.append(criterion(net(inputs), labels).item())
    return losses


def create_floor_app(weights: Path | None = None) -> FastAPI:
    """The floor app, on the project's weights (APP_WEIGHTS) unless `weights` names others.

    Served with `uvicorn --factory bench.floor:create_floor_app`."""
    net: Net = load_net(weights or get_settings().weights, torch.device("cpu"))
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/health")
    async def health() -> Response:
        return _json({"status": "ok"})

    @app.post("/loss")
    async def loss(request: Request) -> Response:
        data = orjson.loads(await request.body())
        with torch.inference_mode():
            return _json({"loss": loss_value(data)})

    @app.post("/predict")
    async def predict(request: Request) -> Response:
        batch, labels = await pictures_and_labels(await request.form())
        with torch.inference_mode():
            logits = net(batch)
            answer: dict[str, Any] = {"logits": logits.numpy()}
            if labels:
                answer["loss"] = F.cross_entropy(logits, torch.tensor(labels)).item()
        return _json(answer)

    @app.post("/step")
    async def step(request: Request) -> Response:
        form = await request.form()
        batch, labels = await pictures_and_labels(form)
        lr, momentum = float(str(form.get("lr", 0.001))), float(str(form.get("momentum", 0.9)))
        steps = int(str(form.get("steps", 1)))
        losses = five_lines(net, batch, torch.tensor(labels), lr, momentum, steps)
        return _json({"losses": losses})

    return app
