"""Loading the Net's weights safely, choosing its device, and naming a weights file by its hash.

A weights file is a pickle, and unpickling can run any code the file names. What stands between
a file (an upload above all) and code execution is torch.load(..., weights_only=True): its
unpickler builds tensors, containers and a short list of torch types, and refuses every other
global. Everything else here only says what is wrong with a file in words a learner understands.
"""

import hashlib
import io
import pickletools
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch

from app.engine import InputError
from app.model.cache import Lru
from app.model.net import Net

# A torch.save zip file starts as every zip file's first entry does; torch.load tells the two
# formats (zip, and the legacy one of a few pickles in a row) apart by these bytes too.
ZIP_MAGIC = b"PK\x03\x04"
# Modules whose classes a pickled whole model names: the user's own (a script's Net is
# __main__.Net) and torch's layers.
MODEL_MODULES = ("__main__", "torch.nn.modules.")
# torch.load's legacy format: magic number, protocol version, system info, the object, storage
# keys, each a pickle.
LEGACY_PICKLES = 5


class WeightsError(InputError):
    """A weights file that cannot be used; the message is meant for the user."""

    code = "weights_unreadable"


class WeightsTooLarge(WeightsError):
    status = 413
    code = "weights_too_large"


class DeviceError(InputError):
    """A device that was asked for but is not available; the message is meant for the user."""

    code = "device_unavailable"


def pick_device(name: str) -> torch.device:
    """ "auto" -> CUDA when available, else CPU; "cuda" without CUDA raises DeviceError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                "device 'cuda' was asked for but CUDA is not available "
                "(no GPU, or a CPU-only build of PyTorch); use 'cpu' or 'auto'"
            )
        return torch.device("cuda")
    raise DeviceError(f"unknown device {name!r}; expected 'auto', 'cpu' or 'cuda'")


def load_net(path: Path, device: torch.device) -> Net:
    """Load Net (or tutorial) weights from a file strictly, in eval mode, with gradients off."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    return net_from_bytes(path.read_bytes(), device, path.name)


def net_from_bytes(
    data: bytes, device: torch.device, name: str, max_bytes: int | None = None
) -> Net:
    """The Net with the weights in `data` (what torch.save(net.state_dict(), f) wrote), strictly,
    in eval mode, with gradients off; WeightsError (naming the file `name`) for anything else."""
    if max_bytes is not None:
        check_size(data, name, max_bytes)
    state = _unwrap(_torch_load(data, name, max_bytes), name)
    net = Net()
    _check_state(state, net, name)
    net.load_state_dict({k: v.to(torch.float32) for k, v in state.items()}, strict=True)
    net.to(device)
    net.eval()
    net.requires_grad_(False)
    return net


def check_size(data: bytes, name: str, max_bytes: int) -> None:
    if len(data) > max_bytes:
        raise WeightsTooLarge(
            f"{name}: {len(data):,} bytes; a weights file may be at most {max_bytes:,} "
            "(the Net's state_dict is about 250 KB)",
            size=len(data),
            limit=max_bytes,
        )


def _torch_load(data: bytes, name: str, max_bytes: int | None) -> object:
    """torch.load(..., weights_only=True) of the bytes. torch's own message is never shown: it
    advises weights_only=False, which is what would run a hostile file's code."""
    if data.startswith(ZIP_MAGIC):
        _check_zip(data, name, max_bytes)
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # junk raises many kinds (EOFError, KeyError, RuntimeError, ...)
        raise _refusal(data, name) from exc


