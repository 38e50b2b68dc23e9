"""Output files that are written whole or not at all, and failures that name their file.

A command that cannot write its output (a full disk, a read-only file system, a forbidden
folder, a folder that is a file) says so in one line naming the file and the cause
(:class:`~pointengine.errors.OutputError`), and leaves nothing half-written behind:

* a file written at once goes to ``<name>.partial`` and is renamed over ``<name>`` only once
  it is whole (:func:`whole_file`, :func:`write_whole`); when anything fails the partial file
  is removed and ``<name>`` is as it was;
* a file that grows (a ledger, a rejects file) is cut back by its owner to a length it knows
  to be consistent (:func:`cut_back`), or removed when it did not exist before.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO

from pointengine.errors import OutputError

__all__ = ["PARTIAL", "appending", "cut_back", "length_of", "make_folder", "partial_of",
           "whole_file", "write_whole", "writing"]

PARTIAL = ".partial"
"""What a file being written whole is called until it is: ``<name>.partial``."""


def partial_of(path: Path) -> Path:
    """Where ``path`` is written before it is whole."""
    return path.with_name(path.name + PARTIAL)


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """Raise :class:`OutputError` naming ``path`` for an ``OSError`` in the block."""
    try:
        yield
    except OSError as exc:
        raise OutputError(path, exc) from exc


def make_folder(path: Path) -> None:
    """Create ``path`` and its parents unless they exist; :class:`OutputError` if it cannot."""
    with writing(path):
        path.mkdir(parents=True, exist_ok=True)


@contextlib.contextmanager
def whole_file(path: Path, *, durable: bool = False) -> Iterator[IO[bytes]]:
    """A binary handle on ``path``'s partial file, renamed over ``path`` when the block ends.

    When the block or the writing fails, the partial file is removed, ``path`` is left as it
    was, and an ``OSError`` becomes :class:`OutputError` naming ``path``. ``durable`` forces
    the bytes to the disk before the rename (a checkpoint must survive a power cut).
    """
    partial = partial_of(path)
    try:
        handle = partial.open("wb")
    except OSError as exc:
        raise OutputError(path, exc) from exc
    try:
        yield handle
        handle.flush()
        if durable:
            os.fsync(handle.fileno())
        handle.close()
        os.replace(partial, path)
    except BaseException as exc:
        # closing flushes again, and on a full disk fails again: that second failure says
        # nothing new
        with contextlib.suppress(OSError):
            handle.close()
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OutputError(path, exc) from exc
        raise


@contextlib.contextmanager
def appending(path: Path) -> Iterator[IO[bytes]]:
    """``path`` opened to append to, and closed when the block ends; an ``OSError`` opening or
    closing it becomes :class:`OutputError` naming ``path``.

    When the block fails, the handle is closed giving up what is still buffered: the file's
    owner cuts it back to a length it knows (:func:`cut_back`).
    """
    with writing(path):
        handle = path.open("ab")
    try:
        yield handle
    except BaseException:
        with contextlib.suppress(OSError):
            handle.close()
        raise
    with writing(path):
        handle.close()


def write_whole(path: Path, data: bytes, *, durable: bool = False) -> None:
    """Write ``data`` to ``path`` whole or not at all (see :func:`whole_file`)."""
    with whole_file(path, durable=durable) as handle:
        handle.write(data)


def length_of(path: Path) -> int | None:
    """``path``'s length in bytes, or None when it does not exist."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def cut_back(path: Path, length: int | None) -> None:
    """Cut ``path`` back to ``length`` bytes, or remove it when ``length`` is None (it did not
    exist); a file no longer than ``length`` is left alone. :class:`OutputError` if it cannot
    be done."""
    with writing(path):
        if length is None:
            path.unlink(missing_ok=True)
            return
        current = length_of(path)
        if current is not None and current > length:
            os.truncate(path, length)


def csv_bytes(rows: Iterable[Sequence[object]]) -> bytes:
    """Rows as CSV in UTF-8 with a byte-order mark (Excel in Japan reads it so), CRLF lines."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return buffer.getvalue().encode("utf-8-sig")


def write_all(folder: Path, files: Mapping[str, bytes]) -> list[Path]:
    """Write ``files`` (name → bytes) into ``folder``, all whole or none.

    Each goes to its partial file first; only when all are written are they renamed over their
    names. When anything fails the partial files are removed, the folder's files are as they
    were, and :class:`OutputError` names the file.
    """
    make_folder(folder)
    paths = [folder / name for name in files]
    written: list[Path] = []
    current = folder
    try:
        for path, data in zip(paths, files.values(), strict=True):
            current = path
            partial = partial_of(path)
            written.append(partial)
            with partial.open("wb") as handle:
                handle.write(data)
        for path in paths:
            current = path
            os.replace(partial_of(path), path)
    except OSError as exc:
        for partial in written:
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)
        raise OutputError(current, exc) from exc
    return paths
