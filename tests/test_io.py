"""Map files (conventions.md section 2): round trips, encodings, odd inputs, and every error path."""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import OpenEXR
import pytest
import tifffile
from PIL import Image as PILImage

from teamwork_cli.core.conventions import linear_to_srgb
from teamwork_cli.materials import files as tfiles
from teamwork_cli.materials import write as twrite
from teamwork_cli.materials.files import ImageError, OutputExistsError
from teamwork_cli.materials.read import read_image, read_map
from teamwork_cli.materials.write import write_map

RNG = np.random.default_rng(3)


def _levels(shape: tuple[int, ...], bits: int) -> np.ndarray:
    """Values exactly representable at `bits`, so lossless formats must give them back bit for bit."""
    top = (1 << bits) - 1
    return (RNG.integers(0, top + 1, shape).astype(np.float32) / top).astype(np.float32)


def _unit_vectors(h: int, w: int) -> np.ndarray:
    v = RNG.normal(size=(h, w, 3))
    v[..., 2] = np.abs(v[..., 2]) + 0.2
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def _files(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))  # includes hidden temporary files


# --- lossless round trips --------------------------------------------------------------------------


@pytest.mark.parametrize(("ext", "bits"), [("png", 8), ("png", 16), ("tif", 8), ("tif", 16)])
@pytest.mark.parametrize("channel", ["roughness", "inverseshading"])  # grey and colour, linear encoding
def test_integer_formats_round_trip_exactly(tmp_path: Path, ext: str, bits: int, channel: str) -> None:
    comps = 1 if channel == "roughness" else 3
    value = _levels((9, 7, comps), bits)
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


# --- 16-bit PNG, checked against independent readers -----------------------------------------------


def test_16bit_rgb_png_is_really_16bit(tmp_path: Path) -> None:
    stored = _levels((6, 5, 3), 16)
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


# --- encodings -------------------------------------------------------------------------------------


def test_srgb_channel_is_srgb_encoded_in_png_and_linear_in_exr(tmp_path: Path) -> None:
    value = _levels((4, 4, 3), 8)
    png = write_map(tmp_path / "d.png", value, "diffuse")
    assert np.abs(read_image(png).pixels - linear_to_srgb(value)).max() <= 0.5 / 65535 + 1e-7
    assert np.abs(read_map(png, "diffuse") - value).max() < 2e-4
    exr = write_map(tmp_path / "d.exr", value, "diffuse", bits=32)
    assert np.array_equal(read_image(exr).pixels, value)


def test_vector_channel_encoding(tmp_path: Path) -> None:
    n = _unit_vectors(8, 8)
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


def test_grey_broadcast_colour_mean_and_alpha_dropped(tmp_path: Path) -> None:
    PILImage.fromarray(np.full((3, 3), 200, np.uint8)).save(tmp_path / "g.png")
    assert read_map(tmp_path / "g.png", "roughness").shape == (3, 3, 1)
    colour = read_map(tmp_path / "g.png", "residual")
    assert colour.shape == (3, 3, 3) and np.allclose(colour, colour[..., :1])
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2], rgba[..., 3] = 30, 60, 90, 255
    PILImage.fromarray(rgba).save(tmp_path / "a.png")
    assert read_image(tmp_path / "a.png").has_alpha
    assert np.allclose(read_map(tmp_path / "a.png", "roughness"), 60 / 255)  # mean of R, G, B
    assert read_map(tmp_path / "a.png", "depth").shape == (2, 2, 1)


# --- other layouts ---------------------------------------------------------------------------------


def test_palette_grey_alpha_and_bilevel_png(tmp_path: Path) -> None:
    palette = PILImage.new("P", (4, 2))
    palette.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    palette.putdata([0, 1] * 4)
    palette.save(tmp_path / "p.png")
    px = read_image(tmp_path / "p.png").pixels
    assert px.shape == (2, 4, 3) and np.array_equal(px[0, 0], [1, 0, 0]) and np.array_equal(px[0, 1], [0, 0, 1])
    PILImage.fromarray(np.dstack([np.full((2, 3), 64), np.full((2, 3), 255)]).astype(np.uint8), "LA").save(
        tmp_path / "la.png"
    )
    la = read_image(tmp_path / "la.png")
    assert la.pixels.shape == (2, 3, 2) and la.has_alpha and np.allclose(la.pixels[..., 0], 64 / 255)
    la16 = RNG.integers(0, 65536, (3, 2, 2)).astype(np.uint16)
    (tmp_path / "la16.png").write_bytes(twrite._png_bytes(la16))
    assert np.array_equal(np.round(read_image(tmp_path / "la16.png").pixels * 65535), la16)
    PILImage.fromarray(np.eye(4, dtype=bool)).save(tmp_path / "b.png")
    assert np.array_equal(read_image(tmp_path / "b.png").pixels[..., 0], np.eye(4))


def _write_exr(path: Path, channels: dict[str, np.ndarray]) -> None:
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    OpenEXR.File(header, {k: np.ascontiguousarray(v) for k, v in channels.items()}).write(str(path))


