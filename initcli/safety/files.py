"""Opening untrusted input files: regular files only, read with bounds, watched for changes."""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass

import numpy as np

from initcli.errors import InitcliError

_READ_PIECE = 16 * 1024 * 1024


def shown(text: object) -> str:
    """A name read from a file, safe to put in a one-line message (no control characters, bounded)."""
    value = str(text)
    if len(value) > 200:
        value = value[:200] + "..."
    if value.isprintable():
        return value
    return repr(value)[1:-1]


@dataclass(frozen=True, kw_only=True)
class FileIdentity:
    """What must stay the same while a file is read: its inode, size and modification time."""

    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, fd: int) -> FileIdentity:
        info = os.fstat(fd)
        return cls(
            device=info.st_dev,
            inode=info.st_ino,
            size=info.st_size,
            mtime_ns=info.st_mtime_ns,
            ctime_ns=info.st_ctime_ns,
        )


def open_regular(path: os.PathLike[str] | str) -> int:
    """A read-only descriptor of `path`, refusing anything but a regular file before it can block.

    FIFOs, sockets and devices are refused (opening a FIFO would wait for a writer forever).

    Raises:
        InitcliError: missing, unreadable, a directory, or not a regular file.
    """
    try:
        # stat first so that devices are never opened; fstat after opening closes the race.
        if not stat.S_ISREG(os.stat(path).st_mode) and not stat.S_ISDIR(os.stat(path).st_mode):
            raise InitcliError(f"{path}: not a regular file (a pipe, socket or device)")
        fd = os.open(os.fspath(path), os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise InitcliError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InitcliError(f"{path}: is a directory, not a file") from None
    except OSError as error:
        if error.errno == errno.ENAMETOOLONG:
            raise InitcliError(f"{path}: file name too long") from None
        raise InitcliError(f"{path}: cannot open ({error.strerror})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "is a directory, not a file" if stat.S_ISDIR(mode) else "not a regular file (a pipe, socket or device)"
        raise InitcliError(f"{path}: {kind}")
    os.set_blocking(fd, True)
    return fd


def open_inside(path: os.PathLike[str] | str, directory: os.PathLike[str] | str) -> int:
    """`open_regular`, for a file that must lie inside `directory` once every symlink is resolved.

    A model's own files (checkpoint shards, its index, `variables/`, `keras_metadata.pb`) are
    read only from the model's directory: a symlink to `/dev/zero`, to a FIFO or to a file
    elsewhere (`../../home/user/.ssh/id_rsa`) is refused before it is opened.

    Raises:
        InitcliError: outside `directory`, missing, or not a regular file.
    """
    real = os.path.realpath(path)
    base = os.path.realpath(directory)
    if os.path.commonpath([real, base]) != base:
        raise InitcliError(
            f"{path}: a link to {shown(real)}, outside {shown(directory)} "
            "(initcli reads only files inside the model's directory)"
        )
    fd = open_regular(real)
    try:
        opened, named = os.fstat(fd), os.stat(real)
    except OSError as error:
        os.close(fd)
        raise InitcliError(f"{path}: cannot open ({error.strerror})") from None
    if (opened.st_dev, opened.st_ino) != (named.st_dev, named.st_ino):  # replaced between the check and the open
        os.close(fd)
        raise InitcliError(f"{path}: the file changed while it was being opened")
    return fd


def read_regular(
    path: os.PathLike[str] | str, limit: int, what: str, inside: os.PathLike[str] | str | None = None
) -> bytes:
    """The whole content of a regular file of at most `limit` bytes (inside the directory `inside`, if given).

    Raises:
        InitcliError: not a regular file, outside `inside`, unreadable, or larger than `limit`.
    """
    fd = open_regular(path) if inside is None else open_inside(path, inside)
    try:
        if os.fstat(fd).st_size > limit:
            raise InitcliError(f"{path}: {what} is larger than {limit} bytes, more than initcli reads")
        pieces = []
        total = 0
        while True:
            piece = os.read(fd, min(_READ_PIECE, limit + 1 - total))
            if not piece:
                break
            pieces.append(piece)
            total += len(piece)
            if total > limit:
                raise InitcliError(f"{path}: {what} is larger than {limit} bytes, more than initcli reads")
        return b"".join(pieces)
    except OSError as error:
        raise InitcliError(f"{path}: cannot read ({error.strerror})") from None
    finally:
        os.close(fd)


def pread_into(fd: int, target: np.ndarray, offset: int, label: str) -> None:
    """Fill `target` (a contiguous byte array) from `fd` at `offset`, in pieces Ctrl-C can stop.

    Raises:
        InitcliError: the file ends early (truncated while being read).
    """
    view = target.data.cast("B")
    done = 0
    while done < len(view):
        try:
            count = os.preadv(fd, [view[done : done + _READ_PIECE]], offset + done)
        except OSError as error:
            raise InitcliError(f"{label}: cannot read ({error.strerror})") from None
        if count == 0:
            raise InitcliError(f"{label}: the file ends early (truncated, or changed while being read)")
        done += count
