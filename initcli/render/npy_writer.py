"""Write a `.npy` file safely while values stream by: never through a link, never half-written.

The values go to a new temporary file created exclusively next to the target (`.out.npy.<random>.partial`,
`O_CREAT|O_EXCL`, mode 0o644 minus the umask) with plain `write` calls (a memory map on a full disk kills
the process with SIGBUS), are fsynced, and the file is then renamed onto the target. Any failure or
interruption removes the temporary file; the target is either untouched or complete.

What is refused, in one line (`InitcliError`, exit 1):
- a target that exists, unless `force`;
- with or without `force`, a target that is not a regular file (directory, device node, FIFO, socket)
  and a symbolic link (dangling or not): writing through it would overwrite a file elsewhere, replacing
  it would silently change what the link pointed at; the user removes it or names the real file;
- a write the filesystem refuses (full disk, quota, file-size limit, I/O error, permissions), naming the
  path and the reason.
Without `force`, the file is put in place with `link()`, which fails if the target appeared meanwhile.
With `force`, the target is checked again just before the rename, which replaces a link rather than
following it.

`path == "-"` writes the complete `.npy` to standard output (not to a terminal; a broken pipe raises
`BrokenPipeError`, which the command line treats as a reader that stopped). bfloat16 values are
stored as float32, which holds every bfloat16 exactly and which numpy reads without ml_dtypes.
"""

from __future__ import annotations

import errno
import io
import math
import os
import secrets
import stat
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from initcli.errors import InitcliError
from initcli.safety.sanitize import clean_text

STDOUT = "-"
_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
)
# Linux writes at most 0x7ffff000 bytes per call; smaller pieces keep a KeyboardInterrupt responsive.
_WRITE_PIECE = 1 << 26
_CREATE_ATTEMPTS = 8


def storage_dtype(dtype: str | np.dtype[Any]) -> np.dtype[Any]:
    """The dtype the file holds: float32 for bfloat16 (exact), the dtype itself otherwise."""
    name = dtype if isinstance(dtype, str) else np.dtype(dtype).name
    return np.dtype(np.float32) if name == "bfloat16" else np.dtype(dtype)


def npy_header(shape: tuple[int, ...], dtype: np.dtype[Any]) -> bytes:
    """The `.npy` magic and header (version 1.0, or 2.0 when the header needs it) for a C-order array."""
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(shape)}
    buffer = io.BytesIO()
    try:
        np.lib.format.write_array_header_1_0(buffer, header)
    except ValueError:  # header longer than 65535 bytes
        buffer = io.BytesIO()
        np.lib.format.write_array_header_2_0(buffer, header)
    return buffer.getvalue()


def _reason(error: OSError) -> str:
    return error.strerror or os.strerror(error.errno or errno.EIO)


def _shown(path: Path | str) -> str:
    return clean_text(os.fsdecode(path))


def check_target(path: Path, *, force: bool) -> None:
    """Refuse a target that exists (without `force`), is a symbolic link or is not a regular file.

    Raises:
        InitcliError: one line naming the path and why.
    """
    try:
        status = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as error:
        raise InitcliError(f"Cannot write {_shown(path)}: {_reason(error)}") from None
    if stat.S_ISLNK(status.st_mode):
        raise InitcliError(
            f"{_shown(path)} is a symbolic link; refusing to write through or replace it "
            "(remove it, or save to the file it points to)."
        )
    for is_kind, kind in _KINDS:
        if is_kind(status.st_mode):
            raise InitcliError(f"{_shown(path)} is {kind}; refusing to replace it with a .npy file.")
    if not stat.S_ISREG(status.st_mode):
        raise InitcliError(f"{_shown(path)} is not a regular file; refusing to replace it.")
    if not force:
        raise InitcliError(f"{_shown(path)} already exists; pass --force to overwrite it.")


def _write_all(descriptor: int, data: memoryview) -> None:
    position = 0
    while position < len(data):
        written = os.write(descriptor, data[position : position + _WRITE_PIECE])
        if written <= 0:  # a regular file never returns 0 for a nonempty write; do not spin if one does
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        position += written


