"""Reading maps (docs/conventions.md sections 1 and 2).

`read_image` returns a file's *stored* values; `read_map` converts them to a channel's *value* (see
core/channels.py): sRGB channels are linearised, vector channels decoded from (v + 1) / 2, and EXR holds values as
they are.  Colour files are taken to be sRGB whatever ICC profile or gAMA chunk they carry.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import OpenEXR
import tifffile
from PIL import Image as PILImage
from PIL import ImageOps

from teamwork_cli.core import memory
from teamwork_cli.core.channels import channel_spec
from teamwork_cli.core.conventions import decode_normals, normalize, srgb_to_linear
from teamwork_cli.materials.files import SUPPORTED_READ, ImageError, stdout_to_stderr

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


_EXR_SIGNATURE = b"\x76\x2f\x31\x01"


_TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF


@dataclass(frozen=True)
class Image:
    """Stored values of an image file: integer formats scaled to [0, 1], floating-point ones raw."""

    pixels: np.ndarray  # float32, H x W x C with C = 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA)
    is_float: bool  # EXR or floating-point TIFF
    bit_depth: int  # 8 or 16 for integer files; 16 (half) or 32 for floating-point ones
    path: Path

    @property
    def has_alpha(self) -> bool:
        return self.pixels.shape[2] in (2, 4)


def read_image(path: str | os.PathLike[str], *, layer: str | None = None) -> Image:
    """Read PNG (1-16 bit, any colour type), JPEG, TIFF (8/16-bit, float) or OpenEXR (half/float).

    EXR channels may be R,G,B[,A], X,Y,Z[,A], Y[,A] or a single channel of any name; in a file with layers
    (`layer.R`, ...) the unprefixed channels are used, or the only layer, or the one named by `layer`.
    Multi-page TIFFs and multi-part EXRs give their first image.
    """
    return _read(Path(path), layer, strict_layer=True)


def read_map(path: str | os.PathLike[str], channel: str, *, size: tuple[int, int] | None = None) -> np.ndarray:
    """A map as float32 H x W x C values of `channel` (C = 1 for grey channels, else 3).

    Integer files are decoded by the channel's encoding (sRGB linearised, vectors from (v + 1) / 2 and
    renormalised); EXR and float TIFF values are taken as they are.  Alpha is dropped; a grey file fills all
    3 components of a colour channel; a colour file read as a grey channel gives the mean of its R, G and B
    (equal in a grey map saved as RGB, and the mean halves JPEG noise).  Vector channels need a 3-component
    file.  In a layered EXR the layer named like the channel is preferred.  `size` = (height, width)
    resamples the values: box (area) filter where an axis shrinks, bilinear where it grows.
    """
    p = Path(path)
    spec = channel_spec(channel)
    image = _read(p, channel, strict_layer=False)
    pixels = image.pixels[..., : 3 if image.pixels.shape[2] >= 3 else 1]  # drop alpha
    if spec.encoding == "vector" and pixels.shape[2] != 3:
        raise ImageError(f"{p}: channel {channel!r} needs a 3-component (RGB) file, this one is grey")
    if not image.is_float:
        if spec.encoding == "srgb":
            pixels = srgb_to_linear(pixels)
        elif spec.encoding == "vector":
            pixels = decode_normals(pixels)
    elif channel == "normals":
        pixels = float_normals(pixels)
    if spec.is_grey and pixels.shape[2] == 3:
        pixels = pixels.mean(axis=2, keepdims=True)
    elif not spec.is_grey and pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    if size is not None:
        pixels = _resize(pixels, size)
        if spec.encoding == "vector":
            pixels = normalize(pixels)  # interpolated unit vectors are shorter than 1
    return np.ascontiguousarray(pixels, dtype=np.float32)


def float_normals_encoded(pixels: np.ndarray) -> bool:
    """Whether a floating-point normal map (H x W x 3) holds (n+1)/2 rather than raw n (docs/conventions.md
    section 1: a map with values below zero is raw n). A map with none below zero is ambiguous only in principle:
    of the two readings, the one whose vectors are closer to unit length is taken (a flat raw map, all (0, 0, 1),
    is then raw, not (n+1)/2 of a tilted one)."""
    if pixels.size == 0 or pixels.min() < 0:
        return False
    flat = pixels.reshape(-1, 3).astype(np.float64)
    as_raw = np.abs(np.linalg.norm(flat, axis=1) - 1)
    as_encoded = np.abs(np.linalg.norm(flat * 2 - 1, axis=1) - 1)
    return float(np.median(as_encoded)) <= float(np.median(as_raw))


def float_normals(pixels: np.ndarray) -> np.ndarray:
    """Unit normals from a floating-point normal map, (n+1)/2 or raw n (see float_normals_encoded)."""
    return decode_normals(pixels) if float_normals_encoded(pixels) else normalize(pixels)


def max_pixels() -> int:
    """The pixel budget of one image (core/memory.py: --max-pixels, else TEAMWORK_MAX_PIXELS, else MAX_PIXELS)."""
    try:
        return memory.max_pixels()
    except ValueError as e:
        raise ImageError(str(e)) from e


def header_size(p: Path, head: bytes) -> tuple[int, int] | None:
    """(width, height) as the file's header states it, read without decoding any pixel; None if unknown."""
    if head.startswith(PNG_SIGNATURE) and head[12:16] == b"IHDR":
        return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    if head.startswith(_EXR_SIGNATURE):
        with stdout_to_stderr():
            (x0, y0), (x1, y1) = OpenEXR.File(str(p), header_only=True).header()["dataWindow"]
        return int(x1 - x0 + 1), int(y1 - y0 + 1)
    if head.startswith(_TIFF_SIGNATURES):
        with tifffile.TiffFile(p) as tif:
            shape = tif.pages[0].shape
            axes = tif.pages[0].axes
        return int(shape[axes.index("X")]), int(shape[axes.index("Y")])
    if head.startswith(b"\xff\xd8\xff"):
        with PILImage.open(p) as im:  # Pillow reads only the JPEG's header here
            return im.size
    return None  # an unknown signature: refused by the reader


