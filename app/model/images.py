"""Decoding uploaded pictures safely, in memory, and turning them into the Net's 3x32x32 input."""

import base64
import io
import struct
import unicodedata
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

import numpy as np
import torch
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from app.engine import InputError
from app.model.inputs import SIZE, normalize

# The only formats Pillow may even try: passing them to Image.open keeps every other plugin
# (EPS, which would run Ghostscript, PDF, TIFF, ...) away from uploaded bytes.
ALLOWED_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "GIF", "WEBP", "BMP")


# Resizing uses LANCZOS, Pillow's sharpest antialiasing filter: at 32x32 every detail counts,
# and it blurs less than BICUBIC or BOX. reducing_gap=3.0 first shrinks a big picture by an
# integer factor (a fast box average) to no less than 3x the target, then applies LANCZOS: the
# result is indistinguishable from LANCZOS alone, at a cost that no longer grows with the upload.
RESAMPLE = Image.Resampling.LANCZOS
REDUCING_GAP = 3.0
# JPEGs are decoded at 1/2, 1/4 or 1/8 scale by libjpeg when that still leaves this many
# pixels on each side, so a 24-megapixel photo never has to be decoded in full.
JPEG_DRAFT_SIDE = round(SIZE * REDUCING_GAP)

# EXIF orientations that need a turn or a flip; 1 (and anything unknown) is upright.
TURNED = (2, 3, 4, 5, 6, 7, 8)

WHITE = (255, 255, 255, 255)
MAX_FILENAME_LENGTH = 255
# Invisible characters that reorder text: a name such as "cat\u202egnp.exe" would be shown as
# "catexe.png". Stripped along with the control characters (and unpaired surrogates).
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)

NOT_AN_IMAGE = "not a PNG, JPEG, GIF, WebP or BMP image"
DAMAGED = "the image data is damaged or incomplete"
# Not supported (decided in issue 12): reading HEIC needs libheif, a native dependency, for a
# format any iPhone can export as JPEG. Such a file is named as HEIC, not just "not an image".
HEIC = (
    "iPhone photos in HEIC format are not supported; export the photo as JPEG (or set the "
    "camera to “Most Compatible”)"
)
HEIF_BRANDS = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1"}
)

# How many reads Image.open may make of an upload while it looks for the header. Pillow's JPEG
# reader looks for the next marker one byte, one read, at a time: 45 MB of zeros after a JPEG's
# first bytes took it 3 s. A budget of reads, not of bytes: a real header takes a few reads per
# marker or chunk, each read whole however long (a phone's JPEG can carry megabytes of metadata
# before its pixels), while junk costs a read a byte and runs out of budget within 4 kB.
HEADER_READS = 4096
NO_HEADER = "no image header found at the start of the file"

# PNG chunks that Pillow inflates (text, up to 1 MiB each; the ICC profile) and keeps: a 66 kB
# PNG of 64 zTXt chunks inflates to 64 MiB. Nothing in them changes the pixels the Net sees, so
# they are cut out before Pillow reads the file. And each chunk costs Pillow some microseconds
# (tens on a busy machine): a PNG may hold one chunk per 2 KiB and 64 more. Encoders write image
# data in chunks of 8 KiB (libpng) or more, so a real PNG is far below that, while a request
# of PNGs holds at most 30,000 chunks in all (64 pictures, 50 MiB).
# The JPEG markers whose segments Pillow reads by their length (the handlers of
# JpegImagePlugin.MARKER): SOF0-15 with DHT and DAC but not JPG (0xC8), SOS to APP15, COM.
JPEG_SEGMENTS = frozenset({*range(0xC0, 0xC8), *range(0xC9, 0xD0), *range(0xDA, 0xF0), 0xFE})

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SKIPPED_PNG_CHUNKS = frozenset({b"tEXt", b"zTXt", b"iTXt", b"iCCP"})
PNG_BYTES_PER_CHUNK = 2048
PNG_EXTRA_CHUNKS = 64


class ImageError(InputError):
    """An upload that cannot be used; str(error) is a sentence for the user that names the file."""


