"""File rules shared by every reader and writer (docs/conventions.md section 2): the formats, the errors,
`<stem>_<channel>.<ext>` names, input expansion, and atomic publication (a hidden temporary, then a rename).
"""

from __future__ import annotations

import glob
import os
import secrets
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from teamwork_cli.core.channels import NAME_RE

SUPPORTED_READ = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".exr")


SUPPORTED_WRITE = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".exr")


WRITE_BITS = {".png": (8, 16), ".tif": (8, 16), ".tiff": (8, 16), ".exr": (16, 32), ".jpg": (8, 16)}


WRITE_BITS[".jpeg"] = WRITE_BITS[".jpg"]  # JPEG is always 8-bit; 16 is accepted as the shared default


class ImageError(ValueError):
    """A file could not be read or written; the message starts with the file's path."""


class OutputExistsError(ImageError, FileExistsError):
    """write_map refused to replace an existing file."""


_redirect_lock = threading.Lock()
_redirects = [0, -1]  # how many callers are inside `stdout_to_stderr`, and the saved stdout descriptor


@contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """While inside, what C libraries print on file descriptor 1 goes to stderr: OpenEXR prints its warnings on
    stdout, which holds only the paths a command wrote. Nested and threaded callers share one redirect (the
    maps are written in parallel threads); Python's own stdout is flushed first so nothing of it is diverted."""
    with _redirect_lock:
        if _redirects[0] == 0:
            try:
                sys.stdout.flush()
                _redirects[1] = os.dup(1)
                os.dup2(2, 1)
            except (OSError, ValueError, AttributeError):  # no descriptors to redirect (an embedded interpreter)
                _redirects[1] = -1
        _redirects[0] += 1
    try:
        yield
    finally:
        with _redirect_lock:
            _redirects[0] -= 1
            if _redirects[0] == 0 and _redirects[1] >= 0:
                os.dup2(_redirects[1], 1)
                os.close(_redirects[1])
                _redirects[1] = -1


def publish(p: Path, write: Callable[[Path], None], overwrite: bool) -> None:
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
        raise exists_error(p) from None
    except OSError:  # file systems without hard links: check, then rename
        if p.exists():
            raise exists_error(p) from None
        os.replace(tmp, p)


def exists_error(p: Path) -> OutputExistsError:
    return OutputExistsError(f"{p}: already exists; use --overwrite (overwrite=True) to replace it")


def map_path(out_dir: str | os.PathLike[str], stem: str, channel: str, ext: str) -> Path:
    """`out_dir/<stem>_<channel>.<ext>` (docs/conventions.md section 2); ext with or without its dot."""
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
        elif p.exists():  # a pipe, device or socket: reading it could block forever
            raise ImageError(f"{p}: not a regular file (a pipe, device or socket); give an image file")
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


__all__ = [
    "ImageError",
    "OutputExistsError",
    "SUPPORTED_READ",
    "SUPPORTED_WRITE",
    "WRITE_BITS",
    "exists_error",
    "expand_inputs",
    "link_new",
    "map_path",
    "publish",
]