def test_exr_single_named_channel_layers_and_mixed_types(tmp_path: Path) -> None:
    z = RNG.random((4, 5)).astype(np.float32)
    _write_exr(tmp_path / "z.exr", {"distance": z})
    assert np.array_equal(read_map(tmp_path / "z.exr", "depth")[..., 0], z)
    assert read_map(tmp_path / "z.exr", "residual").shape == (4, 5, 3)
    layered = {f"{layer}.{c}": z * k for k, layer in ((1, "diffuse"), (2, "specular")) for c in "RGB"}
    layered["diffuse.G"] = layered["diffuse.G"].astype(np.float16)  # mixed half and float
    _write_exr(tmp_path / "l.exr", layered)
    assert np.allclose(read_map(tmp_path / "l.exr", "specular")[..., 0], 2 * z)
    assert np.allclose(read_image(tmp_path / "l.exr", layer="diffuse").pixels[..., 2], z)
    with pytest.raises(ImageError, match="l.exr.*several layers"):
        read_image(tmp_path / "l.exr")
    with pytest.raises(ImageError, match="no layer 'normals'"):
        read_image(tmp_path / "l.exr", layer="normals")
    _write_exr(tmp_path / "x.exr", {"N.X": z, "N.Y": z, "N.Z": z, "N.A": z})
    assert read_image(tmp_path / "x.exr").pixels.shape == (4, 5, 4)
    _write_exr(tmp_path / "u.exr", {"P": z, "Q": z})
    with pytest.raises(ImageError, match="u.exr.*cannot interpret EXR channels P, Q"):
        read_image(tmp_path / "u.exr")


def test_tiff_float_planar_and_grey(tmp_path: Path) -> None:
    value = RNG.random((4, 6, 3)).astype(np.float32)
    tifffile.imwrite(tmp_path / "f.tif", value, photometric="rgb")
    image = read_image(tmp_path / "f.tif")
    assert image.is_float and np.array_equal(image.pixels, value)
    q = RNG.integers(0, 65536, (3, 4, 6)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "p.tiff", q, photometric="rgb", planarconfig="separate")
    assert np.array_equal(np.round(read_image(tmp_path / "p.tiff").pixels * 65535), np.moveaxis(q, 0, -1))
    tifffile.imwrite(tmp_path / "g.tif", q[0])
    assert read_image(tmp_path / "g.tif").pixels.shape == (4, 6, 1)


def test_resize_box_down_bilinear_up(tmp_path: Path) -> None:
    value = RNG.random((4, 6, 1)).astype(np.float32)
    path = write_map(tmp_path / "r.exr", value, "roughness", bits=32)
    small = read_map(path, "roughness", size=(2, 3))
    assert np.allclose(small[..., 0], value[..., 0].reshape(2, 2, 3, 2).mean(axis=(1, 3)), atol=1e-6)
    assert read_map(path, "roughness", size=(8, 3)).shape == (8, 3, 1)  # one axis up, one down
    flat = np.full((4, 4, 1), 0.3, np.float32)
    up = read_map(write_map(tmp_path / "f.exr", flat, "roughness", bits=32), "roughness", size=(9, 9))
    assert np.allclose(up, 0.3)
    n = read_map(write_map(tmp_path / "n.png", _unit_vectors(6, 6), "normals"), "normals", size=(3, 3))
    assert np.allclose(np.linalg.norm(n, axis=-1), 1, atol=1e-6)
    with pytest.raises(ValueError, match="size must be"):
        read_map(path, "roughness", size=(0, 3))


# --- errors: each names the file and leaves nothing behind -----------------------------------------