def _check_pixels(p: Path, head: bytes) -> None:
    size = header_size(p, head)
    budget = max_pixels()
    if size is not None and size[0] * size[1] > budget:
        w, h = size
        raise ImageError(
            f"{p}: its header claims {w}x{h} pixels ({w * h / 1e6:.0f} MP), over the budget of {budget / 1e6:g} MP "
            "(a decompression bomb, or an image too large to process); --max-pixels or TEAMWORK_MAX_PIXELS allow more"
        )


def image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(width, height) of an image file from its header, with every check `read_image` makes before decoding
    (a regular file, a known signature, the pixel budget): what memory planning needs, decoding nothing."""
    p = Path(path)
    head = _open(p)
    try:
        _check_pixels(p, head)
        size = header_size(p, head)
    except ImageError:
        raise
    except Exception as e:  # a header too short or malformed for its format
        raise ImageError(f"{p}: cannot decode, the file is truncated or corrupt ({e})") from e
    if size is None:
        raise ImageError(f"{p}: not a PNG, JPEG, TIFF or OpenEXR file (unknown signature)")
    return size


def _open(p: Path) -> bytes:
    """The file's first bytes, after the checks that need no decoder: a regular, non-empty file of a known type."""
    if p.is_dir():  # before the suffix: a folder has none, and "unsupported file type ''" misleads
        raise ImageError(f"{p}: is a folder, expected an image file")
    if p.suffix.lower() not in SUPPORTED_READ:
        raise ImageError(f"{p}: unsupported file type {p.suffix!r}; supported: {', '.join(SUPPORTED_READ)}")
    if not p.exists():
        raise ImageError(f"{p}: no such file")
    try:
        mode = p.stat().st_mode
    except OSError as e:
        raise ImageError(f"{p}: cannot open ({e.strerror or e})") from e
    if not stat.S_ISREG(mode):  # a pipe or a device would block, or never end
        raise ImageError(f"{p}: not a regular file (a pipe, device or socket); give an image file")
    try:
        with open(p, "rb") as f:
            head = f.read(32)
    except OSError as e:
        raise ImageError(f"{p}: cannot open ({e.strerror or e})") from e
    if not head:
        raise ImageError(f"{p}: empty file (0 bytes)")
    return head


