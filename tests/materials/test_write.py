"""Writing map files (docs/conventions.md section 2): lossless round trips, encodings, and every error path."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import OpenEXR
import pytest
from PIL import Image as PILImage

from teamwork_cli.core.conventions import linear_to_srgb
from teamwork_cli.materials import write as twrite
from teamwork_cli.materials.files import ImageError, OutputExistsError
from teamwork_cli.materials.read import read_image, read_map
from teamwork_cli.materials.write import write_map

RNG = np.random.default_rng(3)


@pytest.mark.parametrize(("ext", "bits"), [("png", 8), ("png", 16), ("tif", 8), ("tif", 16)])
@pytest.mark.parametrize("channel", ["roughness", "inverseshading"])  # grey and colour, linear encoding
def test_integer_formats_round_trip_exactly(tmp_path: Path, ext: str, bits: int, channel: str, levels) -> None:
    comps = 1 if channel == "roughness" else 3
    value = levels((9, 7, comps), bits)
    path = write_map(tmp_path / f"m.{ext}", value, channel, bits=bits)
    image = read_image(path)
    assert (image.is_float, image.bit_depth, image.pixels.shape) == (False, bits, (9, 7, comps))
    assert np.array_equal(read_map(path, channel), value)


def test_exr_float32_exact_and_half_rounded(tmp_path: Path) -> None:
    value = (RNG.normal(size=(5, 6, 3)) * 10).astype(np.float32)
    exact = write_map(tmp_path / "a.exr", value, "residual", bits=32)
    assert np.array_equal(read_map(exact, "residual"), value)
    half = write_map(tmp_path / "b.exr", value, "residual")
    assert read_image(half).bit_depth == 16
    assert np.array_equal(read_map(half, "residual"), value.astype(np.float16).astype(np.float32))
    grey = value[..., :1]
    assert np.array_equal(read_map(write_map(tmp_path / "c.exr", grey, "depth", bits=32), "depth"), grey)


def test_exr_layout_written_with_openexr(tmp_path: Path) -> None:
    write_map(tmp_path / "g.exr", np.full((3, 4), 0.25, np.float32), "roughness")
    write_map(tmp_path / "c.exr", np.full((3, 4, 3), 0.5, np.float32), "diffuse", bits=32)
    grey = OpenEXR.File(str(tmp_path / "g.exr"), separate_channels=True).channels()
    colour = OpenEXR.File(str(tmp_path / "c.exr"), separate_channels=True).channels()
    assert list(grey) == ["Y"] and grey["Y"].pixels.dtype == np.float16
    assert sorted(colour) == ["B", "G", "R"] and colour["R"].pixels.dtype == np.float32
    assert np.all(grey["Y"].pixels == 0.25) and np.all(colour["G"].pixels == 0.5)


def test_jpeg_round_trip_within_tolerance(tmp_path: Path) -> None:
    y, x = np.mgrid[0:32, 0:48] / 48.0
    value = np.stack([x, y, (x + y) / 2], axis=-1).astype(np.float32)  # smooth, as JPEG likes
    path = write_map(tmp_path / "m.jpg", value, "inverseshading")  # default bits: JPEG is 8-bit anyway
    assert read_image(path).bit_depth == 8
    assert np.abs(read_map(path, "inverseshading") - value).max() < 4 / 255
    grey = write_map(tmp_path / "g.jpeg", value[..., :1], "roughness", bits=8)
    assert PILImage.open(grey).mode == "L"
    assert np.abs(read_map(grey, "roughness") - value[..., :1]).max() < 3 / 255


def test_16bit_rgb_png_is_really_16bit(tmp_path: Path, levels) -> None:
    stored = levels((6, 5, 3), 16)
    path = write_map(tmp_path / "i.png", stored, "inverseshading")
    raw = path.read_bytes()
    width, height, depth, colour_type = struct.unpack(">IIBB", raw[16:26])  # IHDR, PNG spec 11.2.2
    assert (width, height, depth, colour_type) == (5, 6, 16, 2)
    with PILImage.open(path) as im:  # Pillow decodes it on its own, keeping the high bytes only
        assert im.mode == "RGB" and im.size == (5, 6)
        high = np.asarray(im)
    assert np.array_equal(high, (np.round(stored * 65535).astype(np.uint16) >> 8).astype(np.uint8))
    grey = write_map(tmp_path / "g.png", stored[..., :1], "roughness")
    with PILImage.open(grey) as im:  # 16-bit grey Pillow reads exactly
        assert im.mode.startswith("I;16")
        assert np.array_equal(np.asarray(im), np.round(stored[..., 0] * 65535).astype(np.uint16))


@pytest.mark.parametrize("filter_type", [0, 1, 2, 3, 4, None])
@pytest.mark.parametrize("comps", [1, 2, 3, 4])
def test_png_writer_and_reader_for_every_filter(tmp_path: Path, filter_type: int | None, comps: int) -> None:
    q16 = RNG.integers(0, 65536, (7, 9, comps)).astype(np.uint16)
    q16[3:5] = q16[2]  # repeated rows, so the adaptive choice varies
    for q in (q16, (q16 >> 8).astype(np.uint8)):
        path = tmp_path / f"f{q.dtype.itemsize}.png"
        path.write_bytes(twrite._png_bytes(q, filter_type=filter_type))
        image = read_image(path)
        top = np.iinfo(q.dtype).max
        assert image.bit_depth == 8 * q.dtype.itemsize
        assert np.array_equal(np.round(image.pixels * top).astype(q.dtype), q)
        if q.dtype == np.uint8:  # Pillow reads 8-bit PNGs exactly: an independent check of the writer
            assert np.array_equal(np.asarray(PILImage.open(path)).reshape(q.shape), q)


def test_png_is_deflated_fast_and_decodes_to_the_same_samples(tmp_path: Path) -> None:
    # Noisy maps (what svbrdf writes) shrink only a few per mille more at zlib level 6 than at level 1, for about 1.6x
    # its compression time: the writer uses level 1. Lossless either way: the file holds exactly the samples.
    value = RNG.random((600, 700, 3)).astype(np.float32)  # 600 rows: several of the writer's row blocks
    path = write_map(tmp_path / "n.png", value, "inverseshading")
    raw = path.read_bytes()
    idat = raw.index(b"IDAT") + 4
    cmf, flg = raw[idat], raw[idat + 1]  # RFC 1950 section 2.2: FLEVEL, FLG's top two bits, 0 is "fastest"
    assert cmf & 0x0F == 8 and (cmf << 8 | flg) % 31 == 0 and flg >> 6 == 0
    image = read_image(path)
    assert image.bit_depth == 16
    assert np.array_equal(np.round(image.pixels * 65535), np.round(value * 65535))


def test_srgb_channel_is_srgb_encoded_in_png_and_linear_in_exr(tmp_path: Path, levels) -> None:
    value = levels((4, 4, 3), 8)
    png = write_map(tmp_path / "d.png", value, "diffuse")
    assert np.abs(read_image(png).pixels - linear_to_srgb(value)).max() <= 0.5 / 65535 + 1e-7
    assert np.abs(read_map(png, "diffuse") - value).max() < 2e-4
    exr = write_map(tmp_path / "d.exr", value, "diffuse", bits=32)
    assert np.array_equal(read_image(exr).pixels, value)


def test_vector_channel_encoding(tmp_path: Path, unit_vectors) -> None:
    n = unit_vectors(8, 8)
    png = write_map(tmp_path / "n.png", n, "normals")
    assert np.abs(read_image(png).pixels - (n + 1) / 2).max() <= 0.5 / 65535 + 1e-7
    back = read_map(png, "normals")
    assert np.abs(back - n).max() < 1e-4
    assert np.allclose(np.linalg.norm(back, axis=-1), 1, atol=1e-6)
    png8 = read_map(write_map(tmp_path / "n8.png", n, "normals", bits=8), "normals")
    assert np.allclose(np.linalg.norm(png8, axis=-1), 1, atol=1e-6)  # renormalised after quantisation
    exr = write_map(tmp_path / "n.exr", n, "normals", bits=32)
    assert np.allclose(read_image(exr).pixels, (n + 1) / 2, atol=1e-7)  # (n+1)/2 by default, as in PNG
    assert np.abs(read_map(exr, "normals") - n).max() < 1e-6
    raw = write_map(tmp_path / "r.exr", n, "normals", bits=32, exr_normals="signed")
    assert np.array_equal(read_image(raw).pixels, n) and np.abs(read_map(raw, "normals") - n).max() < 1e-6
    flat = np.broadcast_to(np.float32([0, 0, 1]), (4, 4, 3))  # raw, though nothing in it is below zero
    flat_file = write_map(tmp_path / "f.exr", flat, "normals", bits=32, exr_normals="signed")
    assert np.allclose(read_map(flat_file, "normals"), flat)
    with pytest.raises(ValueError, match="exr_normals must be one of encoded, signed"):
        write_map(tmp_path / "x.exr", n, "normals", exr_normals="raw")


def test_hdr_channel_clipped_in_png_raw_in_exr(tmp_path: Path) -> None:
    value = np.array([[[0.5, 2.0, 7.0]]], np.float32)
    png = write_map(tmp_path / "s.png", value, "diffuseshading")
    assert np.allclose(read_map(png, "diffuseshading"), [[[0.5, 1.0, 1.0]]], atol=1e-5)
    exr = write_map(tmp_path / "s.exr", value, "diffuseshading")
    assert np.array_equal(read_map(exr, "diffuseshading"), value)


@pytest.mark.parametrize(
    ("name", "value", "channel", "bits", "message"),
    [
        ("a.bmp", np.zeros((2, 2, 3)), "diffuse", 16, "supported: .png"),
        ("noext", np.zeros((2, 2, 3)), "diffuse", 16, "cannot write files without extension"),
        ("a.png", np.zeros((2, 2, 4)), "diffuse", 16, "needs H x W x 3 values"),
        ("a.png", np.zeros((2, 2, 1)), "normals", 16, "needs H x W x 3 values"),  # grey colour, but not vectors
        ("a.png", np.zeros((2, 2, 3)), "roughness", 16, "needs H x W or H x W x 1"),
        ("a.png", np.zeros((0, 2, 3)), "diffuse", 16, "zero-size"),
        ("a.exr", np.full((2, 2, 3), np.nan), "diffuse", 16, "NaN"),
        ("a.png", np.zeros((2, 2, 3)), "diffuse", 32, r"bits=32 is not available for .png; allowed: \(8, 16\)"),
        ("a.exr", np.full((2, 2, 3), 1e6), "diffuseshading", 16, "exceed float16's range; use bits=32"),
    ],
)
def test_write_errors_write_nothing(
    tmp_path: Path, name: str, value: np.ndarray, channel: str, bits: int, message: str, dir_listing
) -> None:
    path = tmp_path / "out" / name
    with pytest.raises(ImageError, match=message) as caught:
        write_map(path, value, channel, bits=bits)
    assert str(path) in str(caught.value)
    assert dir_listing(tmp_path) == []


def test_overwrite_refused_then_allowed(tmp_path: Path, dir_listing) -> None:
    path = write_map(tmp_path / "m.png", np.zeros((2, 2, 3)), "diffuse")
    original = path.read_bytes()
    with pytest.raises(OutputExistsError, match="m.png: already exists; use --overwrite") as caught:
        write_map(path, np.ones((2, 2, 3)), "diffuse")
    assert isinstance(caught.value, FileExistsError) and isinstance(caught.value, ImageError)
    assert path.read_bytes() == original and dir_listing(tmp_path) == ["m.png"]
    write_map(path, np.ones((2, 2, 3)), "diffuse", overwrite=True)
    assert np.allclose(read_map(path, "diffuse"), 1) and dir_listing(tmp_path) == ["m.png"]
    (tmp_path / "d.exr").mkdir()
    with pytest.raises(ImageError, match="d.exr: is a directory"):
        write_map(tmp_path / "d.exr", np.zeros((2, 2, 3)), "diffuse", overwrite=True)


def test_overwrite_race_is_caught_at_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dir_listing) -> None:
    path = tmp_path / "m.png"
    real_write = twrite._bytes_writer

    def writer_then_rival(data: bytes) -> Callable[[Path], None]:  # another process creates the file while we encode
        inner = real_write(data)

        def write(tmp: Path) -> None:
            inner(tmp)
            path.write_bytes(b"rival")

        return write

    monkeypatch.setattr(twrite, "_bytes_writer", writer_then_rival)
    with pytest.raises(OutputExistsError):
        write_map(path, np.zeros((2, 2, 3)), "diffuse")
    assert path.read_bytes() == b"rival" and dir_listing(tmp_path) == ["m.png"]


@pytest.mark.parametrize(
    ("channel", "bits", "big_endian"), [("diffuse", 16, True), ("normals", 8, False), ("roughness", 16, False)]
)
def test_stored_samples_in_row_bands_equal_the_whole_map_quantised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, channel: str, bits: int, big_endian: bool
) -> None:
    comps = 1 if channel == "roughness" else 3
    v = RNG.uniform(-1.2, 1.2, size=(13, 5, comps)).astype(np.float32)
    alpha = RNG.uniform(-0.1, 1.1, size=(13, 5, 1)).astype(np.float32)
    spec = twrite.channel_spec(channel)
    whole = twrite._quantise(np.concatenate([twrite._encode(v, spec), np.clip(alpha, 0, 1)], 2), bits)
    for band in (1, 7, 10**6):  # part of a row, a row and a bit, the whole map
        monkeypatch.setattr(twrite, "BAND_PIXELS", band)
        got = twrite._stored_samples(v, spec, bits, alpha, big_endian=big_endian)
        assert got.dtype.itemsize == bits // 8 and got.shape == (13, 5, comps + 1)
        assert np.array_equal(got.astype(np.uint16), whole.astype(np.uint16))
        # and the file holds exactly those samples (PNG: big-endian on disk; read back as [0, 1] floats)
        path = write_map(tmp_path / f"m{band}.png", v, channel, bits=bits, alpha=alpha[..., 0])
        assert np.array_equal(np.round(read_image(path).pixels * ((1 << bits) - 1)), whole)