def _valid_png(path: Path) -> bytes:
    write_map(path, _levels((16, 16, 3), 16), "diffuse")
    data = path.read_bytes()
    path.unlink()
    return data


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.png", None, "no such file"),
        ("empty.png", b"", "empty file"),
        ("junk.png", b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 8, "truncated or corrupt"),
        ("text.png", b"hello world", "unknown signature"),
        ("cut.png", "truncate", "truncated or corrupt"),
        ("cut.exr", "truncate-exr", "truncated or corrupt"),
        ("cut.tif", "truncate-tif", "truncated or corrupt"),
        ("note.bmp", b"BM", "unsupported file type"),
        ("zero.png", twrite._png_bytes(np.zeros((0, 3, 3), np.uint8)), "zero-size|corrupt"),
    ],
)
def test_read_errors_name_the_file(tmp_path: Path, name: str, content: object, message: str) -> None:
    path = tmp_path / name
    if content == "truncate":
        data = _valid_png(tmp_path / "x.png")
        path.write_bytes(data[: len(data) // 2])
    elif content == "truncate-exr":
        write_map(tmp_path / "x.exr", _levels((32, 32, 3), 8), "diffuse")
        path.write_bytes((tmp_path / "x.exr").read_bytes()[:-200])
        (tmp_path / "x.exr").unlink()
    elif content == "truncate-tif":
        write_map(tmp_path / "x.tif", _levels((32, 32, 3), 8), "diffuse")
        path.write_bytes((tmp_path / "x.tif").read_bytes()[:300])
        (tmp_path / "x.tif").unlink()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    before = _files(tmp_path)
    with pytest.raises(ImageError, match=message) as caught:
        read_map(path, "diffuse")
    assert str(path) in str(caught.value)
    assert _files(tmp_path) == before


def test_read_directory_and_nan_exr(tmp_path: Path) -> None:
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(ImageError, match="dir.png: is a folder"):
        read_image(tmp_path / "dir.png")
    (tmp_path / "buffers").mkdir()  # a folder without a suffix is named as a folder, not "unsupported type ''"
    with pytest.raises(ImageError, match="buffers: is a folder"):
        read_image(tmp_path / "buffers")
    bad = np.ones((3, 3), np.float32)
    bad[1, 1] = np.nan
    _write_exr(tmp_path / "nan.exr", {"Y": bad})
    with pytest.raises(ImageError, match="nan.exr: contains NaN"):
        read_image(tmp_path / "nan.exr")
    _write_exr(tmp_path / "inf.exr", {"Y": bad * 0 + np.inf})
    with pytest.raises(ImageError, match="inf.exr: contains NaN or infinite"):
        read_map(tmp_path / "inf.exr", "depth")


def test_vector_channel_from_grey_file_is_refused(tmp_path: Path) -> None:
    write_map(tmp_path / "g.png", np.zeros((2, 2)), "roughness")
    with pytest.raises(ImageError, match="g.png: channel 'normals' needs a 3-component"):
        read_map(tmp_path / "g.png", "normals")


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
    tmp_path: Path, name: str, value: np.ndarray, channel: str, bits: int, message: str
) -> None:
    path = tmp_path / "out" / name
    with pytest.raises(ImageError, match=message) as caught:
        write_map(path, value, channel, bits=bits)
    assert str(path) in str(caught.value)
    assert _files(tmp_path) == []


def test_overwrite_refused_then_allowed(tmp_path: Path) -> None:
    path = write_map(tmp_path / "m.png", np.zeros((2, 2, 3)), "diffuse")
    original = path.read_bytes()
    with pytest.raises(OutputExistsError, match="m.png: already exists; use --overwrite") as caught:
        write_map(path, np.ones((2, 2, 3)), "diffuse")
    assert isinstance(caught.value, FileExistsError) and isinstance(caught.value, ImageError)
    assert path.read_bytes() == original and _files(tmp_path) == ["m.png"]
    write_map(path, np.ones((2, 2, 3)), "diffuse", overwrite=True)
    assert np.allclose(read_map(path, "diffuse"), 1) and _files(tmp_path) == ["m.png"]
    (tmp_path / "d.exr").mkdir()
    with pytest.raises(ImageError, match="d.exr: is a directory"):
        write_map(tmp_path / "d.exr", np.zeros((2, 2, 3)), "diffuse", overwrite=True)


def test_overwrite_race_is_caught_at_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
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
    assert path.read_bytes() == b"rival" and _files(tmp_path) == ["m.png"]


@pytest.mark.parametrize("ext", ["png", "exr"])
def test_failure_mid_write_removes_the_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ext: str
) -> None:
    def broken(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tfiles.os, "link", broken)
    monkeypatch.setattr(tfiles.os, "replace", broken)
    with pytest.raises(ImageError, match=f"m.{ext}: cannot write") as caught:
        write_map(tmp_path / f"m.{ext}", np.zeros((2, 2, 3)), "diffuse")
    assert "No space left" in str(caught.value)
    assert _files(tmp_path) == []


# --- batch inputs and names ------------------------------------------------------------------------


def test_expand_inputs(tmp_path: Path) -> None:
    for name in ("b.png", "a.JPG", "c.exr", ".hidden.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.tif").write_bytes(b"x")
    got = tfiles.expand_inputs([str(tmp_path), str(tmp_path / "b.png"), str(tmp_path / "sub" / "*")])
    assert [p.name for p in got] == ["a.JPG", "b.png", "c.exr", "d.tif"]
    assert [p.name for p in tfiles.expand_inputs([str(tmp_path / "*.png")])] == ["b.png"]
    for pattern, message in [
        (str(tmp_path / "*.tiff"), "matches no image"),
        (str(tmp_path / "nope.png"), "no such file or folder"),
        (str(tmp_path / "notes.txt"), "unsupported file type"),
    ]:
        with pytest.raises(ImageError, match=message) as caught:
            tfiles.expand_inputs([pattern])
        assert pattern in str(caught.value)


def test_map_path() -> None:
    assert tfiles.map_path("maps", "brick", "normals", "png") == Path("maps/brick_normals.png")
    assert tfiles.map_path(Path("o"), "x", "diffuse", ".exr") == Path("o/x_diffuse.exr")
    with pytest.raises(ValueError, match="must match"):
        tfiles.map_path("o", "x", "Normals", "png")
    assert set(tfiles.SUPPORTED_WRITE) <= set(tfiles.SUPPORTED_READ)
