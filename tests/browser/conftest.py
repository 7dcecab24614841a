"""A real server on a free port and headless Debian chromium driven by Playwright.

Without chromium (or Playwright) the browser tests skip with the reason, unless REQUIRE_BROWSER=1,
when they fail instead.
"""

import io
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch

from app.model import Net
from bench.server import Server
from tests.training.test_train import TutorialNet

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "app" / "weights" / "cifar_net.pth"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]


def _unavailable(reason: str) -> None:
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(f"REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """uvicorn app.main:app in a subprocess; the shipped weights, or random ones before training."""
    env: dict[str, str] = {}
    if not SHIPPED.is_file() and "APP_WEIGHTS" not in os.environ:
        torch.manual_seed(0)
        weights = tmp_path_factory.mktemp("weights") / "cifar_net.pth"
        torch.save(Net().state_dict(), weights)
        env["APP_WEIGHTS"] = str(weights)
    with Server("app.main:app", env=env) as running:
        yield running.url


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    executable = shutil.which("chromium")
    if executable is None:
        _unavailable("chromium is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Watched:
    """A page plus what it logged and every request it tried to send elsewhere."""

    page: Any
    errors: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)


@pytest.fixture
def open_page(browser: Any, server: str) -> Iterator[Any]:
    """open_page(width=1280, locale="en-US") -> Watched; requests to other hosts are blocked."""
    contexts: list[Any] = []

    def make(width: int = 1280, locale: str = "en-US") -> Watched:
        context = browser.new_context(viewport={"width": width, "height": 900}, locale=locale)
        contexts.append(context)
        page = context.new_page()
        watched = Watched(page)

        def route(r: Any) -> None:
            url = r.request.url
            if url.startswith((server + "/", "data:", "blob:")):
                r.continue_()
            else:
                watched.foreign.append(url)
                r.abort()

        context.route("**/*", route)
        page.on("console", lambda m: watched.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: watched.errors.append(f"uncaught: {e}"))
        return watched

    yield make
    for context in contexts:
        context.close()


@pytest.fixture(scope="module")
def yours() -> tuple[TutorialNet, bytes]:
    """The tutorial's Net with weights of its own, and the bytes torch.save writes for them."""
    torch.manual_seed(1234)
    net = TutorialNet().eval()
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    return net, buffer.getvalue()
