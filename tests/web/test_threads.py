"""Torch's thread count: set to one around small work, put back after, never leaked."""

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from fastapi.testclient import TestClient

from app.web import api, service
from app.web.settings import Settings
from tests.conftest import build_app


@pytest.fixture
def configured() -> Iterator[int]:
    """At least two torch threads on this thread for the test (a single-core CI has one)."""
    before = torch.get_num_threads()
    torch.set_num_threads(max(2, before))
    yield torch.get_num_threads()
    torch.set_num_threads(before)


def test_serial_section_restores_the_count(configured: int) -> None:
    with service.intra_op_threads(10):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == configured
    with pytest.raises(ZeroDivisionError), service.intra_op_threads(10):
        raise ZeroDivisionError
    assert torch.get_num_threads() == configured


def test_large_work_keeps_the_configured_count(configured: int) -> None:
    with service.intra_op_threads(service.SERIAL_MAX_VALUES):
        assert torch.get_num_threads() == configured


def in_new_thread(work: Any) -> Any:
    """work() on a thread that has never run torch."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(work()))
    thread.start()
    thread.join()
    return result[0]


def test_a_new_thread_starts_with_the_serial_count(configured: int) -> None:
    """Why it matters: torch.set_num_threads(1) also sets what a thread that runs torch for the
    first time starts with. (If this ever fails, torch changed and the guard is not needed.)"""
    assert in_new_thread(torch.get_num_threads) == configured
    with service.intra_op_threads(10):
        assert in_new_thread(torch.get_num_threads) == 1


def test_a_compute_lane_thread_started_during_a_serial_section_gets_the_configured_count(
    settings: Settings, configured: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lane's first request arrives while another thread is in a serial section: its
    thread (new to torch) must still compute with the configured count, not 1 for good."""
    seen: list[int] = []
    work = service.loss_answer

    def spy(*args: Any) -> Any:
        seen.append(torch.get_num_threads())
        return work(*args)

    monkeypatch.setattr(service, "loss_answer", spy)
    rows = api.INLINE_JSON_BYTES // 60 + 1  # over the inline size: computed in the lane
    body = {"logits": [[0.123456] * 10] * rows, "target": [1] * rows, "fields": ["loss"]}
    with TestClient(build_app(settings)) as client:  # a new loop, so new worker threads
        with service.intra_op_threads(10):
            assert client.post("/loss", json=body).status_code == 200
        assert client.post("/loss", json=body).status_code == 200
    assert seen == [configured, configured]
