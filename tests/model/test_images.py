"""Tests for app.images: decoding uploads safely and preprocessing them for the Net."""

import base64
import io
import random
import struct
import time
import warnings
import zlib
from collections.abc import Callable
from typing import Literal

import numpy as np
import pytest
import torch
from PIL import EpsImagePlugin, ExifTags, Image, ImageFile, JpegImagePlugin, PngImagePlugin

from app.model import Net, images, normalize
from app.model.images import (
    ALLOWED_FORMATS,
    MAX_FILENAME_LENGTH,
    ImageError,
    Picture,
    _stored_zlib,
    _to_rgb_or_rgba,
    clean_filename,
    decode,
    load_picture,
    open_upload,
    preview_data_url,
    to_batch,
)
from tests.conftest import HANG_GUARD_S

MAX_PIXELS = 40_000_000
RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


class PluginCalled(Exception):
    """Raised by stand-ins for code that must never run on the inputs under test."""


# --- building inputs in memory ---------------------------------------------------------------


def encode(image: Image.Image, image_format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def solid(size: tuple[int, int], colour: float | tuple[int, ...], mode: str = "RGB") -> Image.Image:
    return Image.new(mode, size, colour)


def quadrants() -> Image.Image:
    """32x32: red, green / blue, white quadrants of 16x16."""
    image = solid((32, 32), WHITE)
    image.paste(RED, (0, 0, 16, 16))
    image.paste(GREEN, (16, 0, 32, 16))
    image.paste(BLUE, (0, 16, 16, 32))
    return image


def noise(size: tuple[int, int], seed: int = 0) -> Image.Image:
    values = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(values)


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_by_hand(
    width: int, height: int, *, before_idat: bytes = b"", after_idat: bytes = b""
) -> bytes:
    """An 8-bit RGB PNG whose header claims width x height; its data holds one row at most."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    row = b"\0" + b"\0" * 3 * min(width, 4)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + before_idat
        + png_chunk(b"IDAT", zlib.compress(row))
        + after_idat
        + png_chunk(b"IEND", b"")
    )


def one_pixel_png(*, before_idat: bytes = b"", after_idat: bytes = b"") -> bytes:
    return png_by_hand(1, 1, before_idat=before_idat, after_idat=after_idat)


def hwc(picture: Picture) -> np.ndarray:
    """The picture's pixels as (32, 32, 3) uint8, the layout Pillow uses."""
    return picture.pixels.permute(1, 2, 0).numpy()


def load(data: bytes, filename: str = "upload.png", max_pixels: int = MAX_PIXELS) -> Picture:
    return load_picture(data, filename, max_pixels=max_pixels)


# --- formats -----------------------------------------------------------------------------------

LOSSLESS = {
    "PNG": {},
    "GIF": {},
    "WEBP": {"lossless": True},
    "BMP": {},
}


@pytest.mark.parametrize("image_format", sorted(LOSSLESS))
def test_lossless_formats_round_trip_exactly(image_format: str) -> None:
    picture = load(encode(quadrants(), image_format, **LOSSLESS[image_format]))
    assert picture.format == image_format
    assert picture.original_size == (32, 32)
    assert np.array_equal(hwc(picture), np.asarray(quadrants()))


def test_jpeg_round_trips_closely() -> None:
    picture = load(encode(quadrants(), "JPEG", quality=95, subsampling=0), "photo.jpg")
    assert picture.format == "JPEG"
    assert picture.original_size == (32, 32)
    pixels = hwc(picture).astype(int)
    for (y, x), colour in zip(
        [(4, 4), (4, 27), (27, 4), (27, 27)], [RED, GREEN, BLUE, WHITE], strict=True
    ):
        assert np.abs(pixels[y, x] - colour).max() <= 4


def test_allowed_formats_are_exactly_the_five() -> None:
    assert ALLOWED_FORMATS == ("PNG", "JPEG", "GIF", "WEBP", "BMP")


def test_32x32_png_passes_through_bit_exact() -> None:
    image = noise((32, 32))
    picture = load(encode(image, "PNG"))
    assert picture.pixels.dtype == torch.uint8
    assert picture.pixels.shape == (3, 32, 32)
    assert picture.pixels.permute(1, 2, 0).is_contiguous()  # rows of RGB in memory: see to_batch
    assert np.array_equal(hwc(picture), np.asarray(image))


def test_32x32_opaque_rgba_png_passes_through_bit_exact() -> None:
    image = noise((32, 32)).convert("RGBA")
    assert np.array_equal(hwc(load(encode(image, "PNG"))), np.asarray(image.convert("RGB")))


def test_32x32_jpeg_is_what_pillow_decodes() -> None:
    data = encode(noise((32, 32), seed=3), "JPEG", quality=75)
    picture = load(data, "cifar.jpg")
    assert picture.format == "JPEG"
    assert picture.original_size == (32, 32)
    assert picture.pixels.permute(1, 2, 0).is_contiguous()
    assert np.array_equal(hwc(picture), np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))


def test_32x32_rgb_png_with_a_transparent_colour_goes_over_white() -> None:
    image = solid((32, 32), RED)
    image.paste(BLUE, (0, 0, 16, 32))
    pixels = hwc(load(encode(image, "PNG", transparency=BLUE)))
    assert (pixels[:, :16] == WHITE).all()
    assert (pixels[:, 16:] == RED).all()


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_32x32_jpeg_with_exif_orientation_is_turned(orientation: int) -> None:
    image = noise((32, 32), seed=orientation)
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    data = encode(image, "JPEG", exif=exif, quality=95)
    plain = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    turn = {3: 2, 6: -1, 8: 1}[orientation]  # quarter turns anticlockwise
    assert np.array_equal(hwc(load(data, "turned.jpg")), np.rot90(plain, turn))