@dataclass(frozen=True, eq=False)  # eq=False: a tensor has no single truth value to compare by.
class Picture:
    """One decoded upload: what it was and the 32x32 RGB picture the Net sees."""

    filename: str
    format: str  # one of ALLOWED_FORMATS
    original_size: tuple[int, int]  # (width, height) as uploaded, after EXIF orientation
    pixels: torch.Tensor  # uint8 (3, 32, 32), RGB, before normalize(); see decode for its layout

    def __post_init__(self) -> None:
        if self.pixels.dtype != torch.uint8 or tuple(self.pixels.shape) != (3, SIZE, SIZE):
            raise ValueError(
                f"pixels must be a uint8 (3, {SIZE}, {SIZE}) tensor, "
                f"got {self.pixels.dtype} {tuple(self.pixels.shape)}"
            )


@dataclass(frozen=True, eq=False)
class Upload:
    """An upload whose header has been read and checked, and nothing decoded yet."""

    filename: str  # cleaned: see clean_filename
    image: Image.Image  # opened lazily: only the header has been parsed
    size: int  # bytes uploaded

    @property
    def pixels(self) -> int:
        """Width x height as the header declares them: what decoding the upload will cost."""
        return int(self.image.width * self.image.height)


def open_upload(data: bytes, filename: str, *, max_pixels: int) -> Upload:
    """Read an upload's header, without decoding it, and refuse it if it is not an allowed
    format or declares more than max_pixels pixels (or more than Pillow's own
    decompression-bomb limit, Image.MAX_IMAGE_PIXELS). Decoding cost follows the pixels, not
    the bytes: a 2 kB WebP can declare 40 million pixels.

    Raises ImageError, with a sentence that names the file."""
    name = clean_filename(filename)
    if not data:
        raise _error(name, "the file is empty", "image_empty")
    limit = (
        max_pixels if Image.MAX_IMAGE_PIXELS is None else min(max_pixels, Image.MAX_IMAGE_PIXELS)
    )
    size = len(data)
    try:
        if data.startswith(PNG_SIGNATURE):
            data = _without_png_metadata(data, name)
        # Image.open reads only the header. Pillow itself raises DecompressionBombError above
        # 2 * MAX_IMAGE_PIXELS; between 1x and 2x it warns (raised if warnings are errors) and the
        # size check below refuses the picture.
        if _jpeg_header_within_budget(data):
            image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
        else:
            file = _ReadBudget(data, HEADER_READS)
            image = Image.open(file, formats=ALLOWED_FORMATS)
            file.budget = None  # decoding reads what it needs
    except _OutOfReads as exc:
        raise _error(name, NO_HEADER, "image_no_header") from exc
    except UnidentifiedImageError as exc:
        if is_heif(data):
            raise _error(name, HEIC, "image_heic") from exc
        raise _error(name, NOT_AN_IMAGE, "not_an_image") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _too_large(name, limit) from exc
    except (MemoryError, ImageError):
        raise
    except Exception as exc:  # Pillow raises many types for bad data (OSError, SyntaxError, ...)
        raise _error(name, DAMAGED, "image_damaged") from exc

    # Pillow itself refuses a header of no width or height (ImageFile.__init__: min(size) <= 0).
    width, height = image.size
    if width * height > limit:
        raise _too_large(name, limit)
    return Upload(name, image, size)


def _too_large(name: str, limit: int) -> ImageError:
    reason = f"the image is too large (more than {limit:,} pixels)"
    return _error(name, reason, "image_too_large", limit=limit)


