"""Reading map files (docs/conventions.md section 2): odd layouts, resizing, and every error path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import OpenEXR
import pytest
import tifffile
from PIL import Image as PILImage

from teamwork_cli.materials import write as twrite
from teamwork_cli.materials.files import ImageError
from teamwork_cli.materials.read import read_image, read_map
from teamwork_cli.materials.write import write_map

RNG = np.random.default_rng(3)


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


def test_resize_box_down_bilinear_up(tmp_path: Path, unit_vectors) -> None:
    value = RNG.random((4, 6, 1)).astype(np.float32)
    path = write_map(tmp_path / "r.exr", value, "roughness", bits=32)
    small = read_map(path, "roughness", size=(2, 3))
    assert np.allclose(small[..., 0], value[..., 0].reshape(2, 2, 3, 2).mean(axis=(1, 3)), atol=1e-6)
    assert read_map(path, "roughness", size=(8, 3)).shape == (8, 3, 1)  # one axis up, one down
    flat = np.full((4, 4, 1), 0.3, np.float32)
    up = read_map(write_map(tmp_path / "f.exr", flat, "roughness", bits=32), "roughness", size=(9, 9))
    assert np.allclose(up, 0.3)
    n = read_map(write_map(tmp_path / "n.png", unit_vectors(6, 6), "normals"), "normals", size=(3, 3))
    assert np.allclose(np.linalg.norm(n, axis=-1), 1, atol=1e-6)
    with pytest.raises(ValueError, match="size must be"):
        read_map(path, "roughness", size=(0, 3))


def _valid_png(path: Path) -> bytes:
    write_map(path, np.random.default_rng(0).random((16, 16, 3)).astype(np.float32), "diffuse")
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
def test_read_errors_name_the_file(
    tmp_path: Path, name: str, content: object, message: str, dir_listing, levels
) -> None:
    path = tmp_path / name
    if content == "truncate":
        data = _valid_png(tmp_path / "x.png")
        path.write_bytes(data[: len(data) // 2])
    elif content == "truncate-exr":
        write_map(tmp_path / "x.exr", levels((32, 32, 3), 8), "diffuse")
        path.write_bytes((tmp_path / "x.exr").read_bytes()[:-200])
        (tmp_path / "x.exr").unlink()
    elif content == "truncate-tif":
        write_map(tmp_path / "x.tif", levels((32, 32, 3), 8), "diffuse")
        path.write_bytes((tmp_path / "x.tif").read_bytes()[:300])
        (tmp_path / "x.tif").unlink()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    before = dir_listing(tmp_path)
    with pytest.raises(ImageError, match=message) as caught:
        read_map(path, "diffuse")
    assert str(path) in str(caught.value)
    assert dir_listing(tmp_path) == before


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


def test_pipes_and_devices_are_refused_without_blocking(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "mask.png"
    os.mkfifo(fifo)  # reading it would wait forever for a writer
    with pytest.raises(ImageError, match="not a regular file"):
        read_image(fifo)


def test_a_header_claiming_too_many_pixels_is_refused_before_decoding(tmp_path: Path) -> None:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    bomb = tmp_path / "bomb.png"  # 30000 x 30000 claimed, a few bytes of data
    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    bomb.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )
    with pytest.raises(ImageError, match=r"claims 30000x30000 pixels \(900 MP\).*TEAMWORK_MAX_PIXELS"):
        read_image(bomb)


@pytest.mark.parametrize("ext", ["png", "jpg", "tif", "exr"])
def test_the_pixel_budget_holds_for_every_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ext: str) -> None:
    path = write_map(tmp_path / f"m.{ext}", np.full((20, 30, 3), 0.5, np.float32), "diffuse")
    monkeypatch.setenv("TEAMWORK_MAX_PIXELS", "600")
    assert read_image(path).pixels.shape[:2] == (20, 30)  # 600 pixels: within
    monkeypatch.setenv("TEAMWORK_MAX_PIXELS", "599")
    with pytest.raises(ImageError, match="claims 30x20 pixels"):
        read_image(path)
    monkeypatch.setenv("TEAMWORK_MAX_PIXELS", "many")
    with pytest.raises(ImageError, match="TEAMWORK_MAX_PIXELS='many' must be a positive integer"):
        read_image(path)
