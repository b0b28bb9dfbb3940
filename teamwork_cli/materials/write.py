"""Writing maps (docs/conventions.md sections 1 and 2): a channel's value to its file encoding, PNG/TIFF/JPEG
bytes made here and EXR through the OpenEXR library, each published atomically (`files.publish`), never partially.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import OpenEXR
import tifffile
from PIL import Image as PILImage

from teamwork_cli.core.channels import ChannelSpec, channel_spec
from teamwork_cli.core.conventions import linear_to_srgb
from teamwork_cli.materials.files import (
    SUPPORTED_WRITE,
    WRITE_BITS,
    ImageError,
    exists_error,
    publish,
    stdout_to_stderr,
)
from teamwork_cli.materials.read import PNG_SIGNATURE

EXR_NORMALS = ("encoded", "signed")  # normal maps in EXR: (n+1)/2 (default) or raw n
_HALF_MAX = 65504.0


def write_map(
    path: str | os.PathLike[str],
    value: np.ndarray,
    channel: str,
    *,
    bits: int = 16,
    overwrite: bool = False,
    alpha: np.ndarray | None = None,
    exr_normals: str = "encoded",
) -> Path:
    """Write H x W x C values of `channel` (H x W also for grey channels); returns the path.

    alpha: an H x W coverage in [0, 1] stored as the file's alpha (PNG, TIFF: linear; EXR: channel "A"), e.g.
    an input's alpha carried through unchanged; JPEG has none and refuses it.
    exr_normals: how an EXR holds a `normals` map: "encoded" (n+1)/2 like PNG (the default, what Blender's and
    other tools' texture nodes decode) or "signed" raw vectors (docs/conventions.md section 1).

    By extension: .png 16-bit (bits=8 for 8-bit), .exr float16 (bits=32 for float32, written with the
    OpenEXR library), .tif/.tiff 16-bit or 8-bit, .jpg/.jpeg always 8-bit (quality 95, no chroma
    subsampling).  Integer files hold the channel's encoding (sRGB, (v + 1) / 2 or linear) of the value
    clipped to [0, 1] (hdr channels lose everything above 1: use EXR for them); EXR holds the value.  Grey
    channels are single-channel files (EXR channel "Y"), colour ones RGB (EXR R, G, B), or single-channel
    given H x W x 1 values (a greyscale photo; not for vector channels).
    """
    p = Path(path)
    spec = channel_spec(channel)
    ext = p.suffix.lower()
    if ext not in SUPPORTED_WRITE:
        raise ImageError(
            f"{p}: cannot write {ext or 'files without extension'}; supported: {', '.join(SUPPORTED_WRITE)}"
        )
    if bits not in WRITE_BITS[ext]:
        raise ImageError(f"{p}: bits={bits} is not available for {ext}; allowed: {WRITE_BITS[ext]}")
    if exr_normals not in EXR_NORMALS:
        raise ValueError(f"exr_normals must be one of {', '.join(EXR_NORMALS)}; got {exr_normals!r}")
    v = _check_value(p, value, spec)
    a = None
    if alpha is not None:
        a = np.asarray(alpha, dtype=np.float32).reshape(v.shape[0], v.shape[1], 1)
        if ext in (".jpg", ".jpeg"):
            raise ImageError(f"{p}: JPEG cannot store an alpha channel; write png, tif or exr")
    if p.is_dir():
        raise ImageError(f"{p}: is a directory")
    if p.exists() and not overwrite:
        raise exists_error(p)
    if ext == ".exr":
        if channel == "normals" and exr_normals == "encoded":
            v = (v + 1) / 2
        top = max(float(np.abs(v[rows]).max()) for rows in _row_bands(v))
        if bits == 16 and top > _HALF_MAX:
            raise ImageError(f"{p}: values up to {top:g} exceed float16's range; use bits=32")
        writer = _exr_writer(v if a is None else np.concatenate([v, a], 2), np.float16 if bits == 16 else np.float32)
    elif ext in (".jpg", ".jpeg"):
        writer = _bytes_writer(_jpeg_bytes(_stored_samples(v, spec, 8, a)))
    elif ext == ".png":  # PNG stores 16-bit samples big-endian (ISO/IEC 15948 section 7.1): made so at once
        writer = _bytes_writer(_png_bytes(_stored_samples(v, spec, bits, a, big_endian=True)))
    else:
        writer = _bytes_writer(_tiff_bytes(_stored_samples(v, spec, bits, a)))
    publish(p, writer, overwrite)
    return p


def _check_value(p: Path, value: np.ndarray, spec: ChannelSpec) -> np.ndarray:
    v = np.asarray(value, dtype=np.float32)
    if v.ndim == 2 and spec.is_grey:
        v = v[:, :, None]
    # A colour channel may come as one component: a grey file, such as read_map reads as three equal ones.
    grey_colour = v.ndim == 3 and v.shape[2] == 1 and spec.encoding != "vector"
    if v.ndim != 3 or (v.shape[2] != spec.components and not grey_colour):
        want = "H x W or H x W x 1" if spec.is_grey else "H x W x 3"
        raise ImageError(f"{p}: channel {spec.name!r} needs {want} values, got shape {v.shape}")
    if v.size == 0:
        raise ImageError(f"{p}: zero-size image (shape {v.shape})")
    if not all(np.isfinite(v[rows]).all() for rows in _row_bands(v)):
        raise ImageError(f"{p}: values contain NaN or infinity")
    return v


BAND_PIXELS = 1 << 17  # elementwise work on a map goes about this many pixels at a time


def _row_bands(v: np.ndarray) -> list[slice]:
    """Slices of about BAND_PIXELS pixels of rows: elementwise work on a large map a band at a time, so its
    temporaries are a band's size (a 4096 x 4096 RGB map's float copy alone is 200 MB)."""
    step = max(1, BAND_PIXELS // max(1, v.shape[1]))
    return [slice(i, i + step) for i in range(0, v.shape[0], step)]


def _stored_samples(
    v: np.ndarray, spec: ChannelSpec, bits: int, alpha: np.ndarray | None = None, *, big_endian: bool = False
) -> np.ndarray:
    """The integer samples of a file: H x W x C values encoded (`_encode`), the alpha beside them, and quantised
    to `bits`, a band of rows at a time into the result (every step is per sample: the same as on the whole)."""
    dtype = np.dtype(np.uint8 if bits == 8 else ">u2" if big_endian else np.uint16)
    comps = v.shape[2] + (0 if alpha is None else 1)
    out = np.empty((v.shape[0], v.shape[1], comps), dtype)
    for rows in _row_bands(v):
        enc = _encode(v[rows], spec)
        if alpha is not None:
            enc = np.concatenate([enc, np.clip(alpha[rows], 0, 1)], 2)
        out[rows] = _quantise(enc, bits)
    return out


def _encode(v: np.ndarray, spec: ChannelSpec) -> np.ndarray:
    """Values to the [0, 1] stored values of an integer file (docs/conventions.md section 1)."""
    if spec.encoding == "srgb":
        return linear_to_srgb(np.clip(v, 0, 1))
    if spec.encoding == "vector":
        return np.clip((v + 1) / 2, 0, 1)
    return np.clip(v, 0, 1)  # linear, and hdr clipped to what the file can hold


def _quantise(x: np.ndarray, bits: int) -> np.ndarray:
    top = (1 << bits) - 1
    return np.round(x * top).astype(np.uint8 if bits == 8 else np.uint16)


def _jpeg_bytes(q: np.ndarray) -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(q[..., 0] if q.shape[2] == 1 else q).save(buf, "JPEG", quality=95, subsampling=0)
    return buf.getvalue()


def _tiff_bytes(q: np.ndarray) -> bytes:
    buf = io.BytesIO()
    grey = q.shape[2] == 1
    # Horizontal differencing (TIFF 6.0 predictor 2) makes deflate several times smaller on smooth maps.
    photometric = "minisblack" if q.shape[2] <= 2 else "rgb"
    extra = {"extrasamples": ["unassalpha"]} if q.shape[2] in (2, 4) else {}  # TIFF 6.0 ExtraSamples = 2
    tifffile.imwrite(
        buf, q[..., 0] if grey else q, photometric=photometric, compression="zlib", predictor=True, **extra
    )
    return buf.getvalue()


def _png_bytes(q: np.ndarray, *, filter_type: int | None = None) -> bytes:
    """A PNG file (ISO/IEC 15948:2004) of H x W x C uint8 or uint16 samples, C = 1, 2, 3 or 4.

    Pillow cannot write 16-bit RGB(A), so PNGs are written here.  Each row gets the filter (section 9)
    whose output has the smallest sum of absolute signed bytes (the spec's suggested heuristic), or the
    fixed `filter_type` 0-4.
    """
    h, w, c = q.shape
    depth = 16 if q.dtype.itemsize == 2 else 8  # uint16 in either byte order
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    bpp = c * depth // 8  # bytes per complete pixel, the filters' left-neighbour distance
    rows = np.ascontiguousarray(q, dtype=">u2" if depth == 16 else np.uint8).view(np.uint8).reshape(h, w * bpp)
    # Level 1: on the seven noisy 16-bit maps of a 512 px svbrdf run level 6 is 1.6x its deflate time for 0.08% less.
    compressor = zlib.compressobj(1)
    parts = []
    prior = np.zeros(rows.shape[1], np.uint8)
    # Bounded memory: the 5 candidate filterings (int16, their costs int32) of about 1 MB of rows at a time, so
    # a 12 MP map's filter holds tens of MB, not hundreds (several maps are written in parallel threads).
    step = max(1, (1 << 20) // rows.shape[1])
    for start in range(0, h, step):
        block = rows[start : start + step]
        filtered = _png_filter(block, np.vstack([prior[None], block[:-1]]), bpp, filter_type)
        parts.append(compressor.compress(filtered.tobytes()))
        prior = block[-1]
    parts.append(compressor.flush())

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, depth, colour_type, 0, 0, 0)
    return PNG_SIGNATURE + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")


def _png_filter(x8: np.ndarray, up8: np.ndarray, bpp: int, filter_type: int | None) -> np.ndarray:
    """Filtered rows, each prefixed with its filter type byte (PNG spec section 9.2)."""
    x, b = x8.astype(np.int16), up8.astype(np.int16)
    a, c = np.zeros_like(x), np.zeros_like(x)  # left and upper-left neighbours, 0 outside the image
    a[:, bpp:], c[:, bpp:] = x[:, :-bpp], b[:, :-bpp]
    pa, pb, pc = np.abs(b - c), np.abs(a - c), np.abs(a + b - 2 * c)
    paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    candidates = np.stack([x, x - a, x - b, x - (a + b) // 2, x - paeth]) & 0xFF  # None..Paeth
    if filter_type is None:
        cost = np.abs(candidates.astype(np.uint8).view(np.int8).astype(np.int32)).sum(axis=2)
        choice = cost.argmin(axis=0)
    else:
        choice = np.full(x.shape[0], filter_type)
    rows = candidates[choice, np.arange(x.shape[0])].astype(np.uint8)
    return np.hstack([choice.astype(np.uint8)[:, None], rows])


def _exr_writer(v: np.ndarray, dtype: type) -> Callable[[Path], None]:
    names = {1: ["Y"], 2: ["Y", "A"], 3: ["R", "G", "B"], 4: ["R", "G", "B", "A"]}[v.shape[2]]
    # OpenEXR reads the arrays' memory as is: a strided view would be written as garbage.
    planes = {n: np.ascontiguousarray(v[..., i], dtype=dtype) for i, n in enumerate(names)}
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}

    def write(tmp: Path) -> None:
        with stdout_to_stderr():
            OpenEXR.File(header, planes).write(str(tmp))

    return write


def _bytes_writer(data: bytes) -> Callable[[Path], None]:
    def write(tmp: Path) -> None:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    return write


__all__ = ["EXR_NORMALS", "write_map"]