def _jpeg_header_within_budget(data: bytes) -> bool:
    """Whether Image.open can read this JPEG's header in at most HEADER_READS reads, so that
    counting them (a Python call per read: a third of the time Pillow takes to open a CIFAR-10
    JPEG) is not needed: its segments run back to back from the start to the first SOS, each
    one that Pillow reads by its length (JPEG_SEGMENTS), and there are few enough of them.

    Pillow's reads (JpegImagePlugin.JpegImageFile._open): Image.open's prefix and the first 3
    bytes, then per segment at most 4 (the marker's second byte, the length, the body, the
    next marker's first byte), the SOS 3: 1 + 4 * segments at most. Anything else (fill bytes,
    junk between segments, a length cut short) takes the counted path, which refuses or opens
    it as before."""
    most = (HEADER_READS - 1) // 4  # segments, the SOS included
    if not data.startswith(b"\xff\xd8"):
        return False
    position = 2
    for _ in range(most):
        if data[position : position + 1] != b"\xff" or position + 4 > len(data):
            return False
        marker = data[position + 1]
        length = (data[position + 2] << 8) | data[position + 3]
        if marker not in JPEG_SEGMENTS or length < 2 or position + 2 + length > len(data):
            return False
        if marker == 0xDA:  # start of scan: the header ends here
            return True
        position += 2 + length
    return False


class _OutOfReads(Exception):
    """Image.open read the file HEADER_READS times without finding a header."""


class _ReadBudget(io.BytesIO):
    """The upload as an in-memory file that raises _OutOfReads on the read after `budget` reads,
    until `budget` is set to None."""

    def __init__(self, data: bytes, budget: int) -> None:
        super().__init__(data)
        self.budget: int | None = budget

    def read(self, size: int | None = -1, /) -> bytes:
        if self.budget is not None:
            if self.budget <= 0:
                raise _OutOfReads
            self.budget -= 1
        return super().read(size)


def _without_png_metadata(data: bytes, name: str) -> bytes:
    """The PNG without its SKIPPED_PNG_CHUNKS; ImageError for more chunks than its size warrants.

    Walks the chunks by their lengths up to IEND; a length that runs past the end stops the walk
    and leaves the rest as it is, for Pillow to find damaged."""
    most = PNG_EXTRA_CHUNKS + len(data) // PNG_BYTES_PER_CHUNK
    kept: list[bytes] = []
    start = 0  # the first byte not yet copied into kept
    position, chunks = len(PNG_SIGNATURE), 0
    while position + 8 <= len(data):
        chunks += 1
        if chunks > most:
            raise _error(
                name, f"the PNG is cut into more than {most:,} chunks", "png_chunks", limit=most
            )
        length, kind = struct.unpack_from(">I4s", data, position)
        end = position + 12 + length  # length and type, the data, its CRC
        if end > len(data) or kind == b"IEND":
            break
        if kind in SKIPPED_PNG_CHUNKS:
            kept.append(data[start:position])
            start = end
        position = end
    return b"".join([*kept, data[start:]]) if kept else data


def decode(upload: Upload) -> Picture:
    """Decode an opened upload and turn it into the Net's 32x32 RGB input.

    Steps: EXIF orientation applied; the largest centred square kept; converted to 8-bit RGB
    (16-bit grey scaled down, not clipped); resized to 32x32 (a 32x32 RGB picture passes
    through bit for bit). Transparent parts are composited over white, as they show on most
    web pages and documents, so a logo on a transparent background looks as its uploader saw it.

    Raises ImageError for anything that is not a complete, decodable picture.
    """
    upright, image_format, original_size = _decode(upload)
    if upright.size == (SIZE, SIZE) and upright.mode == "RGB" and not upright.has_transparency_data:
        # Already the Net's input (a CIFAR-10 picture): cropping, converting and resizing would
        # each return an identical copy.
        rgb = upright
    else:
        square = _centre_square(upright)
        small = _to_rgb_or_rgba(square).resize((SIZE, SIZE), RESAMPLE, reducing_gap=REDUCING_GAP)
        rgb = _over_white(small) if small.mode == "RGBA" else small
    hwc = np.frombuffer(rgb.tobytes(), dtype=np.uint8).reshape(SIZE, SIZE, 3).copy()  # writable
    # (3, 32, 32) as a view of the rows of RGB pixels Pillow wrote (channels last in memory), as
    # the preview reads them; to_batch's stack puts them channels first.
    pixels = torch.from_numpy(hwc).permute(2, 0, 1)
    return Picture(upload.filename, image_format, original_size, pixels)


