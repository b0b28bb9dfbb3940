"""Reading and writing material maps (conventions.md sections 1 and 2).

`read_image` returns a file's *stored* values; `read_map`/`write_map` convert between those and a channel's
*value* (see channels.py): sRGB channels are linearised, vector channels decoded from (v + 1) / 2, and EXR
holds values as they are.  Colour files are taken to be sRGB whatever ICC profile or gAMA chunk they carry.
Outputs appear atomically (a hidden temporary file in the same folder, then a rename) and never partially.
"""

from __future__ import annotations

import glob
import io
import os
import secrets
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import OpenEXR
import tifffile
from PIL import Image as PILImage
from PIL import ImageOps

from teamwork_cli.core.channels import NAME_RE, ChannelSpec, channel_spec
from teamwork_cli.core.conventions import decode_normals, linear_to_srgb, normalize, srgb_to_linear

SUPPORTED_READ = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".exr")
SUPPORTED_WRITE = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".exr")
WRITE_BITS = {".png": (8, 16), ".tif": (8, 16), ".tiff": (8, 16), ".exr": (16, 32), ".jpg": (8, 16)}
WRITE_BITS[".jpeg"] = WRITE_BITS[".jpg"]  # JPEG is always 8-bit; 16 is accepted as the shared default
_HALF_MAX = 65504.0

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_EXR_SIGNATURE = b"\x76\x2f\x31\x01"
_TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF


class ImageError(ValueError):
    """A file could not be read or written; the message starts with the file's path."""


class OutputExistsError(ImageError, FileExistsError):
    """write_map refused to replace an existing file."""


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


# --- reading ---------------------------------------------------------------------------------------


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
    if spec.is_grey and pixels.shape[2] == 3:
        pixels = pixels.mean(axis=2, keepdims=True)
    elif not spec.is_grey and pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    if size is not None:
        pixels = _resize(pixels, size)
        if spec.encoding == "vector":
            pixels = normalize(pixels)  # interpolated unit vectors are shorter than 1
    return np.ascontiguousarray(pixels, dtype=np.float32)


def _read(p: Path, layer: str | None, strict_layer: bool) -> Image:
    if p.is_dir():  # before the suffix: a folder has none, and "unsupported file type ''" misleads
        raise ImageError(f"{p}: is a folder, expected an image file")
    if p.suffix.lower() not in SUPPORTED_READ:
        raise ImageError(f"{p}: unsupported file type {p.suffix!r}; supported: {', '.join(SUPPORTED_READ)}")
    if not p.exists():
        raise ImageError(f"{p}: no such file")
    try:
        with open(p, "rb") as f:
            head = f.read(32)
    except OSError as e:
        raise ImageError(f"{p}: cannot open ({e.strerror or e})") from e
    if not head:
        raise ImageError(f"{p}: empty file (0 bytes)")
    try:
        if head.startswith(_EXR_SIGNATURE):
            pixels, is_float, bits = _read_exr(p, layer, strict_layer)
        elif head.startswith(_TIFF_SIGNATURES):
            pixels, is_float, bits = _read_tiff(p)
        elif head.startswith(_PNG_SIGNATURE) or head.startswith(b"\xff\xd8\xff"):
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
    if head.startswith(_PNG_SIGNATURE) and len(head) >= 26 and head[24] == 16 and head[25] in (2, 4, 6):
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


# --- writing ---------------------------------------------------------------------------------------


