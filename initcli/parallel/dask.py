"""Independent tasks on a Dask cluster (the optional `dask` extra): `initcli inspect --scheduler ADDRESS`.

Owns: checking a scheduler address, connecting to it within a bounded time (one-line errors), and
mapping a module-level function over tasks on the cluster's workers, the results returned in task
order and the exceptions raised as a plain loop raises them (the first failing task's), the command's
remaining time bounding the wait (spent: the futures are cancelled and a one-line error raised).

Dask is imported only here, and only when a scheduler is asked for (tests/test_dask.py's import
guard). The function is pickled by reference: workers need the same initcli installed.

May import: `initcli.errors` only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import struct
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from initcli.errors import BadInputError, InitcliError, MissingDependencyError

Task = TypeVar("Task")
Result = TypeVar("Result")

LOCAL = "local"
"""`--scheduler local`: a LocalCluster of worker processes started for the command (and stopped after)."""
CONNECT_SECONDS = 5.0
"""The longest a connection to the scheduler may take (less when the command has less time left)."""
LOCAL_WORKERS = 4
"""`--scheduler local` starts one worker process per CPU this process may use, at most this many."""
_ADDRESS = re.compile(r"^(?:(?P<scheme>tcp|tls|inproc|ucx|ws|wss)://)?(?P<rest>[^\s/][^\s]*)$")
_HEADER = struct.Struct("<Q")
_MAX_HANDSHAKE = 1 << 20
_TCP = re.compile(r"^(?:tcp://)?(?P<host>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):(?P<port>\d{1,5})$")


def check_address(address: str) -> str:
    """`address` if it names a Dask scheduler (`tcp://host:8786`, `host:8786`, `tls://...`,
    `inproc://...`) or is `local`.

    Raises:
        BadInputError: anything else (a usage error, found before Dask is imported).
    """
    text = address.strip()
    if text == LOCAL:
        return text
    found = _ADDRESS.match(text)
    scheme = found["scheme"] if found else None
    if found is None or ((scheme in (None, "tcp")) and _TCP.match(text) is None):
        raise BadInputError(
            f"Invalid value for '--scheduler': {address!r} is not a Dask scheduler address "
            "(tcp://HOST:PORT, HOST:PORT, tls://..., or local)"
        )
    return text


@dataclass
class Cluster:
    """A connected Dask client, and the LocalCluster it was started with, if it was."""

    address: str
    client: Any
    local: Any = None

    def workers(self) -> int:
        """Workers the scheduler knows now (at least 1, so that work can be split)."""
        with contextlib.suppress(Exception):
            return max(1, len(self.client.scheduler_info().get("workers", {})))
        return 1

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()
        if self.local is not None:
            with contextlib.suppress(Exception):
                self.local.close()


def _quiet() -> None:
    """Dask logs connection attempts and worker events at INFO/WARNING on stderr: initcli speaks one line."""
    for name in ("distributed", "dask"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _probe(address: str, seconds: float) -> None:
    """A TCP address is tried before Dask is given it: a refused port is said at once (Dask retries until
    its timeout), and something that is not a Dask scheduler is said so (Dask would read its bytes as
    a message length: an HTTP server behind the port made it allocate 3 EiB).

    A Dask scheduler speaks first: on a connection it sends its handshake (distributed/comm/core.py,
    `Listener.on_connection` writes before it reads), framed by an 8-byte length (comm/tcp.py). The
    scheduler logs the probe's early close at INFO ("closed before handshake completed").
    """
    found = _TCP.match(address)
    if found is None:
        return
    host, port = found["host"].strip("[]"), int(found["port"])
    try:
        with socket.create_connection((host, port), timeout=seconds) as connection:
            header = b""
            while len(header) < _HEADER.size:
                piece = connection.recv(_HEADER.size - len(header))
                if not piece:
                    break
                header += piece
    except TimeoutError:
        raise InitcliError(f"cannot reach the Dask scheduler at {address}: no answer within {seconds:g} s") from None
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise InitcliError(f"cannot reach the Dask scheduler at {address}: {reason}") from None
    if len(header) < _HEADER.size or not 0 < _HEADER.unpack(header)[0] <= _MAX_HANDSHAKE:
        raise InitcliError(f"cannot reach the Dask scheduler at {address}: what answers there is not a Dask scheduler")


def _local_cluster(distributed: Any) -> Any:
    return distributed.LocalCluster(
        n_workers=max(1, min(LOCAL_WORKERS, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)),
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.CRITICAL,
    )


def _client(distributed: Any, address: str, seconds: float) -> Any:
    """`distributed.Client(address)`; if its constructor fails, the half-made client is closed here.

    Left to the garbage collector, its `__del__` closes it at exit: a 10 s wait and an "Exception
    ignored in Client.__del__" traceback on stderr (seen for tls:// without a TLS configuration,
    inproc:// and ucx://, whose addresses the TCP probe does not try).
    """
    client = distributed.Client.__new__(distributed.Client)
    try:
        client.__init__(address, timeout=seconds, set_as_default=False)
    except BaseException:
        with contextlib.suppress(Exception):
            client.close(timeout=0.5)
        client.status = "closed"  # what __del__ looks at: nothing left to close
        raise
    return client


@contextlib.contextmanager
def connected(address: str, *, remaining: float | None = None) -> Iterator[Cluster]:
    """A client of the scheduler at `address` (or of a LocalCluster for `local`), closed afterwards.

    The connection may take CONNECT_SECONDS, or `remaining` seconds if fewer are left.

    Raises:
        BadInputError: not a scheduler address.
        MissingDependencyError: Dask is not installed (the `dask` extra).
        InitcliError: the scheduler cannot be reached in that time.
    """
    address = check_address(address)
    seconds = max(0.1, min(CONNECT_SECONDS, remaining if remaining is not None else CONNECT_SECONDS))
    try:
        import distributed
    except ImportError:
        raise MissingDependencyError(
            "--scheduler runs the work on Dask, which is not installed: pip install 'initcli[dask]'"
        ) from None
    _quiet()
    local = None
    try:
        if address == LOCAL:
            with warnings.catch_warnings():  # "Port 8787 is already in use": initcli speaks one line
                warnings.simplefilter("ignore")
                local = _local_cluster(distributed)
            client = distributed.Client(local, timeout=seconds, set_as_default=False)
        else:
            started = time.monotonic()
            _probe(address, seconds)
            left = max(0.1, seconds - (time.monotonic() - started))  # the probe and the connection: `seconds` in all
            client = _client(distributed, address, left)
    except InitcliError:
        raise
    except Exception as error:  # noqa: BLE001 - Dask raises OSError, TimeoutError, ValueError, MemoryError...
        if local is not None:
            with contextlib.suppress(Exception):
                local.close()
        reason = " ".join(str(error).split()) or type(error).__name__
        raise InitcliError(f"cannot reach the Dask scheduler at {address}: {reason}") from None
    cluster = Cluster(address=address, client=client, local=local)
    try:
        yield cluster
    finally:
        cluster.close()


def map_in_order(
    cluster: Cluster,
    function: Callable[[Task], Result],
    tasks: Sequence[Task],
    *,
    remaining: float,
    timeout: float,
    what: str,
    done: Callable[[int, Result], None] | None = None,
) -> list[Result]:
    """`[function(task) for task in tasks]`, each task computed on one of the cluster's workers.

    `done(index, result)` is called as each task's result arrives (in any order). An exception from
    `function` is raised once every earlier task has finished (the tasks after it are cancelled):
    the one a plain loop would raise.

    Raises:
        InitcliError: not finished within `remaining` seconds ("`what` took longer than the `timeout`
            s timeout"): the futures are cancelled; or the cluster lost the work (a worker died).
    """
    from distributed import as_completed

    try:
        from distributed.client import FutureCancelledError
    except ImportError:  # older distributed raised the standard CancelledError
        from concurrent.futures import CancelledError as FutureCancelledError  # type: ignore[assignment]

    if not tasks:
        return []
    client = cluster.client
    futures = client.map(function, list(tasks), pure=False)
    position = {future.key: index for index, future in enumerate(futures)}
    results: dict[int, Result] = {}
    first_error: tuple[int, BaseException] | None = None
    try:
        with client.as_current():  # as_completed finds its client there (set_as_default=False elsewhere)
            completed = as_completed(futures, timeout=max(0.0, remaining))
        for future in completed:
            index = position[future.key]
            if first_error is None or index < first_error[0]:
                try:
                    value = future.result()
                except FutureCancelledError:
                    raise InitcliError(f"{what}: the Dask cluster cancelled the work (a worker left?)") from None
                except Exception as error:  # noqa: BLE001 - raised in task order below, as a loop raises it
                    if type(error).__name__ == "KilledWorker":
                        error = InitcliError(f"{what}: Dask workers died computing it ({' '.join(str(error).split())})")
                    first_error = (index, error)
                    client.cancel([later for later in futures[index + 1 :] if not later.done()])
                else:
                    results[index] = value
                    if done is not None:
                        done(index, value)
            if first_error is not None and all(earlier in results for earlier in range(first_error[0])):
                break
    except TimeoutError:
        client.cancel(futures)
        raise InitcliError(
            f"{what} took longer than the {timeout:g} s timeout (--timeout or INITCLI_TIMEOUT); "
            "the Dask tasks were cancelled"
        ) from None
    except BaseException:
        client.cancel(futures)
        raise
    if first_error is not None:
        raise first_error[1]
    return [results[index] for index in range(len(tasks))]
