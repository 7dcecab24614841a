"""Weights files for the tests: the tutorial's own, saved by a script exactly as the tutorial
saves it (so its Net is __main__.Net), and hostile ones. Shared by the model and API tests."""

import io
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import torch

from app.model import Net

# The tutorial's code, verbatim where it defines and saves the Net; run as a script, so that
# torch.save(net) pickles __main__.Net as a learner's own file does.
TUTORIAL_SCRIPT = """
import sys
import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1) # flatten all dimensions except batch
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = self.fc3(x)
        return x


torch.manual_seed(int(sys.argv[2]))
net = Net()
PATH = sys.argv[1] + '/cifar_net.pth'
torch.save(net.state_dict(), PATH)
torch.save(net, sys.argv[1] + '/whole_net.pth')
"""


def tutorial_files(folder: Path, seed: int = 7) -> tuple[Path, Path]:
    """(cifar_net.pth, whole_net.pth) as the tutorial's script writes them."""
    script = folder / "tutorial.py"
    script.write_text(TUTORIAL_SCRIPT)
    subprocess.run([sys.executable, str(script), str(folder), str(seed)], check=True, timeout=120)
    return folder / "cifar_net.pth", folder / "whole_net.pth"


class MakesMarker:
    """An object whose unpickling creates the file `marker`: what a hostile pickle does, made
    harmless. pickle.loads of it does create the file (the tests check that too)."""

    def __init__(self, marker: Path, how: str) -> None:
        self.marker, self.how = marker, how

    def __reduce__(self):
        if self.how == "system":
            return (os.system, (f"touch {self.marker}",))
        return (open, (str(self.marker), "w"))


def saved(obj: object, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer, **kwargs)  # type: ignore[arg-type]
    return buffer.getvalue()


def code_running(marker: Path) -> dict[str, bytes]:
    """Files whose loading by pickle would create `marker`."""
    state: dict[str, object] = dict(Net().state_dict())
    state["fc3.bias"] = MakesMarker(marker, "open")
    return {
        "state_dict_zip": saved(state),
        "system_zip": saved({"x": MakesMarker(marker, "system")}),
        "legacy": saved({"x": MakesMarker(marker, "system")}, _use_new_zipfile_serialization=False),
        "raw_pickle": pickle.dumps(MakesMarker(marker, "system"), protocol=2),
        "protocol_5": pickle.dumps(MakesMarker(marker, "open"), protocol=5),
    }


def state_with(**changes: torch.Tensor | None) -> bytes:
    """The bytes of a Net's state_dict with some entries replaced (or removed: None)."""
    state = dict(Net().state_dict())
    for key, value in changes.items():
        key = key.replace("__", ".")
        if value is None:
            del state[key]
        else:
            state[key] = value
    return saved(state)


def zip_bomb(entries: int = 1) -> bytes:
    """A state_dict whose zip entries are deflated: megabytes of zeros in a few kilobytes."""
    plain = saved(
        {**Net().state_dict(), "fc1.weight": torch.zeros(120, 400), "pad": torch.zeros(2_000_000)}
    )
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(plain)) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for name in src.namelist():
            dst.writestr(name, src.read(name))
    return out.getvalue()


CAP = 2 * 1024 * 1024
NAN_FC1 = torch.full((120, 400), float("nan"))
INF_BIAS = torch.tensor([float("inf")] + [0.0] * 9)


def refused(folder: Path) -> list[tuple[str, bytes, str, int, str]]:
    """(id, bytes, code, HTTP status, a regex its detail matches) for every file that must be
    refused, the code-running ones aside (see code_running)."""
    _, whole = tutorial_files(folder)
    return [
        (
            "whole_model",
            whole.read_bytes(),
            "weights_whole_model",
            422,
            r"whole pickled model \(__main__\.Net\).*torch\.save\(net\.state_dict\(\), PATH\)",
        ),
        ("missing_key", state_with(conv2__bias=None), "weights_keys", 422, r"missing conv2\.bias"),
        (
            "extra_key",
            state_with(bn1__weight=torch.ones(6)),
            "weights_keys",
            422,
            r"unexpected bn1\.weight",
        ),
        (
            "cifar100",
            state_with(fc3__weight=torch.zeros(100, 84), fc3__bias=torch.zeros(100)),
            "weights_shape",
            422,
            r"fc3\.weight has shape \(100, 84\), expected \(10, 84\)",
        ),
        ("nan", state_with(fc1__weight=NAN_FC1), "weights_not_finite", 422, r"fc1\.weight .*NaN"),
        ("inf", state_with(fc3__bias=INF_BIAS), "weights_not_finite", 422, r"fc3\.bias .*infinite"),
        (
            "int",
            state_with(fc3__bias=torch.zeros(10, dtype=torch.int64)),
            "weights_dtype",
            422,
            r"fc3\.bias has dtype torch\.int64",
        ),
        ("tensor", saved(torch.zeros(3)), "weights_not_state_dict", 422, r"not a state_dict"),
        ("list", saved([torch.zeros(3)]), "weights_not_state_dict", 422, r"not a state_dict"),
        (
            "sparse",
            state_with(fc3__bias=torch.zeros(10).to_sparse()),
            "weights_not_state_dict",
            422,
            r"not a state_dict",
        ),
        (
            "junk",
            b"\x00\x01 this is not a checkpoint",
            "weights_unreadable",
            422,
            r"not a PyTorch weights file",
        ),
        ("empty", b"", "weights_unreadable", 422, r"not a PyTorch weights file"),
        ("random", os.urandom(5000), "weights_unreadable", 422, r"not a PyTorch weights file"),
        (
            "broken_zip",
            b"PK\x03\x04" + os.urandom(3000),
            "weights_unreadable",
            422,
            r"not a PyTorch weights file",
        ),
        (
            "cut_short",
            saved(Net().state_dict())[:100_000],
            "weights_unreadable",
            422,
            r"not a PyTorch weights file",
        ),
        ("too_large", b"\x00" * (CAP + 1), "weights_too_large", 413, r"at most 2,097,152"),
        ("zip_bomb", zip_bomb(), "weights_too_large", 413, r"unpack to [\d,]+ bytes"),
    ]
