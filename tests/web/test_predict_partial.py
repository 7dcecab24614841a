"""POST /predict with pictures that cannot be used among good ones (issue 12, item 8): the good
ones are answered, each bad one carries its error in place, and the stages are a plain PyTorch
run on the good pictures alone, with their own labels."""

import io
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fastapi.testclient import TestClient
from PIL import Image

from app.model.images import Picture, Upload
from app.web.schemas import PredictAnswer
from app.web.settings import Settings
from tests.conftest import build_app, image_bytes
from tests.training.test_train import TutorialNet
from tests.web.test_step_api import pictures, png, reference_batch

LABELS = ["cat", "plane", "9", "car"]
LABEL_INDICES = [3, 0, 9, 1]
# Pictures of more than this many pixels are refused, each on its own (APP_MAX_IMAGE_PIXELS).
PIXEL_CAP = 64 * 64


def oversized() -> bytes:
    return image_bytes(size=(65, 64))  # one row over PIXEL_CAP: refused from its header


def truncated() -> bytes:
    """A PNG whose header is fine and whose pixel data stops short: refused when decoded."""
    whole = png(pictures(1, seed=9)[0])
    return whole[: len(whole) - 200]


BAD = {
    "oversized": (oversized, "too large", "4,096 pixels"),
    "not an image": (lambda: b"hello, not a picture", "not a PNG, JPEG", "not a PNG"),
    "truncated": (truncated, "damaged", "damaged or incomplete"),
}


@pytest.fixture
def capped(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_image_pixels": PIXEL_CAP})


def form(arrays: list[np.ndarray], bad: bytes, at: int) -> list[tuple[str, tuple[str, bytes, str]]]:
    """The good PNGs in order, with the bad file inserted as the picture at index `at`."""
    files = [(f"p{i}.png", png(a)) for i, a in enumerate(arrays)]
    files.insert(at, ("bad.png", bad))
    return [("image", (name, data, "image/png")) for name, data in files]


def plain_pytorch(
    weights: Path, arrays: list[np.ndarray], labels: list[int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The tutorial's Net on the pictures, then F.cross_entropy (label smoothing 0.1, 'sum')
    and autograd, in float64: logits, loss, gradient."""
    net = TutorialNet()
    net.load_state_dict(torch.load(weights, weights_only=True))
    with torch.no_grad():
        outputs = net(reference_batch(arrays)).double()
    z = outputs.clone().requires_grad_(True)
    loss = F.cross_entropy(z, torch.tensor(labels), reduction="sum", label_smoothing=0.1)
    loss.backward()
    assert z.grad is not None
    return outputs, loss.detach(), z.grad


@pytest.mark.parametrize("kind", list(BAD))
@pytest.mark.parametrize("at", [3, 1])
def test_a_bad_picture_keeps_its_place_and_the_rest_are_computed(
    capped: Settings, random_weights: Path, kind: str, at: int
) -> None:
    """Three good pictures and a bad one: 200; images[at] carries the error ({code, detail}),
    the others their results in the order sent; row_images maps the stage rows to them; the
    stages are those of plain PyTorch on the three good pictures with their own labels (the bad
    picture's label dropped with it)."""
    arrays = pictures(3, seed=4)
    make, needle, _ = BAD[kind]
    sent = [*LABELS[:3]]
    sent.insert(at, LABELS[3])  # the label sent with the bad picture, dropped with it
    data = {"label": sent, "reduction": "sum", "label_smoothing": "0.1"}
    with TestClient(build_app(capped)) as client:
        r = client.post("/predict", files=form(arrays, make(), at), data=data)
    assert r.status_code == 200, r.text
    body = r.json()
    PredictAnswer.model_validate(body)  # the answer is what the OpenAPI schema says

    images = body["images"]
    assert len(images) == 4
    bad = images[at]
    assert bad["filename"] == "bad.png" and set(bad) == {"filename", "error"}
    assert set(bad["error"]) <= {"code", "detail", "params"}
    assert isinstance(bad["error"]["code"], str) and bad["error"]["code"]
    assert needle in bad["error"]["detail"] and "bad.png" in bad["error"]["detail"]
    good = [k for k in range(4) if k != at]
    assert body["row_images"] == good
    assert [images[k]["filename"] for k in good] == ["p0.png", "p1.png", "p2.png"]
    assert [images[k]["label"] for k in good] == LABEL_INDICES[:3]
    assert body["target_source"] == "labels"

    logits, loss, grad = plain_pytorch(random_weights, arrays, LABEL_INDICES[:3])
    got = torch.tensor(body["logits"], dtype=torch.float64)
    assert got.shape == (3, 10)
    assert torch.allclose(got, logits, atol=1e-5)
    assert body["loss"] == pytest.approx(loss.item(), rel=1e-5)
    assert torch.allclose(torch.tensor(body["grad"], dtype=torch.float64), grad, atol=1e-6)
    assert body["one_hot"] == torch.eye(10)[LABEL_INDICES[:3]].tolist()
    # and to the last digit on the logits the server's Net gave
    exact = F.cross_entropy(
        got, torch.tensor(LABEL_INDICES[:3]), reduction="sum", label_smoothing=0.1
    )
    assert body["loss"] == pytest.approx(exact.item(), rel=1e-12)
    assert [images[k]["predicted_class"] for k in good] == [
        body["classes"][p] for p in body["predicted"]
    ]


def test_every_picture_bad_is_a_422_naming_each(capped: Settings) -> None:
    """Nothing to compute: 422, and the sentence names every picture and what is wrong."""
    files = [
        ("image", ("big.png", oversized(), "image/png")),
        ("image", ("junk.png", b"junk", "image/png")),
        ("image", ("cut.png", truncated(), "image/png")),
    ]
    with TestClient(build_app(capped)) as client:
        r = client.post("/predict", files=files, data={"label": ["cat", "dog", "ship"]})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert "none of the 3 images can be used" in detail
    for name, reason in [
        ("big.png", "too large"),
        ("junk.png", "not a PNG"),
        ("cut.png", "damaged"),
    ]:
        assert f"{name}: " in detail and reason in detail


def test_one_bad_picture_alone_is_the_422_it_always_was(capped: Settings) -> None:
    with TestClient(build_app(capped)) as client:
        r = client.post("/predict", files=[("image", ("junk.png", b"junk", "image/png"))])
    assert r.status_code == 422
    assert r.json()["detail"] == "junk.png: not a PNG, JPEG, GIF, WebP or BMP image"


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"label_smoothing": "1.5"}, "label_smoothing"),
        ({"label": ["cat", "unicorn", "dog", "ship"]}, "unicorn"),
        ({"label": ["cat", "dog", "ship", "unicorn"]}, "unicorn"),  # the bad picture's label
        ({"weight": "[1, 2]"}, "weight"),
        ({"reduction": "max"}, "reduction"),
    ],
)
def test_a_bad_option_or_label_refuses_the_whole_request(
    capped: Settings, data: dict, needle: str
) -> None:
    """The same four pictures are answered per picture with good options (200), and refused
    whole (422) with a bad option or label, even the label sent with the bad picture."""
    files = form(pictures(3), oversized(), 3)
    with TestClient(build_app(capped)) as client:
        fine = client.post("/predict", files=files, data={"label": ["cat", "dog", "ship", "car"]})
        assert fine.status_code == 200 and "error" in fine.json()["images"][3], fine.text
        r = client.post("/predict", files=files, data=data)
    assert r.status_code == 422, r.text
    assert needle in str(r.json()["detail"])