def test_pixels_are_channels_first() -> None:
    picture = load(encode(solid((32, 32), (10, 20, 30)), "PNG"))
    assert picture.pixels[:, 0, 0].tolist() == [10, 20, 30]


# --- EXIF orientation ---------------------------------------------------------------------------


def corners(picture: Picture) -> list[np.ndarray]:
    pixels = hwc(picture).astype(int)
    return [pixels[1, 1], pixels[1, 30], pixels[30, 1], pixels[30, 30]]


def four_colours(size: tuple[int, int] = (64, 32)) -> Image.Image:
    """Red, blue / green, white quadrants: every turn and flip of it is a different picture."""
    width, height = size
    image = solid(size, WHITE)
    image.paste(RED, (0, 0, width // 2, height // 2))
    image.paste(BLUE, (width // 2, 0, width, height // 2))
    image.paste(GREEN, (0, height // 2, width // 2, height))
    return image


# What each EXIF orientation asks a viewer to do to the stored pixels (rows, columns, RGB), from
# the EXIF specification (CIPA DC-008, tag 0x0112) rather than from Pillow.
SHOWN: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],  # mirrored left to right
    3: lambda a: np.rot90(a, 2),
    4: lambda a: a[::-1],  # mirrored top to bottom
    5: lambda a: np.rot90(a[:, ::-1], 1),  # mirrored, then a quarter turn anticlockwise
    6: lambda a: np.rot90(a, -1),  # a quarter turn clockwise
    7: lambda a: np.rot90(a[:, ::-1], -1),  # mirrored, then a quarter turn clockwise
    8: lambda a: np.rot90(a, 1),
}


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP"])
@pytest.mark.parametrize("orientation", sorted(SHOWN))
def test_every_exif_orientation_is_applied_as_the_specification_says(
    image_format: str, orientation: int
) -> None:
    stored = four_colours()
    shown = SHOWN[orientation](np.asarray(stored))
    height, width = shown.shape[:2]
    side = min(width, height)  # the centre square, whose corners the 32x32 picture keeps
    top, left = (height - side) // 2, (width - side) // 2
    square = shown[top : top + side, left : left + side].astype(int)
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    options: dict[str, object] = {"exif": exif}
    if image_format == "JPEG":
        options |= {"quality": 95, "subsampling": 0}
    if image_format == "WEBP":
        options["lossless"] = True
    picture = load(encode(stored, image_format, **options))
    assert picture.original_size == (width, height)  # as shown: 32x64 after a quarter turn
    expected = [square[1, 1], square[1, -2], square[-2, 1], square[-2, -2]]
    for pixel, colour in zip(corners(picture), expected, strict=True):
        assert np.abs(pixel - colour).max() <= 8, (pixel, colour)


def test_mpo_is_a_jpeg_and_its_first_picture_is_used() -> None:
    """An MPO (a JPEG with more pictures after the first, as some cameras write) is reported
    as a JPEG, and the first picture is what the Net sees."""
    first, second = solid((40, 30), RED), solid((40, 30), BLUE)
    data = encode(first, "MPO", save_all=True, append_images=[second], quality=95)
    assert Image.open(io.BytesIO(data)).format == "MPO"
    picture = load(data, "camera.jpg")
    assert picture.format == "JPEG" and picture.original_size == (40, 30)
    assert np.abs(hwc(picture).astype(int) - RED).max() <= 8


def test_big_jpeg_is_decoded_at_reduced_scale(monkeypatch: pytest.MonkeyPatch) -> None:
    drafts: list[object] = []
    real_draft = JpegImagePlugin.JpegImageFile.draft

    def spy(self: JpegImagePlugin.JpegImageFile, mode: str | None, size: object) -> object:
        result = real_draft(self, mode, size)  # type: ignore[arg-type]
        drafts.append(result)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    image = solid((1200, 800), BLUE)
    image.paste(RED, (0, 0, 600, 800))
    picture = load(encode(image, "JPEG", exif=exif, quality=90), "big.jpg")

    assert drafts[0] == ("RGB", (0, 0, 1200 / 8, 800 / 8))  # libjpeg decoded at 1/8 scale
    assert picture.original_size == (800, 1200)  # full size, not the draft's
    for pixel, colour in zip(corners(picture), [RED, RED, BLUE, BLUE], strict=True):
        assert np.abs(pixel - colour).max() <= 8


# --- colour modes -------------------------------------------------------------------------------


def test_grayscale_becomes_grey_rgb() -> None:
    picture = load(encode(solid((32, 32), 77, "L"), "PNG"))
    assert (hwc(picture) == 77).all()


def test_grayscale_with_alpha_goes_over_white() -> None:
    image = solid((32, 32), (0, 255), "LA")
    image.paste((0, 0), (0, 0, 16, 32))  # left half transparent black
    pixels = hwc(load(encode(image, "PNG")))
    assert (pixels[:, :16] == 255).all()
    assert (pixels[:, 16:] == 0).all()


def test_one_bit_bmp() -> None:
    image = solid((32, 32), 1, "1")
    image.paste(0, (0, 0, 32, 16))
    pixels = hwc(load(encode(image, "BMP")))
    assert (pixels[:16] == 0).all()
    assert (pixels[16:] == 255).all()


def test_palette_with_transparency() -> None:
    image = Image.new("P", (32, 32), 0)
    image.putpalette([*RED, *GREEN])
    image.paste(1, (0, 16, 32, 32))
    for image_format in ("PNG", "GIF"):
        pixels = hwc(load(encode(image, image_format, transparency=0)))
        assert (pixels[:16] == WHITE).all(), image_format  # transparent red shows the white
        assert (pixels[16:] == GREEN).all(), image_format


def test_cmyk_jpeg() -> None:
    cyan_magenta_yellow_black = (0, 255, 255, 0)  # no cyan, full magenta and yellow: red
    data = encode(solid((32, 32), cyan_magenta_yellow_black, "CMYK"), "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    pixels = hwc(load(data)).astype(int)
    assert np.abs(pixels - RED).max() <= 4


def test_rgba_alpha_is_composited_over_white() -> None:
    image = solid((32, 32), (0, 0, 0, 0), "RGBA")
    image.paste((0, 0, 0, 128), (0, 16, 32, 32))  # half-transparent black below
    pixels = hwc(load(encode(image, "PNG"))).astype(int)
    assert (pixels[:16] == 255).all()  # fully transparent: white, whatever its colour
    assert (np.abs(pixels[16:] - 127) <= 1).all()  # half-transparent black: mid grey


def sixteen_bit(rows: list[int]) -> Image.Image:
    """32x32 16-bit grey in horizontal bands of these values (Pillow's paste() mangles them)."""
    values = np.repeat(np.array(rows, dtype=np.uint16), 32 // len(rows))
    return Image.fromarray(np.tile(values[:, None], (1, 32)))


def test_16_bit_png_is_scaled_not_clipped() -> None:
    data = encode(sixteen_bit([0, 128 * 257, 65535, 1000]), "PNG")  # 1000 / 257 = 3.9
    assert Image.open(io.BytesIO(data)).mode.startswith("I;16")
    pixels = hwc(load(data))
    assert [int(pixels[row, 0, 0]) for row in (0, 8, 16, 24)] == [0, 128, 255, 4]
    assert (pixels[:, :, 0] == pixels[:, :, 2]).all()


def test_16_bit_png_transparency() -> None:
    pixels = hwc(load(encode(sixteen_bit([1000, 30000]), "PNG", transparency=1000)))
    assert (pixels[:16] == 255).all()
    assert (pixels[16:] == round(30000 / 257)).all()


@pytest.mark.parametrize(
    ("mode", "value", "grey"),
    [
        ("I", 65535, 255),
        ("I", 257 * 100, 100),
        ("I", 128, 0),  # 128 / 257 = 0.498: rounded to the nearest level, down
        ("I", 129, 1),  # 0.502: up
        ("I", 70_000, 255),  # "I" holds 32 bits: beyond 16 bits, the brightest grey
        ("I", -1000, 0),  # below 0, black
        ("F", 128.0, 128),
    ],
)
def test_32_bit_integer_and_float_modes(mode: str, value: float, grey: int) -> None:
    rgb = _to_rgb_or_rgba(Image.new(mode, (4, 4), value))
    assert rgb.mode == "RGB"
    assert rgb.getpixel((0, 0)) == (grey, grey, grey)


# --- cropping and resizing ----------------------------------------------------------------------


def red_middle_blue_sides(size: tuple[int, int]) -> Image.Image:
    width, height = size
    image = solid(size, BLUE)
    side = min(size)
    left, top = (width - side) // 2, (height - side) // 2
    image.paste(RED, (left, top, left + side, top + side))
    return image


@pytest.mark.parametrize("size", [(64, 32), (32, 64), (33, 32), (35, 32), (32, 35)])
def test_non_square_is_centre_cropped(size: tuple[int, int]) -> None:
    picture = load(encode(red_middle_blue_sides(size), "PNG"))
    assert picture.original_size == size
    assert (hwc(picture) == RED).all()


def test_large_picture_is_cropped_and_downscaled() -> None:
    picture = load(encode(red_middle_blue_sides((900, 300)), "PNG"))
    pixels = hwc(picture).astype(int)
    assert picture.original_size == (900, 300)
    assert (np.abs(pixels[:, 2:-2] - RED).max(axis=-1) <= 2).all()


def test_downscale_averages_instead_of_aliasing() -> None:
    stripes = np.zeros((256, 256, 3), dtype=np.uint8)
    stripes[:, ::2] = 255  # one-pixel black and white stripes: mid grey once small
    pixels = hwc(load(encode(Image.fromarray(stripes), "PNG"))).astype(int)
    assert (np.abs(pixels - 127) <= 3).all()


# --- GIF --------------------------------------------------------------------------------------


def test_gif_uses_the_first_frame_of_an_animation() -> None:
    frames = [solid((32, 32), colour) for colour in (RED, GREEN, BLUE)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 3
    picture = load(data, "anim.gif")
    assert picture.format == "GIF"
    assert (hwc(picture) == RED).all()


# --- rejections -------------------------------------------------------------------------------


def rejected(data: bytes, filename: str = "x.png", max_pixels: int = MAX_PIXELS) -> str:
    with pytest.raises(ImageError) as caught:
        load_picture(data, filename, max_pixels=max_pixels)
    message = str(caught.value)
    assert message.startswith(f"{filename}: ")
    return message


def test_image_error_is_a_value_error() -> None:
    assert issubclass(ImageError, ValueError)


def test_empty_bytes() -> None:
    assert rejected(b"", "cat.png") == "cat.png: the file is empty"


@pytest.mark.parametrize(
    "data",
    [
        b"hello",
        b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>",
        b"\x89PNG\r\n",  # a signature and nothing more
        b"\0" * 100,
    ],
)
def test_not_an_image(data: bytes) -> None:
    assert rejected(data, "cat.png") == "cat.png: not a PNG, JPEG, GIF, WebP or BMP image"


def test_tiff_is_not_allowed() -> None:
    assert "not a PNG, JPEG, GIF, WebP or BMP image" in rejected(encode(noise((8, 8)), "TIFF"))


EPS = (
    b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 32 32\n"
    b"newpath 0 0 moveto 32 32 lineto stroke showpage\n%%EOF\n"
)
PDF = (
    b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
    b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
    b"trailer << /Root 1 0 R >>\n%%EOF\n"
)


def test_eps_would_reach_its_plugin_without_the_format_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Shows that the next test guards against something real."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise PluginCalled

    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", refuse)
    with pytest.raises(PluginCalled):
        Image.open(io.BytesIO(EPS))


@pytest.mark.parametrize(
    "data",
    [EPS, PDF, encode(noise((8, 8)), "TIFF"), encode(noise((8, 8)), "ICO"), b"\0" * 64],
    ids=["eps", "pdf", "tiff", "ico", "zeros"],
)
def test_no_other_plugin_is_consulted(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise PluginCalled

    Image.init()
    for image_format in list(Image.OPEN):
        if image_format not in ALLOWED_FORMATS:
            monkeypatch.setitem(Image.OPEN, image_format, (refuse, refuse))
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", refuse)
    assert "not a PNG, JPEG, GIF, WebP or BMP image" in rejected(data, "doc.png")


@pytest.mark.parametrize("kind", ["plain", "exif"])
def test_an_allowed_picture_consults_no_other_plugin_whatever_their_order(
    monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """The five formats are passed to Image.open on either path (a plain JPEG's uncounted one
    included), so a plugin Pillow tried before them would still never be consulted."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise PluginCalled

    Image.init()
    others = [f for f in Image.ID if f not in ALLOWED_FORMATS]
    for image_format in others:
        monkeypatch.setitem(Image.OPEN, image_format, (refuse, refuse))
    monkeypatch.setattr(Image, "ID", [*others, *ALLOWED_FORMATS])
    assert load(jpegs()[kind]).format == "JPEG"
    assert load(encode(noise((8, 8)), "PNG")).format == "PNG"


HEIF = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)


@pytest.mark.parametrize(
    ("data", "code", "params"),
    [
        (b"", "image_empty", {}),
        (b"\xff\xd8\xff" + bytes(20_000), "image_no_header", {}),
        (HEIF, "image_heic", {}),
        (b"hello", "not_an_image", {}),
        (one_pixel_png(before_idat=png_chunk(b"prIv", bytes(1000)))[:533], "image_damaged", {}),
        (png_by_hand(4_000, 3_000), "image_too_large", {"limit": 10_000_000}),
    ],
    ids=["empty", "no header", "heic", "text", "damaged", "too large"],
)
def test_each_refusal_has_its_code_and_params(data: bytes, code: str, params: dict) -> None:
    with pytest.raises(ImageError) as caught:
        open_upload(data, "p.jpg", max_pixels=10_000_000)
    assert caught.value.code == code
    assert caught.value.params == {"filename": "p.jpg", **params}
    if code == "image_heic":
        assert str(caught.value).startswith("p.jpg: iPhone photos in HEIC format")


def test_truncated_png() -> None:
    data = encode(noise((64, 64)), "PNG")
    assert rejected(data[: len(data) // 2]) == "x.png: the image data is damaged or incomplete"


def test_truncated_jpeg() -> None:
    data = encode(noise((128, 128)), "JPEG", quality=90)
    message = rejected(data[: len(data) * 2 // 3], "x.jpg")
    assert message == "x.jpg: the image data is damaged or incomplete"


def test_truncation_is_not_tolerated_by_this_process() -> None:
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize("side", [50_000, 100_000])
def test_huge_png_header_is_rejected_fast_without_decoding(
    monkeypatch: pytest.MonkeyPatch, side: int
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise PluginCalled

    data = png_by_hand(side, side)
    load_picture(png_by_hand(4, 4), "warm-up.png", max_pixels=MAX_PIXELS)  # plugins imported
    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)  # refused from the header alone
    start = time.perf_counter()
    message = rejected(data, "bomb.png")
    assert time.perf_counter() - start < HANG_GUARD_S
    assert message == "bomb.png: the image is too large (more than 40,000,000 pixels)"


def test_max_pixels_is_checked_from_the_header(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise PluginCalled

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)
    message = rejected(png_by_hand(2001, 1000), "wide.png", max_pixels=2_000_000)
    assert message == "wide.png: the image is too large (more than 2,000,000 pixels)"


def test_max_pixels_boundary() -> None:
    data = encode(noise((50, 20)), "PNG")
    assert load(data, max_pixels=1000).original_size == (50, 20)
    rejected(data, max_pixels=999)


@pytest.mark.parametrize("action", ["ignore", "error", "always"])
def test_pillow_bomb_warning_range_is_refused(
    action: Literal["ignore", "error", "always"],
) -> None:
    """Above Image.MAX_IMAGE_PIXELS Pillow warns; whatever warnings do, the upload is refused."""
    assert Image.MAX_IMAGE_PIXELS is not None
    side = int((1.5 * Image.MAX_IMAGE_PIXELS) ** 0.5)  # between Pillow's warning and its error
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter(action)
        message = rejected(png_by_hand(side, side), "big.png", max_pixels=10**12)
    assert (
        message == f"big.png: the image is too large (more than {Image.MAX_IMAGE_PIXELS:,} pixels)"
    )
    if action == "always":
        assert [warning.category for warning in seen] == [Image.DecompressionBombWarning]


def ztxt(text: bytes) -> bytes:
    return png_chunk(b"zTXt", b"Comment\0\0" + zlib.compress(text, 9))


def itxt(text: bytes) -> bytes:
    return png_chunk(b"iTXt", b"Comment\0\x01\0en\0\0" + zlib.compress(text, 9))


def iccp(profile: bytes) -> bytes:
    return png_chunk(b"iCCP", b"profile\0\0" + zlib.compress(profile, 9))


@pytest.fixture
def no_inflating(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pillow's PNG reader inflates text and ICC chunks in _safe_zlib_decompress (its image data
    goes to the decoder in C): make that an error."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise PluginCalled

    monkeypatch.setattr(PngImagePlugin, "_safe_zlib_decompress", refuse)


@pytest.mark.usefixtures("no_inflating")
@pytest.mark.parametrize("chunk", [ztxt, itxt, iccp])
@pytest.mark.parametrize("where", ["before_idat", "after_idat"])
def test_png_text_and_icc_chunks_are_never_inflated(
    chunk: Callable[[bytes], bytes], where: str
) -> None:
    """A 1x1 PNG whose chunks inflate to 64 x 1 MiB, 64 kB on the wire: the picture is read,
    its text and profile are not (Pillow would have inflated and kept all of it)."""
    bombs = b"".join(chunk(bytes(1024 * 1024) + bytes([i])) for i in range(64))
    assert len(bombs) < 80 * 1024
    upload = open_upload(one_pixel_png(**{where: bombs}), "x.png", max_pixels=MAX_PIXELS)
    picture = decode(upload)
    assert picture.original_size == (1, 1) and (hwc(picture) == 0).all()
    assert "icc_profile" not in upload.image.info and not getattr(upload.image, "text", {})


@pytest.mark.usefixtures("no_inflating")
def test_png_metadata_cut_out_leaves_the_pixels_exactly() -> None:
    image = noise((40, 24), seed=7)
    plain = encode(image, "PNG")
    signature_and_header = 8 + 25
    metadata = ztxt(b"a comment") + itxt(b"<x:xmpmeta/>") + png_chunk(b"tEXt", b"k\0v")
    with_metadata = plain[:signature_and_header] + metadata + plain[signature_and_header:]
    assert np.array_equal(hwc(load(with_metadata)), hwc(load(plain)))


def private_chunks(count: int) -> bytes:
    return png_chunk(b"prIv", b"") * count


def chunk_cap(data_without: bytes, extra: int) -> int:
    """The chunk cap of a PNG of len(data_without) + 12 * extra bytes."""
    size = len(data_without) + 12 * extra
    return images.PNG_EXTRA_CHUNKS + size // images.PNG_BYTES_PER_CHUNK


def test_png_chunk_count_is_capped_by_its_size() -> None:
    """Every chunk costs Pillow time: at most PNG_EXTRA_CHUNKS + one per PNG_BYTES_PER_CHUNK.
    Tried at the cap exactly: IHDR, IDAT, IEND and `extra` private chunks."""
    base = one_pixel_png()
    extra = 0
    while 3 + extra < chunk_cap(base, extra):
        extra += 1
    assert 3 + extra == chunk_cap(base, extra) == chunk_cap(base, extra + 1)
    assert load(one_pixel_png(after_idat=private_chunks(extra))).original_size == (1, 1)
    message = rejected(one_pixel_png(after_idat=private_chunks(extra + 1)))
    assert message.endswith(f"more than {chunk_cap(base, extra + 1):,} chunks")


def test_a_flood_of_png_chunks_is_refused_before_pillow_reads_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise PluginCalled

    monkeypatch.setattr(Image, "open", refuse)
    data = one_pixel_png(after_idat=private_chunks(100_000))  # 1.2 MB
    assert "chunks" in rejected(data)


def counted_reads(data: bytes) -> int:
    """How many reads Image.open makes of `data` to read its header."""

    class Counting(io.BytesIO):
        reads = 0

        def read(self, size: int | None = -1, /) -> bytes:
            Counting.reads += 1
            return super().read(size)

    Image.open(Counting(data), formats=ALLOWED_FORMATS)
    return Counting.reads


@pytest.mark.parametrize(
    "junk",
    [b"\xff\xd8\xff" + bytes(4_000_000), b"\xff\xd8" + b"\xff" * 4_000_000,
     b"\xff\xd8\xff\xe0" + b"\xff\x00" * 2_000_000],
    ids=["zeros", "ff padding", "escaped ff"],
)  # fmt: skip
def test_a_jpeg_whose_header_is_not_near_the_start_is_refused(junk: bytes) -> None:
    """Pillow looks for a JPEG's next marker one byte, one read, at a time (45 MB of zeros took
    it 3 s): the header must be found within HEADER_READS reads."""
    assert rejected(junk) == "x.png: no image header found at the start of the file"


def test_the_header_read_budget_counts_reads_not_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A JPEG with 2 MB of metadata before its pixels (a phone's depth map in extended XMP)
    takes a few reads per segment: it opens within the budget, and at the budget exactly."""
    xmp = b"".join(
        b"\xff\xe1" + struct.pack(">H", 2 + 60_000) + bytes([i]) * 60_000 for i in range(35)
    )
    plain = encode(noise((40, 30)), "JPEG", quality=90)
    data = plain[:2] + xmp + plain[2:]
    reads = counted_reads(data)
    assert reads < images.HEADER_READS
    monkeypatch.setattr(images, "HEADER_READS", reads)
    assert load(data).original_size == (40, 30)
    monkeypatch.setattr(images, "HEADER_READS", reads - 1)
    assert rejected(data).endswith("no image header found at the start of the file")


def test_the_uncounted_jpeg_segments_are_those_pillow_reads_by_their_length() -> None:
    pillow = {code & 0xFF for code, (_, _, read) in JpegImagePlugin.MARKER.items() if read}
    assert pillow == images.JPEG_SEGMENTS


def jpegs() -> dict[str, bytes]:
    """JPEGs of many kinds, each of whose headers runs segment after segment up to its SOS."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    xmp = b"".join(
        b"\xff\xe1" + struct.pack(">H", 2 + 60_000) + bytes([i]) * 60_000 for i in range(35)
    )
    comment = b"\xff\xfe" + struct.pack(">H", 2 + 5) + b"hello"
    plain = encode(noise((40, 30)), "JPEG", quality=90)
    second = [solid((40, 30), BLUE)]
    return {
        "plain": plain,
        "exif": encode(noise((40, 30)), "JPEG", exif=exif),
        "progressive": encode(noise((40, 30)), "JPEG", progressive=True),
        "cmyk": encode(solid((32, 32), (0, 255, 255, 0), "CMYK"), "JPEG"),
        "grey": encode(noise((32, 32)).convert("L"), "JPEG"),
        "restart markers": encode(noise((64, 64)), "JPEG", restart_marker_blocks=1),
        "icc": encode(noise((32, 32)), "JPEG", icc_profile=bytes(200_000)),
        "mpo": encode(solid((40, 30), RED), "MPO", save_all=True, append_images=second),
        "35 xmp segments": plain[:2] + xmp + plain[2:],
        "comments": plain[:2] + comment * 500 + plain[2:],
    }  # fmt: skip


@pytest.mark.parametrize("kind", list(jpegs()))
def test_a_jpeg_is_read_uncounted_only_within_the_read_budget(
    monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """Reading a plain JPEG's header without counting the reads (they cost Python calls) is
    safe only where the count could not run out: never where Image.open needs more."""
    data = jpegs()[kind]
    reads = counted_reads(data)
    assert images._jpeg_header_within_budget(data)  # with HEADER_READS as shipped
    monkeypatch.setattr(images, "HEADER_READS", reads - 1)
    assert not images._jpeg_header_within_budget(data)
    assert rejected(data).endswith("no image header found at the start of the file")
    monkeypatch.setattr(images, "HEADER_READS", reads)
    assert images._jpeg_header_within_budget(data)  # the bound is exact: each segment has a body
    assert load(data).format == "JPEG"


def test_a_plain_jpeg_is_opened_without_counting(monkeypatch: pytest.MonkeyPatch) -> None:
    counted: list[bytes] = []
    real = images._ReadBudget

    def spy(data: bytes, budget: int) -> io.BytesIO:
        counted.append(data)
        return real(data, budget)

    monkeypatch.setattr(images, "_ReadBudget", spy)
    assert load(jpegs()["exif"]).original_size == (30, 40)
    assert counted == []
    cut = jpegs()["plain"][:300]  # cut short in a segment: counted, and damaged
    assert rejected(cut).endswith("the image data is damaged or incomplete")
    assert counted == [cut]


@pytest.mark.parametrize(
    "data",
    [b"", b"\xff\xd8", b"\xff\xd8\xff", b"\xff\xd8\xff\xe0\x00", b"\xff\xd8\xff\xe0\x00\x01",
     b"\xff\xd8\xff\xe0\x00\x10abc", b"\xff\xd8\xff\xff\xe0\x00\x02\xff\xda\x00\x02",
     b"\xff\xd8\x00\xff\xda\x00\x02", b"\xff\xd8\xff\xc8\x00\x02\xff\xda\x00\x02",
     b"\xff\xd8\xff\xd9\xff\xda\x00\x02", b"\xff\xd9\xff\xda\x00\x02",
     b"\xff\xd8\xff\xe0\x00\x02"],
    ids=["empty", "soi", "soi ff", "short length", "length 1", "body cut short", "fill byte",
         "junk", "jpg marker", "eoi", "no soi", "no sos"],
)  # fmt: skip
def test_what_is_not_a_plain_jpeg_header_is_counted(data: bytes) -> None:
    assert not images._jpeg_header_within_budget(data)


def test_a_plain_header_ends_at_its_first_sos() -> None:
    header = b"\xff\xd8\xff\xe0\x00\x04ab\xff\xda\x00\x02"
    assert images._jpeg_header_within_budget(header)
    assert images._jpeg_header_within_budget(header + b"\x00" * 100)  # the scan, not walked


def test_decoding_is_not_held_to_the_header_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    data = encode(noise((600, 400)), "PNG")
    reads = counted_reads(data)
    monkeypatch.setattr(images, "HEADER_READS", reads)
    assert load(data).original_size == (600, 400)  # decoding reads far more than `reads` times


def test_harmless_text_chunk_is_fine() -> None:
    picture = load(one_pixel_png(before_idat=ztxt(b"made with care")))
    assert picture.original_size == (1, 1)
    assert (hwc(picture) == 0).all()


@pytest.mark.parametrize("size", [(0, 10), (10, 0)])
def test_a_header_without_width_or_height_is_refused_before_decoding(
    size: tuple[int, int],
) -> None:
    with pytest.raises(ImageError) as caught:
        open_upload(png_by_hand(*size), "flat.png", max_pixels=MAX_PIXELS)
    assert str(caught.value) == "flat.png: not a PNG, JPEG, GIF, WebP or BMP image"


def test_a_chunk_cut_short_before_the_pixels_is_damage() -> None:
    """Pillow's read of a chunk that runs past the end raises from Image.open itself."""
    data = one_pixel_png(before_idat=png_chunk(b"prIv", bytes(1000)))
    with pytest.raises(ImageError) as caught:
        open_upload(data[: 33 + 500], "cut.png", max_pixels=MAX_PIXELS)
    assert str(caught.value) == "cut.png: the image data is damaged or incomplete"


def test_a_chunk_length_of_4_gib_is_damage_not_a_walk_backwards() -> None:
    huge = struct.pack(">I", 0xFFFF_FFF4) + b"prIv" + bytes(16)  # -12 if read as signed
    assert (
        rejected(one_pixel_png(before_idat=huge))
        == "x.png: the image data is damaged or incomplete"
    )


def test_a_text_chunk_cut_short_after_the_pixels_is_damage() -> None:
    """Truncation is never tolerated, in metadata that is skipped either."""
    data = one_pixel_png()[:-12] + ztxt(b"a comment")[:-6]
    assert rejected(data) == "x.png: the image data is damaged or incomplete"


@pytest.mark.usefixtures("no_inflating")
def test_a_png_that_ends_without_iend_is_read_and_its_text_skipped() -> None:
    """Pillow reads a PNG without IEND; the walk skips a text chunk that ends the file exactly,
    and stops at a chunk header cut short."""
    no_end = one_pixel_png()[:-12]
    assert load(no_end + ztxt(b"last")).original_size == (1, 1)
    assert load(no_end + b"\0\0\0").original_size == (1, 1)


def test_what_follows_iend_is_not_walked() -> None:
    """Bytes after IEND (some tools append data there) count for nothing, chunks or not."""
    assert load(one_pixel_png() + private_chunks(200)).original_size == (1, 1)


def test_no_pixel_cap_from_pillow(monkeypatch: pytest.MonkeyPatch) -> None:
    """With Pillow's own bomb limit turned off (Image.MAX_IMAGE_PIXELS = None), ours holds."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    assert load(png_by_hand(4, 4), max_pixels=16).original_size == (4, 4)
    assert rejected(png_by_hand(4, 5), max_pixels=16).endswith("(more than 16 pixels)")


def test_resizing_is_lanczos_after_a_box_reduction(monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's promise: Lanczos antialiasing, with Pillow's reducing_gap of 3."""
    calls: list[tuple[object, object]] = []
    real = Image.Image.resize

    def spy(
        self: Image.Image, size: object, resample: object = None, *args: object, **kw: object
    ) -> Image.Image:
        calls.append((resample, kw.get("reducing_gap")))
        return real(self, size, resample, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(Image.Image, "resize", spy)
    load(encode(noise((200, 100)), "PNG"))
    assert calls == [(Image.Resampling.LANCZOS, 3.0)]


def test_mutated_uploads_only_ever_raise_image_error() -> None:
    seeds = [
        encode(noise((40, 24)), "PNG"),
        encode(noise((40, 24)).convert("P"), "PNG", transparency=3),
        encode(noise((40, 24)), "JPEG", quality=60),
        encode(noise((40, 24)), "JPEG", progressive=True),
        encode(noise((40, 24)).convert("P"), "GIF"),
        encode(noise((40, 24)).convert("RGBA"), "WEBP"),
        encode(noise((40, 24)), "BMP"),
        encode(noise((40, 24)).convert("1"), "BMP"),
    ]
    rng = random.Random(2024)
    for _ in range(600):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 6)):
            at = rng.randrange(len(data))
            if rng.random() < 0.7:
                data[at] = rng.randrange(256)
            else:
                data[at : at + 4] = b"\xff\xff\xff\x7f"
        try:
            picture = load(bytes(data))
        except ImageError:
            continue
        assert picture.pixels.shape == (3, 32, 32)


# --- filenames --------------------------------------------------------------------------------


def test_filename_is_kept_as_given() -> None:
    name = "<b>chat & chien</b> ünïcode 猫.PNG"
    assert load(encode(noise((32, 32)), "PNG"), name).filename == name


def test_filename_control_characters_are_stripped() -> None:
    assert clean_filename("ca\0t\r\n\t\x1b[31m\x7f\x85.png") == "cat[31m.png"
    assert clean_filename("cat\u202egnp.exe") == "catgnp.exe"
    assert clean_filename("bad\udcffname.png") == "badname.png"


def test_filename_cleaning_character_by_character() -> None:
    control = [*range(32), 127]  # ASCII's control characters, stripped
    for code in range(128):
        expected = "ab" if code in control else f"a{chr(code)}b"
        assert clean_filename(f"a{chr(code)}b") == expected, hex(code)
    # beyond ASCII: C1 controls, bidi controls and lone surrogates go; the rest stays
    for char in ("\x85", "\u200e", "\u202e", "\u2066", "\ud800"):
        assert clean_filename(f"a{char}b") == "ab", hex(ord(char))
    for char in ("\xa0", "\ufeff", "\u00e9", "\U0001f431"):
        assert clean_filename(f"a{char}b") == f"a{char}b", hex(ord(char))
    assert clean_filename("x" * 300 + "\n") == "x" * MAX_FILENAME_LENGTH


def test_long_filename_is_truncated() -> None:
    picture = load(encode(noise((32, 32)), "PNG"), "a" * 10_000 + ".png")
    assert picture.filename == "a" * MAX_FILENAME_LENGTH
    assert MAX_FILENAME_LENGTH == 255


def test_error_names_the_cleaned_file() -> None:
    with pytest.raises(ImageError, match=r"^cat\.png: the file is empty$"):
        load_picture(b"", "cat\n.png", max_pixels=MAX_PIXELS)
    with pytest.raises(ImageError, match=r"^\(unnamed file\): the file is empty$"):
        load_picture(b"", "", max_pixels=MAX_PIXELS)


# --- batches and previews -----------------------------------------------------------------------


def test_to_batch() -> None:
    pictures = [
        load(encode(solid((32, 32), (0, 0, 0)), "PNG")),
        load(encode(solid((32, 32), (255, 255, 255)), "PNG")),
        load(encode(noise((40, 40)), "PNG")),
    ]
    batch = to_batch(pictures)
    assert batch.shape == (3, 3, 32, 32)
    assert batch.dtype == torch.float32
    assert batch.min() >= -1.0
    assert batch.max() <= 1.0
    assert (batch[0] == -1.0).all()
    assert (batch[1] == 1.0).all()
    assert torch.equal(batch[2], normalize(pictures[2].pixels))


@pytest.mark.parametrize("count", [1, 3, 32])
def test_to_batch_is_channels_first_as_the_tutorials_tensors(count: int) -> None:
    """Channels first in memory, as the tutorial's tensors: the Net's convolutions on a
    channels-last batch give other logits in the last bits on some CPUs (AVX2)."""
    pictures = [load(encode(noise((32, 32), seed=k), "PNG")) for k in range(count)]
    assert not pictures[0].pixels.is_contiguous()  # decode's view of Pillow's rows
    batch = to_batch(pictures)
    assert batch.is_contiguous()
    plain = torch.stack([normalize(p.pixels.contiguous()) for p in pictures])
    assert torch.equal(batch, plain)
    torch.manual_seed(count)
    net = Net().eval()
    with torch.inference_mode():
        assert torch.equal(net(batch), net(plain))


def test_to_batch_of_nothing() -> None:
    batch = to_batch([])
    assert batch.shape == (0, 3, 32, 32)
    assert batch.dtype == torch.float32


def test_picture_checks_its_pixels() -> None:
    with pytest.raises(ValueError, match="uint8"):
        Picture("x.png", "PNG", (32, 32), torch.zeros((3, 32, 32)))
    with pytest.raises(ValueError, match="uint8"):
        Picture("x.png", "PNG", (32, 32), torch.zeros((32, 32, 3), dtype=torch.uint8))


@pytest.mark.parametrize("fill", ["noise", 0, 255])
def test_preview_is_a_valid_png_with_the_same_pixels(fill: str | int) -> None:
    if isinstance(fill, int):
        picture = load(encode(solid((32, 32), (fill, fill, fill)), "PNG"))
    else:
        picture = load(encode(noise((32, 32), seed=7), "PNG"))
    url = preview_data_url(picture)
    data = base64.b64decode(url.removeprefix("data:image/png;base64,"), validate=True)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks = []
    at = 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert crc == zlib.crc32(kind + body)
        chunks.append((kind, body))
        at += 12 + length
    assert [kind for kind, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    assert chunks[0][1] == struct.pack(">IIBBBBB", 32, 32, 8, 2, 0, 0, 0)
    stored = chunks[1][1]  # zlib header, one final stored block (RFC 1951 3.2.4), Adler-32
    assert stored[2] == 0x01 and len(stored) == 2 + 5 + 32 * 97 + 4  # not compressed: see _png
    rows = np.frombuffer(zlib.decompress(stored), dtype=np.uint8).reshape(32, 97)
    assert np.array_equal(rows[:, 1:].reshape(32, 32, 3), hwc(picture))
    assert stored == zlib.compress(rows.tobytes(), 0)  # zlib's own stream, byte for byte
    Image.open(io.BytesIO(data)).verify()  # Pillow's own checks: signature, chunk CRCs
    preview = Image.open(io.BytesIO(data))
    assert np.array_equal(np.asarray(preview.convert("RGB")), hwc(picture))


@pytest.mark.parametrize("size", [0, 1, 3104, 65531, 65535])
def test_stored_zlib_is_zlibs_own_stream(size: int) -> None:
    """The stored block written by hand: zlib's level 0 byte for byte where zlib writes one
    block, and a stream zlib reads back (Adler-32 checked) up to the block's limit."""
    data = bytes(np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8))
    if size <= 65531:
        assert _stored_zlib(data) == zlib.compress(data, 0)
    assert zlib.decompress(_stored_zlib(data)) == data
    with pytest.raises(ValueError, match="65,536 bytes"):
        _stored_zlib(bytes(65536))


def test_preview_reads_the_pixels_in_either_memory_layout() -> None:
    """A decoded picture's pixels are rows of RGB in memory; a Picture made from a plain
    (3, 32, 32) tensor has its channels first in memory: both preview the same PNG."""
    channels_first = torch.arange(3 * 32 * 32).remainder(251).to(torch.uint8).reshape(3, 32, 32)
    channels_last = channels_first.permute(1, 2, 0).contiguous().permute(2, 0, 1)
    assert channels_first.is_contiguous() and not channels_last.is_contiguous()
    urls = {
        preview_data_url(Picture("a.png", "PNG", (32, 32), pixels))
        for pixels in (channels_first, channels_last)
    }
    assert len(urls) == 1
    data = base64.b64decode(urls.pop().removeprefix("data:image/png;base64,"), validate=True)
    shown = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    assert np.array_equal(shown, channels_first.permute(1, 2, 0).numpy())


def test_preview_data_url_decodes_to_the_same_pixels() -> None:
    picture = load(encode(noise((50, 40)), "JPEG"), "photo.jpg")
    url = preview_data_url(picture)
    prefix = "data:image/png;base64,"
    assert url.startswith(prefix)
    preview = Image.open(io.BytesIO(base64.b64decode(url[len(prefix) :], validate=True)))
    assert preview.format == "PNG"
    assert preview.mode == "RGB"
    assert preview.size == (32, 32)
    assert np.array_equal(np.asarray(preview), hwc(picture))


def test_open_upload_reads_the_header_only() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (300, 200), (10, 20, 30)).save(buffer, format="PNG")
    data = buffer.getvalue()
    upload = open_upload(data, "a.png", max_pixels=MAX_PIXELS)
    assert (upload.pixels, upload.size, upload.filename) == (60_000, len(data), "a.png")
    # a header that claims 9000 x 9000 (and data for one row): counted, never decoded
    png = bytearray(buffer.getvalue())
    png[16:24] = struct.pack(">II", 9_000, 9_000)
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(png[12:29])))
    assert open_upload(bytes(png), "big.png", max_pixels=10**8).pixels == 81_000_000
    with pytest.raises(ImageError, match="too large"):
        open_upload(bytes(png), "big.png", max_pixels=80_999_999)
    with pytest.raises(ImageError, match="not a PNG"):
        open_upload(b"%!PS-Adobe-3.0 EPSF-3.0\n", "x.eps", max_pixels=MAX_PIXELS)
    with pytest.raises(ImageError, match="empty"):
        open_upload(b"", "x.png", max_pixels=MAX_PIXELS)


def test_decode_and_load_picture_give_what_pillow_gives() -> None:
    """Both ways in against Pillow run here: a 32x32 RGB picture passes bit for bit; a 40x30
    one keeps its middle 30x30 square, resized to 32x32 with Lanczos."""
    exact = noise((32, 32), seed=3)
    wide = noise((40, 30), seed=3)
    middle = wide.crop((5, 0, 35, 30)).resize((32, 32), Image.Resampling.LANCZOS)
    for image, expected in ((exact, exact), (wide, middle)):
        data = encode(image, "PNG")
        upload = open_upload(data, "n.png", max_pixels=MAX_PIXELS)
        for picture in (decode(upload), load(data)):
            assert np.array_equal(hwc(picture), np.asarray(expected))