def _check_zip(data: bytes, name: str, max_bytes: int | None) -> None:
    """A zip file's entries may be compressed (torch never writes them so, but reads them): a
    2 MB file could then hold gigabytes. The sizes its directory declares are what torch reads
    into memory, so their sum is held to the same cap as the file."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            declared = sum(info.file_size for info in archive.infolist())
    except Exception as exc:  # BadZipFile, and whatever a damaged directory raises
        raise WeightsError(f"{name}: not a PyTorch weights file (a damaged zip file)") from exc
    if max_bytes is not None and declared > max_bytes:
        raise WeightsTooLarge(
            f"{name}: its zip entries unpack to {declared:,} bytes; at most {max_bytes:,}",
            size=declared,
            limit=max_bytes,
        )


def _refusal(data: bytes, name: str) -> WeightsError:
    """Why torch.load refused the bytes, from the classes and functions its pickle names."""
    named = pickle_globals(data)
    model = [g for g in named if g.startswith(MODEL_MODULES)]
    if model:
        return WeightsError(
            f"{name}: this is a whole pickled model ({model[0]}), not a state_dict. Save the "
            "weights alone with torch.save(net.state_dict(), PATH): loading a whole model "
            "would run the code its pickle names, which this app never does",
            code="weights_whole_model",
            found=model[0],
        )
    foreign = [g for g in named if not g.startswith(("torch.", "collections."))]
    if foreign:
        return WeightsError(
            f"{name}: its pickle names {', '.join(foreign[:3])}, which a state_dict never "
            "needs (loading it could run code): refused without loading it",
            code="weights_unsafe",
            found=foreign[:3],
        )
    return WeightsError(
        f"{name}: not a PyTorch weights file (save it with torch.save(net.state_dict(), PATH))",
        code="weights_unreadable",
    )


def pickle_globals(data: bytes) -> list[str]:
    """ "module.name" of every class or function a torch.save file's pickle names, read with
    pickletools, which lists opcodes and runs nothing; [] when the bytes cannot be read so."""
    names: list[str] = []
    strings: list[str] = []  # STACK_GLOBAL (protocol 4+) takes module and name from these
    try:
        if data.startswith(ZIP_MAGIC):
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                pickles = [n for n in archive.namelist() if n.endswith("data.pkl")]
                data = archive.read(pickles[0]) if pickles else b""
        stream = io.BytesIO(data)
        # The legacy format is a few pickles in a row; genops stops after each one's STOP.
        for _ in range(LEGACY_PICKLES):
            if stream.tell() >= len(data):
                break
            for opcode, arg, _ in pickletools.genops(stream):
                if opcode.name in ("GLOBAL", "INST"):  # protocols 0-3: "module name"
                    names.append(str(arg).replace(" ", "."))
                elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                    names.append(f"{strings[-2]}.{strings[-1]}")
                elif isinstance(arg, str):
                    strings.append(arg)
    except Exception:  # not a pickle (or a damaged one): whatever was named so far
        pass
    return list(dict.fromkeys(names))


def _unwrap(obj: object, name: str) -> dict[str, torch.Tensor]:
    """Accept a bare state_dict, or one inside {"state_dict": ...} / {"model_state_dict": ...}."""
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model_state_dict"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not obj:
        raise WeightsError(
            f"{name}: not a state_dict (found {type(obj).__name__}); save one with "
            "torch.save(net.state_dict(), PATH)",
            code="weights_not_state_dict",
            found=type(obj).__name__,
        )
    state: dict[str, torch.Tensor] = {}
    for key, value in obj.items():
        if not isinstance(key, str) or not _plain_tensor(value):
            raise WeightsError(
                f"{name}: not a state_dict (entry {str(key)[:40]!r} is not a tensor)",
                code="weights_not_state_dict",
                found=type(value).__name__,
            )
        state[key.removeprefix("module.")] = value
    return state


def _plain_tensor(value: object) -> bool:
    """A dense tensor: not sparse, not quantized, nothing load_state_dict would choke on."""
    return isinstance(value, torch.Tensor) and value.layout == torch.strided


def _check_state(state: Mapping[str, torch.Tensor], net: Net, name: str) -> None:
    """Name the first mismatch between the file's tensors and the Net's."""
    expected = net.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(missing))
        if unexpected:
            parts.append("unexpected " + ", ".join(k[:40] for k in unexpected[:10]))
        raise WeightsError(
            f"{name}: not weights for this Net ({'; '.join(parts)})",
            code="weights_keys",
            missing=missing,
            unexpected=unexpected[:10],
        )
    for key, want in expected.items():
        got = state[key]
        if got.shape != want.shape:
            raise WeightsError(
                f"{name}: {key} has shape {tuple(got.shape)}, expected {tuple(want.shape)}",
                code="weights_shape",
                layer=key,
                shape=list(got.shape),
                expected=list(want.shape),
            )
        if not got.is_floating_point():
            raise WeightsError(
                f"{name}: {key} has dtype {got.dtype}, expected floating point",
                code="weights_dtype",
                layer=key,
                dtype=str(got.dtype),
            )
        if not bool(torch.isfinite(got).all()):
            raise WeightsError(
                f"{name}: {key} holds NaN or infinite values (training diverged?): "
                "a Net with them gives NaN logits",
                code="weights_not_finite",
                layer=key,
            )


class NetCache:
    """The last few Nets made from uploaded bytes, by the bytes' sha256: a page that sends the
    same file with every request parses it once. An optimisation only (each process has its
    own). Refused files are not kept: parsing one again is bounded by the size cap."""

    def __init__(self, size: int = 8) -> None:
        self.nets: Lru[Net] = Lru(size)

    def get(self, data: bytes, device: torch.device, name: str, max_bytes: int) -> tuple[Net, str]:
        """The Net with the weights in `data`, and their sha256."""
        check_size(data, name, max_bytes)  # before hashing megabytes
        digest = hashlib.sha256(data).hexdigest()
        return self.nets.get(digest, lambda: net_from_bytes(data, device, name, max_bytes)), digest


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
