"""`initcli inspect` of a 7-billion-parameter bfloat16 checkpoint in Keras sharded weights, against the read limit.

    python benchmarks/bench_7b.py [--workdir DIR] [--storage auto|dense|sparse] [--shards 4] [--keep]

Generates (once per run, removed afterwards unless --keep) a synthetic decoder checkpoint as Keras 3
writes one with `model.save_weights("model.weights.json", max_shard_size=...)`: a JSON index
(`metadata.total_size`, `weight_map` of `/layers/<name>/vars` to shard names) and shards
`model_00000.weights.h5`, ... holding `layers/<name>/vars/<i>` datasets, bfloat16 stored as 2-byte
HDF5 opaque data with a `dtype` attribute and contiguous layout, the variables assigned to shards in
order and a new shard started when the next variable would overflow it (keras/src/saving/
saving_lib.py, `ShardedH5IOStore.__setitem__`); groups named as Keras names layers (`dense`,
`dense_1`, ...). The model: an embedding of 256000 x 4096 (1.05B parameters, 2.1 GB: over the 1 GiB
per-weight budget, so it is streamed) and 30 blocks of attention (4 x 4096x4096), gated MLP (4096x11008,
4096x11008, 11008x4096) and two layer norms: 7.12B parameters, 14.2 GB.

The values: `dense` storage writes every byte, tiling 64 MiB of seeded normal(0, 0.02) bfloat16
values (each weight from another offset into them); `sparse` allocates the datasets without writing
them (the file's holes read as zeros) and writes 1 MiB of values at the start of each weight, for a
disk short of 14 GB; `auto` (the default) is dense when the disk has 14 GB + 10 GB free. Either way
the reader reads every byte: the holes of a sparse file are read (as zeros), not skipped.

Measured, as whole processes, in this order in one run: the limit (a process that imports numpy,
reads every byte of every shard and makes one numpy pass: bfloat16 widened to float32 by a shift,
sum and sum of squares), `initcli inspect model.weights.json --format json`, the limit again. For
each: wall time and the largest peak RSS of its processes (os.wait4); for initcli also the largest
total proportional set size (PSS) of its process tree, sampled every 0.2 s (its processes share
pages). Targets (issue 25): peak <= 200 MB, inspect within 2x of the faster limit. Checks that
initcli's rows equal numpy on the smallest weight (mean, std, min, max) and that the embedding's
min and max are those of the values written. Prints the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PATTERN_BYTES = 64 << 20
SPARSE_WRITTEN = 1 << 20
TARGET_PEAK_MB = 200.0
TARGET_RATIO = 2.0

LIMIT_SCRIPT = """
import sys, numpy as np
total = squares = 0.0
buffer = bytearray(1 << 24)
view = memoryview(buffer)
for name in sys.argv[1:]:
    with open(name, "rb", buffering=0) as handle:
        while count := handle.readinto(buffer):
            raw = np.frombuffer(view[: count // 2 * 2], dtype=np.uint16)
            values = (raw.astype(np.uint32) << 16).view(np.float32)
            total += float(values.sum(dtype=np.float64))
            squares += float(np.dot(values, values))
"""


def variables(hidden: int, ff: int, blocks: int, vocab: int) -> list[tuple[str, tuple[int, ...]]]:
    """(Keras group name, shape) of every variable, in the order Keras saves them."""
    found: list[tuple[str, tuple[int, ...]]] = [("layers/embedding/vars/0", (vocab, hidden))]
    dense = norm = 0
    for _ in range(blocks):
        for shape in [(hidden, hidden)] * 4 + [(hidden, ff), (hidden, ff), (ff, hidden)]:
            found.append((f"layers/{'dense' if dense == 0 else f'dense_{dense}'}/vars/0", shape))
            dense += 1
        for _ in range(2):
            name = "layer_normalization" if norm == 0 else f"layer_normalization_{norm}"
            found += [(f"layers/{name}/vars/0", (hidden,)), (f"layers/{name}/vars/1", (hidden,))]
            norm += 1
    return found


def assign_shards(sizes: list[int], max_shard_size: float) -> list[int]:
    """Keras's rule: a variable goes to the current shard unless it would overflow it, then to a new one."""
    shard, current, assigned = 0, 0.0, []
    for size in sizes:
        current += size
        if current > max_shard_size:
            shard, current = shard + 1, float(size)
        assigned.append(shard)
    return assigned


def written_values() -> np.ndarray:
    """The 64 MiB of bfloat16 values every weight is tiled from."""
    import ml_dtypes

    return (np.random.default_rng(2025).standard_normal(PATTERN_BYTES // 2) * 0.02).astype(ml_dtypes.bfloat16)


def shard_size_for(sizes: list[int], shards: int) -> float:
    """The smallest `max_shard_size` (bytes) with which Keras's rule makes at most `shards` shards."""
    low, high = float(max(sizes)), float(sum(sizes))  # Keras refuses a variable larger than a shard
    for _ in range(60):
        middle = (low + high) / 2
        if assign_shards(sizes, middle)[-1] + 1 <= shards:
            high = middle
        else:
            low = middle
    return high


def generate(folder: Path, layout: list[tuple[str, tuple[int, ...]]], shards: int, dense: bool) -> list[Path]:
    import h5py
    import ml_dtypes

    bfloat16 = np.dtype(ml_dtypes.bfloat16)
    sizes = [math.prod(shape) * 2 for _, shape in layout]
    total = sum(sizes)
    max_shard = shard_size_for(sizes, shards)
    assigned = assign_shards(sizes, max_shard)
    names = [f"model_{index:05}.weights.h5" for index in range(assigned[-1] + 1)]
    weight_map: dict[str, list[str]] = {}
    for (name, _), shard in zip(layout, assigned, strict=True):
        files = weight_map.setdefault("/" + name.rsplit("/", 1)[0], [])
        if names[shard] not in files:
            files.append(names[shard])
    pattern = written_values()
    tiles = np.concatenate([pattern, pattern]).view(np.uint8)  # any 64 MiB window of it, without wrapping
    element_type = h5py.h5t.py_create(bfloat16)  # 2-byte opaque, as h5py stores Keras's bfloat16
    for shard_index, shard_name in enumerate(names):
        path = folder / shard_name
        placed: list[tuple[str, int]] = []
        with h5py.File(path, "w") as handle:
            handle.require_group("vars").attrs["name"] = "decoder"
            for index, ((name, shape), shard) in enumerate(zip(layout, assigned, strict=True)):
                if shard != shard_index:
                    continue
                group = handle.require_group(name.rsplit("/", 1)[0])
                group.attrs["name"] = name.split("/")[1]
                plist = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
                plist.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)  # storage reserved now (a hole until written)
                plist.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
                space = h5py.h5s.create_simple(shape)
                dataset = h5py.h5d.create(group.id, name.rsplit("/", 1)[1].encode(), element_type, space, dcpl=plist)
                h5py.Dataset(dataset).attrs["dtype"] = "bfloat16"
                placed.append((name, index))
        with h5py.File(path, "r") as handle:
            offsets = [(handle[name].id.get_offset(), sizes[index], index) for name, index in placed]
        fd = os.open(path, os.O_WRONLY)
        try:
            for offset, size, index in offsets:
                shift = (index * 4099 * 2) % PATTERN_BYTES
                end = size if dense else min(size, SPARSE_WRITTEN)
                for start in range(0, end, PATTERN_BYTES):
                    count = min(PATTERN_BYTES, end - start)
                    os.pwrite(fd, tiles[shift : shift + count], offset + start)
        finally:
            os.close(fd)
    index = {"metadata": {"total_size": float(total)}, "weight_map": weight_map}
    (folder / "model.weights.json").write_text(json.dumps(index, indent=4))
    return [folder / name for name in names]


def tree_pss(pid: int) -> int:
    """Total proportional set size (bytes) of `pid` and its descendants now."""
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            with open(f"/proc/{current}/smaps_rollup") as rollup:
                total += next(int(line.split()[1]) * 1024 for line in rollup if line.startswith("Pss:"))
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    pending += [int(child) for child in children.read().split()]
        except (OSError, StopIteration, ValueError):
            continue
    return total


def run_process(argv: list[str], stdout: object = subprocess.DEVNULL, sample: bool = False) -> dict[str, float]:
    """Wall seconds, largest peak RSS (MB) of the process and its descendants, and (sampled) peak tree PSS (MB)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as a user runs it: bytecode cached
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.PIPE, env=env)
    peak_pss = 0
    stop = threading.Event()

    def sampler() -> None:
        nonlocal peak_pss
        while not stop.wait(0.2):
            peak_pss = max(peak_pss, tree_pss(process.pid))

    thread = threading.Thread(target=sampler, daemon=True)
    if sample:
        thread.start()
    assert process.stderr is not None
    errors = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    stop.set()
    if sample:
        thread.join()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"command failed: {' '.join(argv)}\n{errors.decode(errors='replace')[-2000:]}")
    return {"seconds": wall, "peak_rss_mb": usage.ru_maxrss / 1024.0, "peak_pss_mb": peak_pss / 2**20}


def check_rows(
    report: dict, folder: Path, layout: list[tuple[str, tuple[int, ...]]], hidden: int, dense: bool
) -> list[str]:
    """Rows against numpy on the values in the files; returns what failed."""
    import h5py
    import ml_dtypes

    problems: list[str] = []
    rows = report["weights"]
    if len(rows) != len(layout):
        problems.append(f"{len(rows)} rows for {len(layout)} variables")
    if sum(math.prod(row["shape"]) for row in rows) != sum(math.prod(shape) for _, shape in layout):
        problems.append("the rows' parameters are not the checkpoint's")
    for row in rows:
        if row["sample"]["count"] != math.prod(row["shape"]):
            problems.append(f"{row['path']}: count {row['sample']['count']}")
    square = (hidden, hidden)
    location = next(name for name, shape in layout if shape == square)
    row = next(row for row in rows if row["path"].split("/")[0] == location.split("/")[1])
    index = json.loads((folder / "model.weights.json").read_text())
    shard = index["weight_map"]["/" + location.rsplit("/", 1)[0]][0]
    with h5py.File(folder / shard, "r") as handle:
        values = handle[location][()].view(ml_dtypes.bfloat16).astype(np.float64)
    expected = {"mean": values.mean(), "std": values.std(), "min": values.min(), "max": values.max()}
    for key, value in expected.items():
        if not math.isclose(row["sample"][key], value, rel_tol=1e-9, abs_tol=1e-15):
            problems.append(f"{row['path']}: {key} {row['sample'][key]} != numpy {value}")
    if (
        dense and math.prod(layout[0][1]) * 2 >= PATTERN_BYTES
    ):  # the embedding (streamed: over the budget) holds every written value, many times over
        embedding = next(row for row in rows if row["path"].split("/")[0] == "embedding")["sample"]
        pattern = written_values().astype(np.float64)
        if (embedding["min"], embedding["max"]) != (pattern.min(), pattern.max()):
            problems.append(f"embedding min/max {embedding['min']}, {embedding['max']} are not the values written")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/initcli-bench-7b"))
    parser.add_argument("--storage", choices=["auto", "dense", "sparse"], default="auto")
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--blocks", type=int, default=30, help="decoder blocks (30: 7.12B parameters)")
    parser.add_argument("--hidden", type=int, default=4096)
    parser.add_argument("--ff", type=int, default=11008)
    parser.add_argument("--vocab", type=int, default=256000)
    parser.add_argument("--keep", action="store_true", help="keep the generated checkpoint")
    args = parser.parse_args()
    layout = variables(args.hidden, args.ff, args.blocks, args.vocab)
    parameters = sum(math.prod(shape) for _, shape in layout)
    size = parameters * 2
    args.workdir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(args.workdir).free
    dense = args.storage == "dense" or (args.storage == "auto" and free >= size + (10 << 30))
    print(
        f"{parameters / 1e9:.2f}B bfloat16 parameters, {size / 1e9:.1f} GB; disk free {free / 1e9:.0f} GB: "
        f"{'dense (every byte written)' if dense else 'sparse (holes read as zeros)'}"
    )
    folder = args.workdir / "checkpoint"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir()
    try:
        started = time.perf_counter()
        # In a forked child: the values written must not count in the measured processes' peaks (a
        # child's peak RSS starts from its parent's, which exec keeps).
        child = os.fork()
        if child == 0:
            code = 1
            try:
                generate(folder, layout, args.shards, dense)
                code = 0
            finally:
                os._exit(code)
        if os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]) != 0:
            raise SystemExit("generating the checkpoint failed")
        shards = sorted(folder.glob("model_*.weights.h5"))
        on_disk = sum(os.stat(shard).st_blocks * 512 for shard in shards)
        print(
            f"generated {len(shards)} shards in {time.perf_counter() - started:.0f} s "
            f"({sum(s.stat().st_size for s in shards) / 1e9:.1f} GB, {on_disk / 1e9:.1f} GB on disk)"
        )
        load_before = os.getloadavg()
        index = folder / "model.weights.json"
        limit_command = [sys.executable, "-c", LIMIT_SCRIPT, *map(str, shards)]
        first_limit = run_process(limit_command)
        output = folder / "report.json"
        with open(output, "wb") as sink:
            inspect = run_process(
                [sys.executable, "-m", "initcli", "inspect", str(index), "--format", "json", "--timeout", "7200"],
                stdout=sink,
                sample=True,
            )
        second_limit = run_process(limit_command)
        load_after = os.getloadavg()
        problems = check_rows(json.loads(output.read_text()), folder, layout, args.hidden, dense)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    limit = min(first_limit["seconds"], second_limit["seconds"])
    ratio = inspect["seconds"] / limit
    peak = max(inspect["peak_rss_mb"], inspect["peak_pss_mb"])
    print(
        f"load average before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
        f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}"
    )
    print(
        f"limit (read + one numpy pass): {first_limit['seconds']:.1f} s, then {second_limit['seconds']:.1f} s "
        f"(peak {first_limit['peak_rss_mb']:.0f} MB)"
    )
    print(
        f"initcli inspect: {inspect['seconds']:.1f} s = {ratio:.2f}x the faster limit "
        f"(target {TARGET_RATIO:g}x: {'met' if ratio <= TARGET_RATIO else 'NOT met'})"
    )
    print(
        f"initcli peak: largest process {inspect['peak_rss_mb']:.0f} MB RSS, "
        f"process tree {inspect['peak_pss_mb']:.0f} MB PSS (target {TARGET_PEAK_MB:g} MB: "
        f"{'met' if peak <= TARGET_PEAK_MB else 'NOT met'})"
    )
    print("rows against numpy: " + ("equal" if not problems else "; ".join(problems)))
    if problems:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