def write_map(
    path: str | os.PathLike[str],
    value: np.ndarray,
    channel: str,
    *,
    bits: int = 16,
    overwrite: bool = False,
    alpha: np.ndarray | None = None,
) -> Path:
    """Write H x W x C values of `channel` (H x W also for grey channels); returns the path.

    alpha: an H x W coverage in [0, 1] stored as the file's alpha (PNG, TIFF: linear; EXR: channel "A"), e.g.
    an input's alpha carried through unchanged; JPEG has none and refuses it.

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
    v = _check_value(p, value, spec)
    a = None
    if alpha is not None:
        a = np.asarray(alpha, dtype=np.float32).reshape(v.shape[0], v.shape[1], 1)
        if ext in (".jpg", ".jpeg"):
            raise ImageError(f"{p}: JPEG cannot store an alpha channel; write png, tif or exr")
    if p.is_dir():
        raise ImageError(f"{p}: is a directory")
    if p.exists() and not overwrite:
        raise _exists(p)
    if ext == ".exr":
        if bits == 16 and np.abs(v).max() > _HALF_MAX:
            raise ImageError(f"{p}: values up to {np.abs(v).max():g} exceed float16's range; use bits=32")
        writer = _exr_writer(v if a is None else np.concatenate([v, a], 2), np.float16 if bits == 16 else np.float32)
    else:
        stored = _encode(v, spec) if a is None else np.concatenate([_encode(v, spec), np.clip(a, 0, 1)], 2)
        if ext in (".jpg", ".jpeg"):
            data = _jpeg_bytes(_quantise(stored, 8))
        elif ext == ".png":
            data = _png_bytes(_quantise(stored, bits))
        else:
            data = _tiff_bytes(_quantise(stored, bits))
        writer = _bytes_writer(data)
    _publish(p, writer, overwrite)
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
    if not np.isfinite(v).all():
        raise ImageError(f"{p}: values contain NaN or infinity")
    return v


def _encode(v: np.ndarray, spec: ChannelSpec) -> np.ndarray:
    """Values to the [0, 1] stored values of an integer file (conventions.md section 1)."""
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
    tifffile.imwrite(buf, q[..., 0] if grey else q, photometric=photometric, compression="zlib", predictor=True,
                     **extra)
    return buf.getvalue()


def _png_bytes(q: np.ndarray, *, filter_type: int | None = None) -> bytes:
    """A PNG file (ISO/IEC 15948:2004) of H x W x C uint8 or uint16 samples, C = 1, 2, 3 or 4.

    Pillow cannot write 16-bit RGB(A), so PNGs are written here.  Each row gets the filter (section 9)
    whose output has the smallest sum of absolute signed bytes (the spec's suggested heuristic), or the
    fixed `filter_type` 0-4.
    """
    h, w, c = q.shape
    depth = 16 if q.dtype == np.uint16 else 8
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    bpp = c * depth // 8  # bytes per complete pixel, the filters' left-neighbour distance
    rows = np.ascontiguousarray(q, dtype=">u2" if depth == 16 else np.uint8).view(np.uint8).reshape(h, w * bpp)
    compressor = zlib.compressobj(6)
    parts = []
    prior = np.zeros(rows.shape[1], np.uint8)
    for start in range(0, h, 256):  # bounded memory: 5 candidate filterings of 256 rows at a time
        block = rows[start : start + 256]
        filtered = _png_filter(block, np.vstack([prior[None], block[:-1]]), bpp, filter_type)
        parts.append(compressor.compress(filtered.tobytes()))
        prior = block[-1]
    parts.append(compressor.flush())

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, depth, colour_type, 0, 0, 0)
    return _PNG_SIGNATURE + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")


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
        OpenEXR.File(header, planes).write(str(tmp))

    return write


def _bytes_writer(data: bytes) -> Callable[[Path], None]:
    def write(tmp: Path) -> None:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    return write


def _publish(p: Path, write: Callable[[Path], None], overwrite: bool) -> None:
    """Write through `write` to a hidden temporary file beside `p`, then move it into place."""
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ImageError(f"{p}: cannot create folder {p.parent} ({e.strerror or e})") from e
    tmp = p.with_name(f".{p.name}.tmp-{secrets.token_hex(4)}")
    try:
        write(tmp)
        if overwrite:
            os.replace(tmp, p)
        else:
            link_new(tmp, p)
    except (ImageError, MemoryError):
        raise
    except Exception as e:
        raise ImageError(f"{p}: cannot write ({e})") from e
    finally:
        tmp.unlink(missing_ok=True)


def link_new(tmp: Path, p: Path) -> None:
    """Give `tmp` the name `p` only if `p` does not exist, atomically where hard links work."""
    try:
        os.link(tmp, p)
    except FileExistsError:
        raise _exists(p) from None
    except OSError:  # file systems without hard links: check, then rename
        if p.exists():
            raise _exists(p) from None
        os.replace(tmp, p)


def _exists(p: Path) -> OutputExistsError:
    return OutputExistsError(f"{p}: already exists; use --overwrite (overwrite=True) to replace it")


# --- paths -----------------------------------------------------------------------------------------


def map_path(out_dir: str | os.PathLike[str], stem: str, channel: str, ext: str) -> Path:
    """`out_dir/<stem>_<channel>.<ext>` (conventions.md section 2); ext with or without its dot."""
    if not NAME_RE.match(channel):
        raise ValueError(f"channel name {channel!r} must match [a-z]+")
    return Path(out_dir) / f"{stem}_{channel}.{ext.lstrip('.')}"


def expand_inputs(patterns: list[str]) -> list[Path]:
    """Files named, images in folders named (sorted, not recursive, hidden files skipped) and glob
    matches (sorted, images only; `**` recurses), without duplicates, in order.  A pattern that gives no
    image raises ImageError naming it."""
    found: list[Path] = []
    for pattern in patterns:
        p = Path(pattern).expanduser()
        if p.is_dir():
            matches = sorted(q for q in p.iterdir() if _is_image(q))
        elif p.is_file():
            if p.suffix.lower() not in SUPPORTED_READ:
                raise ImageError(f"{p}: unsupported file type; supported: {', '.join(SUPPORTED_READ)}")
            matches = [p]
        elif any(ch in pattern for ch in "*?["):
            matches = sorted(q for q in map(Path, glob.glob(str(p), recursive=True)) if _is_image(q))
        else:
            raise ImageError(f"{pattern}: no such file or folder")
        if not matches:
            raise ImageError(f"{pattern}: matches no image ({', '.join(SUPPORTED_READ)})")
        found.extend(matches)
    unique: dict[Path, Path] = {}
    for q in found:
        unique.setdefault(q.resolve(), q)
    return list(unique.values())


def _is_image(q: Path) -> bool:
    return q.is_file() and not q.name.startswith(".") and q.suffix.lower() in SUPPORTED_READ
