"""Answers as bytes: the engine's stages as answer values, and the two renderings of an answer:
JSON (orjson, the default) and .npz (numpy's archive of arrays, for clients that ask)."""

import binascii
import io
import reprlib
import struct
from collections.abc import Collection
from typing import Any

import numpy as np
import numpy.lib.format as npy_format
import orjson
from fastapi.responses import JSONResponse, Response
from torch import Tensor

from app.engine import STAGES, InputError, Stages
from app.web.negotiation import NPZ

OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
SHOWN = reprlib.Repr()  # repr(), with long strings elided in the middle
SHOWN.maxstring = 40
SHOWN_FIELDS = 5


# orjson holds the GIL for the whole of one call: 0.65 s for the 106 MB answer to a 9 MB /loss
# request, all that time the event loop's thread waiting to run, even with the call on another
# thread. An answer's big arrays are written a piece of at most PIECE_VALUES numbers at a time
# (about 2 ms each), so that the loop gets the GIL between pieces.
PIECE_VALUES = 32_768


class OrjsonResponse(JSONResponse):
    """The JSON response of every route: orjson, numpy arrays natively, NaN and inf as null."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        if not isinstance(content, dict) or not any(map(_big, content.values())):
            return orjson.dumps(content, option=OPTIONS)
        # the same bytes as orjson.dumps(content), a key and a piece of an array at a time
        out: list[bytes | memoryview] = [b"{"]
        for i, (key, value) in enumerate(content.items()):
            out += [b"," if i else b"", orjson.dumps(key), b":"]
            if _big(value):
                _array(value, out)
            else:
                out.append(orjson.dumps(value, option=OPTIONS))
        out.append(b"}")
        return b"".join(out)


def _big(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.ndim > 0 and value.size > PIECE_VALUES


def _array(value: np.ndarray, out: list[bytes | memoryview]) -> None:
    """Append the JSON of an array of one dimension or more, as orjson would write it."""
    out.append(b"[")
    _elements(value, out)
    out.append(b"]")


def _elements(value: np.ndarray, out: list[bytes | memoryview]) -> None:
    """Append the JSON of the array's elements along its first dimension, comma-separated,
    in parts of at most PIECE_VALUES numbers (or the array's one element, split deeper)."""
    if value.size <= PIECE_VALUES:
        out.append(memoryview(orjson.dumps(value, option=OPTIONS))[1:-1])  # without [ and ]
    elif len(value) == 1:
        _array(value[0], out)
    else:
        rows = -(-len(value) // -(-value.size // PIECE_VALUES))  # parts of about equal size
        for start in range(0, len(value), rows):
            if start:
                out.append(b",")
            _elements(value[start : start + rows], out)


# Arrays of up to LIST_VALUES numbers become lists: a tensor's first .numpy() costs about 5 us
# (measured: fresh tensors of 8 x 10), more than tolist() and orjson's writing of the list;
# larger ones stay numpy arrays, which orjson writes faster than lists.
LIST_VALUES = 128


def stages_to_json(stages: Stages, fields: Collection[str] | None = None) -> dict[str, Any]:
    """Stage name -> its values: a C-contiguous float64/int64 numpy array, or a nested list of
    Python numbers for small arrays, a Python number for 0-d stages, None for one_hot with
    probability targets, and the list of warnings. NaN and inf stay as they are: orjson writes
    them as null, the .npz answer keeps them."""
    if fields is None:
        names: Collection[str] = STAGES
    else:
        if isinstance(fields, str):  # a lone name, not an iterable of its letters
            fields = [fields]
        unknown = [f for f in fields if f not in STAGES]
        if unknown:  # the first few, each shortened: a request may name 20,000 long ones
            named = ", ".join(map(SHOWN.repr, unknown[:SHOWN_FIELDS]))
            if len(unknown) > SHOWN_FIELDS:
                named += f" and {len(unknown) - SHOWN_FIELDS:,} more"
            raise InputError(
                f"unknown field{'s' if len(unknown) > 1 else ''} {named}; "
                f"choose from {', '.join(STAGES)}.",
                code="unknown_fields",
                fields=named,
            )
        wanted = set(fields)
        names = [name for name in STAGES if name in wanted]
    out: dict[str, Any] = {}
    for name in names:
        value = getattr(stages, name)
        if not isinstance(value, Tensor):
            # warnings, or a missing one_hot
            out[name] = list(value) if isinstance(value, list) else value
        elif value.dim() == 0:
            out[name] = value.item()
        elif 0 < value.numel() <= LIST_VALUES:
            out[name] = value.tolist()
        else:
            # numpy(force=True) detaches and copies to the CPU only where needed
            out[name] = (value if value.is_contiguous() else value.contiguous()).numpy(force=True)
    return out


class NpzResponse(Response):
    """An answer as an uncompressed .npz (what np.savez writes): what np.load(io.BytesIO(body))
    opens without pickle. Every key of the answer is one array: numbers and arrays as they are
    (NaN and inf kept), strings and lists of strings as unicode arrays, records (a list of
    objects, such as /predict's images) as a unicode array of their JSON texts; None is left
    out."""

    media_type = NPZ

    def render(self, content: Any) -> bytes:
        return npz_bytes({k: as_array(v) for k, v in content.items() if v is not None})


# A stored zip written here rather than by np.savez: savez goes through zipfile a member at a time
# and copies each array into it, 1.8 ms for the 2.8 MB answer to a 4096 x 10 /loss, against 1.1
# ms here, of which about 0.75 is the CRC-32 that every zip member carries (the rendering alone,
# timed on the development machine; the whole request takes about 9 ms, python -m
# bench.inprocess npz4096). The members are numpy's own .npy files (numpy.lib.format writes
# their headers), so np.load reads the archive as one of savez's.
LOCAL = struct.Struct("<4s5H3L2H")  # a member's local header (APPNOTE.TXT 4.3.7)
CENTRAL = struct.Struct("<4s6H3L5H2L")  # its central directory entry (4.3.12)
END = struct.Struct("<4s4H2LH")  # the end of central directory record (4.3.16)
VERSION = 20  # 2.0: the version that a stored member needs
MADE_BY = 3 << 8 | VERSION  # on Unix (whose permissions EXTERNAL holds), by zip 2.0
EXTERNAL = 0o600 << 16  # read and write for the owner, as savez's members have
DATE_1980 = 0x21  # 1980-01-01 in MS-DOS format, the date savez writes too


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """The .npz of these arrays: a stored (uncompressed) zip of one NAME.npy per array."""
    members: list[bytes | memoryview] = []
    directory: list[bytes] = []
    offset = 0
    for key, value in arrays.items():
        array = value if value.flags.c_contiguous else value.copy(order="C")  # keeps 0-d
        name, head = f"{key}.npy".encode(), npy_header(array)
        data = array.data.cast("B")  # the values' bytes, without a copy
        crc, size = binascii.crc32(data, binascii.crc32(head)), len(head) + len(data)
        # what both headers say: flags, method (0: stored), time, date, CRC-32, compressed and
        # uncompressed size, the name's length, the extra field's
        shared = (0, 0, 0, DATE_1980, crc, size, size, len(name), 0)
        local = LOCAL.pack(b"PK\x03\x04", VERSION, *shared) + name
        # ... and the directory's: made by, needed, the above, comment, disk, attributes, offset
        entry = CENTRAL.pack(b"PK\x01\x02", MADE_BY, VERSION, *shared, 0, 0, 0, EXTERNAL, offset)
        directory.append(entry + name)
        members += [local, head, data]
        offset += len(local) + size
    central = b"".join(directory)
    end = END.pack(b"PK\x05\x06", 0, 0, len(directory), len(directory), len(central), offset, 0)
    return b"".join([*members, central, end])


def npy_header(array: np.ndarray) -> bytes:
    """The header of the .npy file of a C-contiguous array, as numpy.lib.format writes it."""
    out = io.BytesIO()
    npy_format.write_array_header_1_0(out, npy_format.header_data_from_array_1_0(array))
    return out.getvalue()


def as_array(value: Any) -> np.ndarray:
    """One value of an answer as an array numpy saves without pickle (never of dtype object)."""
    if isinstance(value, np.ndarray):
        array = value
    elif isinstance(value, list) and not value:
        array = np.array([], dtype=np.str_)  # an empty list of warnings
    else:
        try:
            array = np.asarray(value)
        except ValueError:  # ragged lists
            array = np.array(None)
    if array.dtype == object:  # records, objects: their JSON
        if isinstance(value, list):
            return np.array([orjson.dumps(v, option=OPTIONS).decode() for v in value])
        return np.array(orjson.dumps(value, option=OPTIONS).decode())
    return array