def _read(p: Path, layer: str | None, strict_layer: bool) -> Image:
    head = _open(p)
    try:
        _check_pixels(p, head)  # from the header, before anything is decoded
        if head.startswith(_EXR_SIGNATURE):
            pixels, is_float, bits = _read_exr(p, layer, strict_layer)
        elif head.startswith(_TIFF_SIGNATURES):
            pixels, is_float, bits = _read_tiff(p)
        elif head.startswith(PNG_SIGNATURE) or head.startswith(b"\xff\xd8\xff"):
            pixels, is_float, bits = _read_pillow(p, head)
        else:
            raise ImageError(f"{p}: not a PNG, JPEG, TIFF or OpenEXR file (unknown signature)")
    except (ImageError, MemoryError):
        raise
    except PILImage.DecompressionBombError as e:
        raise ImageError(f"{p}: larger than Pillow's decompression-bomb limit ({e})") from e
    except Exception as e:  # decoders raise many types (OSError, SyntaxError, RuntimeError, zlib.error...)
        raise ImageError(f"{p}: cannot decode, the file is truncated or corrupt ({e})") from e
    if pixels.ndim != 3 or pixels.shape[0] == 0 or pixels.shape[1] == 0:
        raise ImageError(f"{p}: zero-size image (shape {pixels.shape})")
    if not 1 <= pixels.shape[2] <= 4:
        raise ImageError(f"{p}: {pixels.shape[2]} channels; supported: 1 to 4 (grey, grey+alpha, RGB, RGBA)")
    if is_float and not np.isfinite(pixels).all():
        raise ImageError(f"{p}: contains NaN or infinite values")
    return Image(np.ascontiguousarray(pixels, dtype=np.float32), is_float, bits, p)


def _scale(a: np.ndarray) -> tuple[np.ndarray, bool, int]:
    """Integer samples to [0, 1] floats, with their bit depth."""
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255, False, 8
    if a.dtype == np.uint16:
        return a.astype(np.float32) / 65535, False, 16
    if a.dtype == np.bool_:
        return a.astype(np.float32), False, 8
    if np.issubdtype(a.dtype, np.floating):
        return a.astype(np.float32), True, 16 if a.dtype == np.float16 else 32
    raise ImageError(f"unsupported sample type {a.dtype}; supported: 8/16-bit unsigned, float16/32/64")


def _channels_last(a: np.ndarray) -> np.ndarray:
    return a[:, :, None] if a.ndim == 2 else a


def _read_pillow(p: Path, head: bytes) -> tuple[np.ndarray, bool, int]:
    # PNG IHDR (ISO/IEC 15948, 11.2.2) sits at a fixed offset: bit depth at byte 24, colour type at 25.
    if head.startswith(PNG_SIGNATURE) and len(head) >= 26 and head[24] == 16 and head[25] in (2, 4, 6):
        return _scale(_png16_colour(p, head[25]))
    with PILImage.open(p) as im:
        im.load()
        im = ImageOps.exif_transpose(im)  # camera photos store their rotation in EXIF
        mode = im.mode
        if mode in ("1", "CMYK", "YCbCr", "RGBX"):
            im = im.convert("L" if mode == "1" else "RGB")
        elif mode in ("P", "PA"):
            im = im.convert("RGBA" if mode == "PA" or "transparency" in im.info else "RGB")
        elif mode.startswith("I;16"):
            return _scale(_channels_last(np.asarray(im).astype(np.uint16)))
        elif mode == "I":  # 16-bit grey held as 32-bit integers
            return _scale(_channels_last(np.clip(np.asarray(im), 0, 65535).astype(np.uint16)))
        elif mode not in ("L", "LA", "RGB", "RGBA"):
            raise ImageError(f"{p}: unsupported image mode {mode!r}")
        return _scale(_channels_last(np.asarray(im)))


def _png16_colour(p: Path, colour_type: int) -> np.ndarray:
    """Exact 16-bit RGB, RGBA or grey+alpha PNG samples, which Pillow would cut to 8 bits.

    Pillow undoes the PNG filters on whole pixels and only then unpacks samples with a "raw mode".  Its
    big-endian 16-bit raw modes keep each sample's first (high) byte; decoding the same stream again with
    the little-endian ones keeps the second (low) byte.  Both passes share the unfiltering, so
    high * 256 + low is the stored sample.  Grey+alpha (4 bytes a pixel) decodes verbatim as 8-bit RGBA.
    """

    def decode(rawmode: str) -> np.ndarray:
        with PILImage.open(p) as im:
            if len(im.tile) != 1 or im.tile[0][0] != "zip":
                raise ImageError(f"{p}: unsupported 16-bit PNG layout")
            tile = im.tile[0]
            im.tile = [tile._replace(args=rawmode) if hasattr(tile, "_replace") else (*tile[:3], rawmode)]
            im.load()
            return np.asarray(im).astype(np.uint16)

    if colour_type == 4:
        b = decode("RGBA")
        return np.stack([b[..., 0] << 8 | b[..., 1], b[..., 2] << 8 | b[..., 3]], axis=-1)
    mode = "RGB" if colour_type == 2 else "RGBA"
    return decode(f"{mode};16B") << 8 | decode(f"{mode};16L")