def load_picture(data: bytes, filename: str, *, max_pixels: int) -> Picture:
    """open_upload, then decode: an upload's bytes to the Net's 32x32 RGB input."""
    return decode(open_upload(data, filename, max_pixels=max_pixels))


def to_batch(pictures: Sequence[Picture]) -> torch.Tensor:
    """The Net's input: float32 (N, 3, 32, 32), normalised as in training, channels first in
    memory, as the tutorial's tensors are.

    Not channels last, though the Net's convolutions run faster on it (32 CIFAR-10 pictures:
    1.5 ms against 1.9 ms, one thread, on an AVX-512 machine): there its logits were the same
    bit for bit, but on an AVX2 machine they differ in the last bits (up to 4.5e-8 on a random
    batch of 32); and training on it gave other gradients in the last bits on AVX-512 too."""
    if not pictures:
        return normalize(torch.empty((0, 3, SIZE, SIZE), dtype=torch.uint8))
    return normalize(torch.stack([picture.pixels for picture in pictures]))  # (N, 3, 32, 32)


def preview_data_url(picture: Picture) -> str:
    """A "data:image/png;base64,..." URL of the 32x32 RGB picture the Net saw."""
    return "data:image/png;base64," + base64.b64encode(_png(picture.pixels)).decode("ascii")


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


# IHDR: width, height, 8 bits per sample, colour type 2 (RGB), deflate, filter method 0,
# no interlacing
_PNG_START = b"\x89PNG\r\n\x1a\n" + _png_chunk(
    b"IHDR", struct.pack(">IIBBBBB", SIZE, SIZE, 8, 2, 0, 0, 0)
)
_PNG_END = _png_chunk(b"IEND", b"")
_ROW = 1 + 3 * SIZE  # a scanline: its filter type (0, none), then the RGB bytes


def _png(pixels: torch.Tensor) -> bytes:
    """A PNG of uint8 (3, 32, 32) RGB pixels, its image data not compressed (compressing, at
    zlib's level 6, took some 50 us for a quarter fewer bytes)."""
    scanlines = np.zeros((SIZE, _ROW), dtype=np.uint8)  # each row's filter type: 0
    scanlines[:, 1:] = pixels.cpu().numpy().transpose(1, 2, 0).reshape(SIZE, 3 * SIZE)
    return _PNG_START + _png_chunk(b"IDAT", _stored_zlib(scanlines.tobytes())) + _PNG_END


def _stored_zlib(data: bytes) -> bytes:
    """The zlib stream of `data` in one stored (not compressed) deflate block: the zlib header
    (RFC 1950), the final block's header with the length and its complement (RFC 1951, 3.2.4),
    the data, its Adler-32. The same bytes as zlib.compress(data, 0) up to 65,531 bytes (zlib
    1.2.13 cuts longer data into more blocks; a 32x32 picture's scanlines are 3,104 bytes).
    Written here because zlib.compress sets up a whole deflate state (some 256 kB) even at
    level 0, and where glibc hands that memory back to the system after each call (its trim
    threshold, 128 kB until the process frees a bigger block), each call faults it in again: 63
    us a call for those 3,104 bytes in a fresh process on the development machine (3.4 us with
    MALLOC_TRIM_THRESHOLD_ raised), this 2 us; inside the served /predict, 17.7 against 12.1 us
    at the median for one picture, 5.4 against 2.9 us each for 32 (alternating, in process)."""
    if len(data) > 0xFFFF:
        raise ValueError(f"{len(data):,} bytes do not fit in one stored block")
    header = b"\x78\x01" + struct.pack("<BHH", 1, len(data), len(data) ^ 0xFFFF)
    return header + data + struct.pack(">I", zlib.adler32(data))


def clean_filename(filename: str) -> str:
    """The name as given, without control characters, cut to 255 characters."""
    if filename.isascii() and filename.isprintable():
        # printable ASCII holds no control characters (category Cc in ASCII is exactly what
        # isprintable() refuses), no surrogates and no bidi controls: nothing to strip
        return filename[:MAX_FILENAME_LENGTH]
    return "".join(islice(_visible(filename), MAX_FILENAME_LENGTH))


