"""Writing outputs safely: the --out directory checked up front, every file written under a temporary name and
renamed into place.

A rename replaces whatever sits at the target name, a symlink included, without following it: a link planted in
--out (`report.html` -> a file elsewhere) is replaced by the report, and the file it pointed at stays untouched; so
does a file hard-linked there. A run that fails halfway leaves the previous outputs whole, never a half-written one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from incidentlens.errors import InputError


def output_dir(path: str | Path) -> Path:
    """`path` as an existing directory (created with its parents if missing); one-line InputError otherwise."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a directory; --out needs a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"{out}: cannot create the output directory ({err.strerror or err})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise InputError(f"{out}: the output directory is not writable")
    return out


def write_text(path: Path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` by way of a temporary name in the same directory."""
    with open_for_write(path) as handle:
        handle.write(text)
    return path


def write_with(path: Path, writer: Callable[[Path], object]) -> Path:
    """Let `writer` write a new file at a temporary path (pyarrow, DuckDB COPY), then rename it to `path`."""
    with _staging(path) as staged:
        writer(staged)
    return path


@contextlib.contextmanager
def open_for_write(path: Path) -> Iterator[IO[str]]:
    """A text handle on a fresh temporary file; on a clean exit it is renamed to `path`, on an error removed."""
    staged = StagedFile(path)
    try:
        yield staged.handle
    except BaseException:
        staged.discard()
        raise
    staged.commit()


class StagedFile:
    """A file written over time (a trace streamed line by line) under a temporary name beside `path`: `commit()`
    renames it into place, `discard()` removes it."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._scratch = _scratch_dir(self.path)
        self._staged = self._scratch / self.path.name
        # O_EXCL in a directory only we write to: never an existing file, never through a link.
        fd = os.open(self._staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        self.handle: IO[str] = os.fdopen(fd, "w", encoding="utf-8")

    def commit(self) -> None:
        self.handle.close()
        try:
            os.replace(self._staged, self.path)
        except OSError as err:
            raise InputError(f"{self.path}: cannot write ({err.strerror or err})") from None
        finally:
            self.discard()

    def discard(self) -> None:
        self.handle.close()
        _remove(self._scratch)


@contextlib.contextmanager
def _staging(path: Path) -> Iterator[Path]:
    """A path in a private temporary directory beside `path`, renamed over `path` when the block succeeds."""
    path = Path(path)
    scratch = _scratch_dir(path)
    staged = scratch / path.name
    try:
        yield staged
        try:
            os.replace(staged, path)
        except OSError as err:
            raise InputError(f"{path}: cannot write ({err.strerror or err})") from None
    finally:
        _remove(scratch)


def _scratch_dir(path: Path) -> Path:
    try:
        return Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    except OSError as err:
        raise InputError(f"{path}: cannot write ({err.strerror or err})") from None


def _remove(scratch: Path) -> None:
    """Remove a scratch directory and what is left in it (nothing once the rename is done)."""
    for leftover in scratch.iterdir():
        with contextlib.suppress(OSError):
            leftover.unlink()
    with contextlib.suppress(OSError):
        scratch.rmdir()