def _read_tiff(p: Path) -> tuple[np.ndarray, bool, int]:
    with tifffile.TiffFile(p) as tif:
        page = tif.pages[0]  # first image of a multi-page file
        a, axes = page.asarray(), page.axes
        if page.photometric == tifffile.PHOTOMETRIC.PALETTE:
            return _scale(np.moveaxis(page.colormap[:, a], 0, -1).astype(np.uint16))
        if page.photometric not in (tifffile.PHOTOMETRIC.MINISBLACK, tifffile.PHOTOMETRIC.RGB):
            raise ImageError(f"{p}: unsupported TIFF photometric {page.photometric.name}; use grey or RGB")
    # Keep Y, X and the sample axis (S, or C for planar files) in that order.
    for i in reversed(range(a.ndim)):
        if axes[i] not in "YXSC" and a.shape[i] == 1:
            a, axes = a.squeeze(i), axes[:i] + axes[i + 1 :]
    if a.ndim == 3 and axes[0] in "SC":
        a = np.moveaxis(a, 0, -1)
    if a.ndim not in (2, 3):
        raise ImageError(f"{p}: unsupported TIFF layout {axes} {a.shape}")
    return _scale(_channels_last(a))


def _read_exr(p: Path, layer: str | None, strict_layer: bool) -> tuple[np.ndarray, bool, int]:
    with stdout_to_stderr():
        channels = OpenEXR.File(str(p), separate_channels=True).channels()
    layers: dict[str, dict[str, np.ndarray]] = {}
    for name, ch in channels.items():
        prefix, _, short = name.rpartition(".")
        layers.setdefault(prefix, {})[short] = ch.pixels
    if layer is not None and layer in layers:
        chosen = layer
    elif layer is not None and strict_layer:
        raise ImageError(f"{p}: no layer {layer!r}; layers: {', '.join(sorted(layers))}")
    elif "" in layers or len(layers) == 1:
        chosen = "" if "" in layers else next(iter(layers))
    else:
        raise ImageError(f"{p}: several layers ({', '.join(sorted(layers))}); choose one with layer=")
    found = layers[chosen]
    upper = {k.upper(): k for k in found}
    order = None
    for names in (("R", "G", "B"), ("X", "Y", "Z"), ("Y",)):
        if set(names) <= upper.keys() and not {"RY", "BY"} & upper.keys():
            order = [upper[n] for n in names] + ([upper["A"]] if "A" in upper else [])
            break
    if order is None and len(found) == 1:
        order = list(found)
    elif order is None and len(found) == 2 and "A" in upper:
        order = [k for k in found if k != upper["A"]] + [upper["A"]]
    if order is None:
        raise ImageError(
            f"{p}: cannot interpret EXR channels {', '.join(sorted(found))}; "
            "expected R,G,B[,A], X,Y,Z[,A], Y[,A] or a single channel"
        )
    planes = [found[k] for k in order]
    if len({q.shape for q in planes}) != 1:
        raise ImageError(f"{p}: subsampled EXR channels are not supported")
    bits = 16 if all(q.dtype == np.float16 for q in planes) else 32
    return np.stack([q.astype(np.float32) for q in planes], axis=-1), True, bits


def _resize(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resample H x W x C float32 to size = (height, width), one axis at a time."""
    if len(size) != 2 or not all(isinstance(n, int | np.integer) and n > 0 for n in size):
        raise ValueError(f"size must be (height, width) with positive integers, got {size!r}")
    out = []
    for c in range(x.shape[2]):
        im = PILImage.fromarray(np.ascontiguousarray(x[..., c], dtype=np.float32))  # mode "F"
        # Pillow's BOX filter averages exactly the covered source area; BILINEAR interpolates with
        # pixel-centre alignment.  Pillow skips the pass of an axis whose size is unchanged.
        for new_size in ((im.width, size[0]), (size[1], size[0])):
            shrink = new_size[0] < im.width or new_size[1] < im.height
            im = im.resize(new_size, PILImage.Resampling.BOX if shrink else PILImage.Resampling.BILINEAR)
        out.append(np.asarray(im))
    return np.stack(out, axis=-1)


__all__ = ["Image", "read_image", "read_map"]
