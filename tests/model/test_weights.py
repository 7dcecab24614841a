"""Weights from bytes (an upload): the tutorial's file loads and gives plain PyTorch's logits;
hostile files are refused with a stable code and nothing in them runs."""

import pickle
from pathlib import Path

import pytest
import torch

from app.model import Net, NetCache, WeightsError, net_from_bytes
from app.model.weights import pickle_globals
from tests.model.hostile_weights import CAP, code_running, refused, saved, tutorial_files
from tests.training.test_train import TutorialNet

CPU = torch.device("cpu")


def test_the_tutorials_file_gives_plain_pytorchs_logits(tmp_path: Path) -> None:
    path, _ = tutorial_files(tmp_path)
    reference = TutorialNet()  # plain PyTorch: the tutorial's class, load_state_dict
    reference.load_state_dict(torch.load(path, weights_only=True))
    net = net_from_bytes(path.read_bytes(), CPU, "cifar_net.pth", CAP)
    x = torch.randn(8, 3, 32, 32)
    assert torch.equal(net(x), reference(x).detach())
    assert not net.training and not any(p.requires_grad for p in net.parameters())


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[bytes, str, int, str]]:
    folder = tmp_path_factory.mktemp("hostile")
    return {
        name: (data, code, status, match) for name, data, code, status, match in refused(folder)
    }


CASES = [
    "whole_model", "missing_key", "extra_key", "cifar100", "nan", "inf", "int", "tensor", "list",
    "sparse", "junk", "empty", "random", "broken_zip", "cut_short", "too_large", "zip_bomb",
]  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_hostile_files_are_refused_with_their_code(hostile, case: str) -> None:
    data, code, status, match = hostile[case]
    with pytest.raises(WeightsError, match=match) as info:
        net_from_bytes(data, CPU, "upload.pth", CAP)
    assert (info.value.code, info.value.status) == (code, status)
    assert str(info.value).startswith("upload.pth: ")
    assert "weights_only" not in str(info.value)  # torch's advice is never passed on


def test_every_hostile_case_is_tested(hostile) -> None:
    assert sorted(CASES) == sorted(hostile)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol 5")
@pytest.mark.parametrize(
    "case", ["state_dict_zip", "system_zip", "legacy", "raw_pickle", "protocol_5"]
)
def test_code_in_a_pickle_never_runs(tmp_path: Path, case: str) -> None:
    marker = tmp_path / "marker"
    data = code_running(marker)[case]
    with pytest.raises(WeightsError) as info:
        net_from_bytes(data, CPU, "evil.pth", CAP)
    assert info.value.code == "weights_unsafe"
    assert "weights_only" not in str(info.value)
    assert not marker.exists()


def test_the_marker_payload_does_run_when_unpickled(tmp_path: Path) -> None:
    """The control: plain pickle does create the marker, so its absence above means something."""
    for how in ("open", "system"):
        marker = tmp_path / how
        pickle.loads(code_running(marker)["raw_pickle" if how == "system" else "protocol_5"])
        assert marker.exists()


def test_pickle_globals_reads_names_without_running_them(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    files = code_running(marker)
    assert "posix.system" in pickle_globals(files["system_zip"])
    assert "io.open" in pickle_globals(files["protocol_5"])  # STACK_GLOBAL
    assert "collections.OrderedDict" in pickle_globals(saved(Net().state_dict()))
    assert pickle_globals(b"junk") == []
    assert not marker.exists()


def test_the_cache_keeps_the_last_nets_by_their_bytes() -> None:
    cache = NetCache(size=2)
    files = [saved(Net().state_dict()) for _ in range(3)]
    first, digest = cache.get(files[0], CPU, "a.pth", CAP)
    assert cache.get(files[0], CPU, "a.pth", CAP) == (first, digest)  # the same object: kept
    cache.get(files[1], CPU, "b.pth", CAP)
    cache.get(files[2], CPU, "c.pth", CAP)  # the third pushes the least recent (a) out
    again, digest_again = cache.get(files[0], CPU, "a.pth", CAP)
    assert again is not first and digest_again == digest
    assert torch.equal(again.fc3.weight, first.fc3.weight)
    with pytest.raises(WeightsError):  # a refused file is refused every time
        cache.get(b"junk", CPU, "j.pth", CAP)