class NpyFileWriter:
    """A `.npy` file being written: `write` chunks in C order, then `commit`; `abort` removes it.

    Creating the writer checks the target and creates the temporary file; use it as a context manager
    (an exception inside the block aborts, a clean exit commits).
    """

    def __init__(self, path: Path | str, shape: tuple[int, ...], dtype: str | np.dtype[Any], *, force: bool) -> None:
        self.path = Path(path)
        self.shape = tuple(int(dim) for dim in shape)
        self.dtype = storage_dtype(dtype)
        self.force = force
        self.expected = math.prod(self.shape)
        self.written = 0
        check_target(self.path, force=force)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
        # The name is cut so that the temporary name stays within NAME_MAX (255 bytes) when the target's does.
        stem = os.fsdecode(os.fsencode(self.path.name)[:200])
        for attempt in range(_CREATE_ATTEMPTS):
            self.temporary = self.path.parent / f".{stem}.{secrets.token_hex(8)}.partial"
            try:
                self._descriptor: int | None = os.open(self.temporary, flags, 0o644)
                break
            except FileExistsError:
                if attempt + 1 == _CREATE_ATTEMPTS:  # not chance: someone is creating our names
                    raise InitcliError(f"Cannot write {_shown(self.path)}: temporary files keep appearing") from None
            except OSError as error:
                raise InitcliError(f"Cannot write {_shown(self.path)}: {_reason(error)}") from None
        self._write_bytes(memoryview(npy_header(self.shape, self.dtype)))

    def _write_bytes(self, data: memoryview) -> None:
        assert self._descriptor is not None, "write after commit or abort"
        try:
            _write_all(self._descriptor, data)
        except OSError as error:
            self.abort()
            raise InitcliError(f"Cannot write {_shown(self.path)}: {_reason(error)}") from None

    def write(self, chunk: np.ndarray) -> None:
        """Append the chunk's values (in C order), converted to the stored dtype."""
        values = np.ascontiguousarray(chunk, dtype=self.dtype).reshape(-1)
        if self.written + values.size > self.expected:
            self.abort()
            raise ValueError(f"more than {self.expected} values written to {self.path}")
        self._write_bytes(values.data.cast("B"))
        self.written += values.size

    def commit(self) -> None:
        """Fsync the file and move it onto the target; check that every value was written."""
        assert self._descriptor is not None, "commit after commit or abort"
        if self.written != self.expected:
            self.abort()
            raise ValueError(f"{self.written} values written to {self.path}, expected {self.expected}")
        try:
            os.fsync(self._descriptor)
            os.close(self._descriptor)
            self._descriptor = None
            self._move_into_place()
        except OSError as error:
            self.abort()
            raise InitcliError(f"Cannot write {_shown(self.path)}: {_reason(error)}") from None
        except BaseException:
            self.abort()
            raise
        _fsync_directory(self.path.parent)

    def _move_into_place(self) -> None:
        if self.force:
            check_target(self.path, force=True)  # again: something may have appeared since
            os.replace(self.temporary, self.path)
            return
        try:
            os.link(self.temporary, self.path)  # atomic: fails if the target now exists
        except FileExistsError:
            raise InitcliError(f"{_shown(self.path)} already exists; pass --force to overwrite it.") from None
        except OSError as error:
            if error.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.ENOSYS):
                raise
            # No hard links on this filesystem (FAT, some network mounts): check, then rename.
            check_target(self.path, force=False)
            os.replace(self.temporary, self.path)
            return
        os.unlink(self.temporary)

    def abort(self) -> None:
        """Close and remove the temporary file; the target is left as it was. Safe to call twice."""
        if self._descriptor is not None:
            try:
                os.close(self._descriptor)
            except OSError:
                pass
            self._descriptor = None
        try:
            os.unlink(self.temporary)
        except FileNotFoundError:
            pass
        except OSError:
            pass  # nothing more can be done; the error being reported matters more

    def __enter__(self) -> NpyFileWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: Any) -> None:
        if kind is None:
            self.commit()
        else:
            self.abort()


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable; best effort (some filesystems cannot fsync a directory)."""
    try:
        descriptor = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _stdout_stream() -> IO[bytes]:
    stream = getattr(sys.stdout, "buffer", None)
    if stream is None:
        raise InitcliError("Cannot write .npy to standard output: it takes no binary data.")
    if stream.isatty():
        raise InitcliError("refusing to write binary .npy to a terminal; redirect stdout")
    sys.stdout.flush()  # text already printed goes first
    return stream


def write_npy(
    path: Path | str,
    shape: tuple[int, ...],
    dtype: str | np.dtype[Any],
    chunks: Iterable[np.ndarray],
    *,
    force: bool,
) -> Iterator[np.ndarray]:
    """Write the chunks (in C order) to a `.npy` file as they stream by, and pass each one on unchanged.

    The target is checked and the temporary file created before this returns, so a refusal comes
    before any value is drawn. The file is put in place when the chunks are exhausted; if the consumer
    stops early or anything raises, the temporary file is removed. `path == "-"` writes to standard
    output (refused on a terminal; bytes already written cannot be taken back).

    Args:
        path: the target file, or "-" for standard output.
        shape, dtype: of the whole array (bfloat16 is stored as float32).
        chunks: the values in C order, in pieces of any size.
        force: replace an existing regular file.

    Raises:
        InitcliError: the target is refused or cannot be written (one line, naming path and reason).
    """
    if os.fspath(path) == STDOUT:
        return _stream_to_stdout(_stdout_stream(), tuple(shape), storage_dtype(dtype), chunks)
    writer = NpyFileWriter(path, shape, dtype, force=force)
    return _stream_to_file(writer, chunks)


def _stream_to_file(writer: NpyFileWriter, chunks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    try:
        for chunk in chunks:
            writer.write(chunk)
            yield chunk
        writer.commit()
    except BaseException:  # KeyboardInterrupt, GeneratorExit, an error in the chunk source: no debris
        writer.abort()
        raise


def _stream_to_stdout(
    stream: IO[bytes], shape: tuple[int, ...], dtype: np.dtype[Any], chunks: Iterable[np.ndarray]
) -> Iterator[np.ndarray]:
    expected = math.prod(shape)
    written = 0
    try:
        stream.write(npy_header(shape, dtype))
        for chunk in chunks:
            values = np.ascontiguousarray(chunk, dtype=dtype).reshape(-1)
            written += values.size
            if written > expected:
                raise ValueError(f"more than {expected} values written to standard output")
            stream.write(values.data.cast("B"))
            yield chunk
        if written != expected:
            raise ValueError(f"{written} values written to standard output, expected {expected}")
        stream.flush()
    except BrokenPipeError:
        raise  # the reader went away (`| head -c 100`): the command line stops quietly, as for text output
    except OSError as error:
        raise InitcliError(f"Cannot write .npy to standard output: {_reason(error)}") from None