def _visible(text: str) -> Iterator[str]:
    for char in text:
        if unicodedata.category(char) not in ("Cc", "Cs") and char not in BIDI_CONTROLS:
            yield char


def _error(name: str, reason: str, code: str, **params: Any) -> ImageError:
    shown = name or "(unnamed file)"
    return ImageError(f"{shown}: {reason}", code=code, filename=shown, **params)


def is_heif(data: bytes) -> bool:
    """Whether the file is HEIF (an iPhone's HEIC photo): an ISO base media file whose first box,
    ftyp, names a HEIF brand as its major brand or among its compatible brands (ISO/IEC 23008-12,
    section 10). AVIF, HEIF's AV1 cousin, names avif/avis first and is not counted."""
    if data[4:8] != b"ftyp" or len(data) < 16:
        return False
    size = min(int.from_bytes(data[:4], "big"), len(data), 256)
    major = data[8:12]
    compatible = {data[k : k + 4] for k in range(16, size - 3, 4)}
    if major in (b"avif", b"avis"):
        return False
    return bool(({major} | compatible) & HEIF_BRANDS)


def _decode(upload: Upload) -> tuple[Image.Image, str, tuple[int, int]]:
    """Decode in full and apply EXIF orientation.

    Returns the upright image, its format and its (width, height) before any JPEG draft scaling.
    """
    image, name = upload.image, upload.filename
    width, height = image.size
    # A JPEG with several pictures in it (MPO, written by some cameras) is still a JPEG.
    image_format = "JPEG" if image.format == "MPO" else str(image.format)

    try:
        if image_format == "JPEG":
            image.draft("RGB", (JPEG_DRAFT_SIDE, JPEG_DRAFT_SIDE))
        # load() decodes everything; with ImageFile.LOAD_TRUNCATED_IMAGES left False, as Pillow
        # ships it, a truncated file raises instead of being padded with grey.
        image.load()
        orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
        # exif_transpose turns or flips for orientations 2 to 8, and otherwise returns a copy
        upright = ImageOps.exif_transpose(image) if orientation in TURNED else image
    except MemoryError:
        raise
    except Exception as exc:  # Pillow raises many types for bad data (OSError, SyntaxError, ...)
        raise _error(name, DAMAGED, "image_damaged") from exc

    # Orientations 5 to 8 turn the picture by a quarter: width and height swap.
    original_size = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    return upright, image_format, original_size


def _centre_square(image: Image.Image) -> Image.Image:
    """The largest square in the middle of the picture."""
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return image.crop((left, top, left + side, top + side))


def _to_rgb_or_rgba(image: Image.Image) -> Image.Image:
    """8-bit RGBA if the picture has any transparency, else 8-bit RGB."""
    if image.mode == "I" or image.mode.startswith("I;16"):
        image = _sixteen_bit_to_eight(image)
    elif image.mode == "F":
        image = image.convert("L")  # Pillow's float pictures use the 0-255 scale of "L".
    # Alpha bands, RGBA palettes and "transparency" keys (palette index or colour) all count.
    return image.convert("RGBA" if image.has_transparency_data else "RGB")


def _sixteen_bit_to_eight(image: Image.Image) -> Image.Image:
    """16-bit grey (0-65535; "I" is what older Pillows made of 16-bit PNGs) to "L" or "LA".

    Pillow's own convert("L") clips at 255, which would turn almost every pixel white.
    """
    values = np.asarray(image).astype(np.int64)
    grey = ((np.clip(values, 0, 65535) + 128) // 257).astype(np.uint8)  # 65535 -> 255
    transparent = image.info.get("transparency")
    if not isinstance(transparent, int):
        return Image.fromarray(grey)
    alpha = np.where(values == transparent, 0, 255).astype(np.uint8)
    return Image.fromarray(np.dstack([grey, alpha]))


def _over_white(image: Image.Image) -> Image.Image:
    """RGBA composited over a white background, as RGB."""
    background = Image.new("RGBA", image.size, WHITE)
    return Image.alpha_composite(background, image).convert("RGB")
