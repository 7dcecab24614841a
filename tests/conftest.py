"""Shared fixtures: an app with small random weights, so API tests never depend on training;
the hypothesis profiles; a seeded torch RNG in every test."""

import asyncio
import io
import os
import zlib
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
import torch
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import settings as hypothesis_settings
from PIL import Image

from app.model import Net
from app.web.app import create_app
from app.web.settings import Settings

# "ci" (the default, and what `make test` runs): the same examples on every run, nothing read
# from or written to .hypothesis/, and the blob that reproduces a failure printed with it.
# "explore" (`make explore`, or HYPOTHESIS_PROFILE=explore): fresh random examples, EXPLORE times
# as many where a test asks for a number through examples(), failures kept in .hypothesis/.
# Neither has a deadline: no test asserts a time under a second (a loaded machine is slow).
EXPLORE = 10
hypothesis_settings.register_profile(
    "ci", derandomize=True, database=None, print_blob=True, deadline=None
)
hypothesis_settings.register_profile(
    "explore", max_examples=100 * EXPLORE, print_blob=True, deadline=None
)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def examples(count: int) -> int:
    """A test's number of examples under the profile in use: `count`, or more when exploring."""
    return count * EXPLORE if hypothesis_settings.get_current_profile_name() == "explore" else count


def derandomized() -> bool:
    """Whether the profile in use repeats the same examples (so a schemathesis seed is due)."""
    profile = hypothesis_settings.get_profile(hypothesis_settings.get_current_profile_name())
    return profile.derandomize


# Not a timing test: a bound that only a hang or a runaway loop would pass, many times what the
# work takes on a loaded two-core machine.
HANG_GUARD_S = 10.0

T = TypeVar("T")


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """asyncio.run in a thread of its own: this thread may be running another library's loop
    (Playwright's sync API keeps one, so a browser test run earlier in the process would make a
    plain asyncio.run fail)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@pytest.fixture(autouse=True)
def seeded_torch(request: pytest.FixtureRequest) -> None:
    """The global torch RNG seeded per test (from its id): the same numbers in every run, however
    the tests are selected or ordered."""
    torch.manual_seed(zlib.crc32(request.node.nodeid.encode()))


@pytest.fixture(scope="session")
def random_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "cifar_net.pth"
    torch.save(Net().state_dict(), path)
    return path


@pytest.fixture(scope="session")
def settings(random_weights: Path) -> Settings:
    """The defaults, with the random weights on the CPU. model_construct reads no APP_* variable
    and no .env file, so the suite runs the same whatever the shell or folder holds."""
    return Settings.model_construct(weights=random_weights, device="cpu")


def build_app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(build_app(settings)) as c:
        yield c


def image_bytes(
    color: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (32, 32), fmt: str = "PNG"
) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()
