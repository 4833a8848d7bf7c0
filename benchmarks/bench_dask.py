"""What `inspect --scheduler` is worth: a multi-shard checkpoint inspected on a Dask LocalCluster, against one process.

    python benchmarks/bench_dask.py [--repeat 3] [--layers 8] [--units 4096] [--shard-mb 150] [--workers 2 4]

Builds a Keras Sequential of `--layers` Dense(`--units`) layers (glorot_uniform kernels, so each row
is compared with a theory) and saves it with `save_weights("m.weights.json", max_shard_size=...)`
into shards of about `--shard-mb` MB, with its `to_json()` config. Then times whole processes of
`initcli inspect m.weights.json --config m.json --format json`, interleaved, `--repeat` times:

- one process (`INITCLI_WORKERS=1`), the reference;
- the default local run (forked processes, one per CPU: `initcli.parallel.fanout`);
- `--scheduler tcp://...` of a standing LocalCluster of N worker processes (one thread each) for
  each N of `--workers`, started once before the runs (its start-up is printed apart: a real
  cluster is already running when a user inspects).

Every run's JSON must equal the one-process run's byte for byte (else the benchmark stops). Then,
in this process, the measuring alone: `inspection.inspect_records` in one process against
`remote.measure_on_cluster` on each cluster (the model opened once, the connection not timed), the
rows compared field for field. It prints best and median wall times, the speed-up of each against
one process (best over best), the CPUs and the load average: on a shared machine other jobs slow
every variant, not always alike, so compare within one run. On 2 CPUs a cluster of 4 workers
cannot beat one of 2.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def build(folder: Path, layers: int, units: int, shard_mb: float) -> tuple[Path, Path]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((units,)), *[keras.layers.Dense(units) for _ in range(layers)]])
    index = folder / "m.weights.json"
    model.save_weights(str(index), max_shard_size=shard_mb / 1024)
    config = folder / "m.json"
    config.write_text(model.to_json())
    return index, config


def run(argv: list[str], extra: dict[str, str]) -> tuple[float, bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **extra}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "initcli", *argv], capture_output=True, env=env, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): initcli {' '.join(argv)}\n{done.stderr.decode()}")
    return elapsed, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--units", type=int, default=4096)
    parser.add_argument("--shard-mb", type=float, default=150.0)
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 4])
    args = parser.parse_args()
    import logging

    import distributed

    logging.getLogger("distributed").setLevel(logging.CRITICAL)

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        index, config = build(folder, args.layers, args.units, args.shard_mb)
        shards = sorted(folder.glob("m_*.weights.h5"))
        size = sum(shard.stat().st_size for shard in shards)
        print(
            f"{len(os.sched_getaffinity(0))} CPUs; load average {os.getloadavg()[0]:.2f}; "
            f"{args.layers} x Dense({args.units}): {len(shards)} shards, {size / 1e6:.0f} MB"
        )
        command = ["inspect", str(index), "--config", str(config), "--format", "json"]
        variants: dict[str, tuple[list[str], dict[str, str]]] = {
            "one process": (command, {"INITCLI_WORKERS": "1"}),
            "local fan-out": (command, {}),
        }
        clusters = []
        try:
            for workers in args.workers:
                started = time.perf_counter()
                with warnings.catch_warnings():  # "Port 8787 is already in use"
                    warnings.simplefilter("ignore")
                    cluster = distributed.LocalCluster(
                        n_workers=workers,
                        threads_per_worker=1,
                        processes=True,
                        dashboard_address=None,
                        silence_logs=50,
                        env={"PYTHONPATH": str(ROOT)},
                    )
                clusters.append(cluster)
                print(f"LocalCluster of {workers} worker processes started in {time.perf_counter() - started:.1f} s")
                variants[f"dask {workers} workers"] = ([*command, "--scheduler", cluster.scheduler_address], {})
            times: dict[str, list[float]] = {name: [] for name in variants}
            rows = 0
            reference = None
            for _ in range(args.repeat):
                for name, (argv, extra) in variants.items():
                    elapsed, output = run(argv, extra)
                    if reference is None:
                        reference = output
                        rows = len(json.loads(output)["weights"])
                    elif output != reference:
                        raise SystemExit(f"{name}: the report differs from one process's")
                    times[name].append(elapsed)
            inner = measure_in_process(index, config, clusters, args.repeat)
        finally:
            for cluster in clusters:
                cluster.close()
        print(f"{rows} rows, every run's JSON equal to one process's; load average now {os.getloadavg()[0]:.2f}")
        print("whole processes (`initcli inspect ...`):")
        table(times, "one process")
        print("the measuring alone, in this process (the model opened once; the connection not timed):")
        table(inner, "one process")


def table(times: dict[str, list[float]], reference: str) -> None:
    best = min(times[reference])
    for name, measured in times.items():
        print(
            f"  {name:16s} best {min(measured):6.2f} s  median {statistics.median(measured):6.2f} s  "
            f"speed-up {best / min(measured):4.2f}x"
        )


def measure_in_process(index: Path, config: Path, clusters: list, repeat: int) -> dict[str, list[float]]:
    """`inspection.inspect_records` in one process against `remote.measure_on_cluster` on each cluster,
    the rows compared field for field."""
    sys.path.insert(0, str(ROOT))
    from initcli.analysis import remote
    from initcli.analysis.inspection import inspect_records
    from initcli.parallel.dask import connected
    from initcli.readers import open_model
    from initcli.readers.open import read_model_json
    from initcli.safety import budget

    times: dict[str, list[float]] = {"one process": []}
    model_config = read_model_json(config)
    with budget.scope(budget.Budget(timeout=3600)):
        saved = open_model(index, config=model_config)
        try:
            records = list(saved.records())
            alpha = 0.05 / len(records)
            for _ in range(repeat):
                started = time.perf_counter()
                rows = [row.to_dict() for row in inspect_records(records, (), alpha, workers=1)]
                times["one process"].append(time.perf_counter() - started)
                for cluster in clusters:
                    with connected(cluster.scheduler_address) as client:
                        started = time.perf_counter()
                        measured = remote.measure_on_cluster(client, saved, str(index), model_config, records, alpha)
                        elapsed = time.perf_counter() - started
                    if [row.to_dict() for row in measured] != rows:
                        raise SystemExit("the rows measured on the cluster differ from one process's")
                    times.setdefault(f"dask {len(cluster.workers)} workers", []).append(elapsed)
        finally:
            saved.close()
    return times


if __name__ == "__main__":
    main()