def test_step_stays_all_or_nothing(capped: Settings) -> None:
    """The batch /predict answers picture by picture is refused whole by /step: a training
    step on part of a batch is not the step that was asked for."""
    files = form(pictures(3), oversized(), 1)
    labels = {"label": ["cat", "dog", "ship", "car"]}
    with TestClient(build_app(capped)) as client:
        predicted = client.post("/predict", files=files, data=labels)
        assert predicted.status_code == 200 and predicted.json()["row_images"] == [0, 2, 3]
        r = client.post("/step", files=files, data=labels)
        assert r.status_code == 422
        assert r.json()["detail"] == "bad.png: the image is too large (more than 4,096 pixels)"
        decoded = form(pictures(3), truncated(), 1)  # refused only when decoded
        r = client.post("/step", files=decoded, data=labels)
        assert r.status_code == 422 and "bad.png: the image data is damaged" in r.json()["detail"]


def test_the_pixels_together_still_refuse_the_request(settings: Settings) -> None:
    """The cap on the pixels of a whole request counts the pictures that will be decoded: a
    refused one does not count, and the good ones over the cap refuse the request."""
    capped = settings.model_copy(update={"max_image_pixels": 100, "max_request_pixels": 200})
    small = image_bytes(size=(10, 10))
    big = image_bytes(size=(11, 10))
    files = [("image", (f"{i}.png", small, "image/png")) for i in range(2)]
    with TestClient(build_app(capped)) as client:
        r = client.post("/predict", files=[*files, ("image", ("big.png", big, "image/png"))])
        assert r.status_code == 200 and r.json()["row_images"] == [0, 1], r.text
        r = client.post("/predict", files=[*files, *files[:1]])
        assert r.status_code == 422 and "300 pixels together" in r.json()["detail"]


def test_row_images_with_every_picture_used(client: TestClient) -> None:
    files = [("image", (f"{i}.png", image_bytes((i * 40, 0, 0)), "image/png")) for i in range(3)]
    r = client.post("/predict", files=files)
    assert r.status_code == 200 and r.json()["row_images"] == [0, 1, 2]
    assert all("error" not in image for image in r.json()["images"])


def test_pictures_are_decoded_off_the_event_loop(
    capped: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Decoding of a large upload with a bad picture among good ones runs off the loop."""
    import asyncio

    from app.web import api, service

    where: list[bool] = []
    real = service.decode

    def spy(upload: Upload) -> Picture:
        try:
            asyncio.get_running_loop()
            where.append(True)
        except RuntimeError:
            where.append(False)
        return real(upload)

    monkeypatch.setattr(service, "decode", spy)
    noise = Image.frombytes("RGB", (64, 64), np.random.default_rng(0).bytes(64 * 64 * 3))
    buffer = io.BytesIO()
    noise.save(buffer, format="BMP")  # uncompressed: six are over the inline size in bytes
    bmp = buffer.getvalue()
    assert 6 * len(bmp) > api.INLINE_UPLOAD_BYTES
    files = [("image", (f"{i}.bmp", bmp, "image/bmp")) for i in range(6)]
    files.append(("image", ("junk.png", b"junk", "image/png")))
    with TestClient(build_app(capped)) as client:
        r = client.post("/predict", files=files)
    assert r.status_code == 200, r.text
    assert where == [False] * 6
