"""`initcli sample` against the Keras one-liner a user would run, as whole processes.

    python benchmarks/bench_sample.py [--repeat 3]

For each shape and initializer it runs both commands `--repeat` times, takes the best wall time
and the largest peak RSS (from os.wait4's rusage), and prints the ratios measured in this run.
Then it times in-process generation: initcli's numpy engine against TensorFlow's own stateless
kernels for the same draw, in float32 and (normal and truncated normal) float64, each the best of
max(repeat, 7) runs alternating with TensorFlow's, and prints the ratio against the issue's target
(float32 normals at most 1.2x TensorFlow, float64 at most 2x, at 3x3x512x512 and 4096x4096) with
met / NOT MET. initcli's draws run in a second process that never imports TensorFlow, as
`initcli sample` does not: initcli spreads a large draw over forked processes, which it never
does once TensorFlow (whose thread pools make a fork unsafe) is loaded. That process times each
draw itself and reports the time on a pipe; every large draw forks its own children, so each time
includes the fork. The load average is printed: other processes on the machine slow both sides,
not always alike. Needs the tensorflow extra.

    python benchmarks/bench_sample.py --in-process-only [--dtype float64] [--shape 3x3x256x256 ...]

The targets are judged at 3x3x512x512 and 4096x4096; other shapes print their ratios.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

# This checkout's initcli is measured, whatever is installed (also on PYTHONPATH for the processes run).
ROOT = Path(__file__).resolve().parent.parent

CASES = [("3x3x64x128", (3, 3, 64, 128)), ("3x3x512x512", (3, 3, 512, 512)), ("4096x4096", (4096, 4096))]
INITIALIZERS = ["glorot_uniform", "he_normal"]
KERAS_ONE_LINER = (
    "import numpy as np, keras; "
    "w = keras.initializers.get({{'class_name': {init!r}, 'config': {{'seed': 0}}}})({shape!r}); "
    "v = np.asarray(w, dtype=np.float64); print(v.mean(), v.var())"
)


def run_process(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one whole process."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"command failed: {' '.join(argv)}")
    return elapsed, usage.ru_maxrss / 1024.0


def best_of(argv: list[str], repeat: int) -> tuple[float, float]:
    runs = [run_process(argv) for _ in range(repeat)]
    return min(r[0] for r in runs), max(r[1] for r in runs)


def processes(repeat: int, cases: list[tuple[str, tuple[int, ...]]]) -> None:
    print(
        f"{'case':32} {'initcli s':>9} {'keras s':>8} {'speed-up':>8} "
        f"{'initcli MB':>10} {'keras MB':>9} {'mem ratio':>9}"
    )
    for label, shape in cases:
        for init in INITIALIZERS:
            ours = best_of(
                [
                    sys.executable,
                    "-m",
                    "initcli",
                    "sample",
                    "--init",
                    init,
                    "--shape",
                    label,
                    "--seed",
                    "0",
                    "--format",
                    "json",
                ],
                repeat,
            )
            theirs = best_of([sys.executable, "-c", KERAS_ONE_LINER.format(init=init, shape=shape)], repeat)
            print(
                f"{init + ' ' + label:32} {ours[0]:9.2f} {theirs[0]:8.2f} {theirs[0] / ours[0]:7.1f}x "
                f"{ours[1]:10.0f} {theirs[1]:9.0f} {theirs[1] / ours[1]:8.1f}x"
            )


# In-process targets (issue #13): initcli's time at most this many times TensorFlow's, for these
# kinds, dtypes and shapes; other rows are printed for information.
TARGETS = {
    ("normal", "float32"): 1.2,
    ("truncated_normal", "float32"): 1.2,
    ("normal", "float64"): 2.0,
    ("truncated_normal", "float64"): 2.0,
}
TARGET_SHAPES = ("3x3x512x512", "4096x4096")


def interleaved_best(first, second, repeat: int) -> tuple[float, float]:
    """Best (minimum) time of each of two functions, run alternately `repeat` times each.

    A function that returns a number reports its own time in seconds; otherwise its wall time
    is measured here. Alternating spreads any load from other processes over both, and the
    minimum is the run least disturbed by it.
    """
    first_times, second_times = [], []
    for _ in range(repeat):
        for function, times in ((first, first_times), (second, second_times)):
            started = time.perf_counter()
            reported = function()
            elapsed = time.perf_counter() - started
            times.append(reported if isinstance(reported, float) else elapsed)
    return min(first_times), min(second_times)


def serve() -> None:
    """Time initcli's draws on request, in a process without TensorFlow.

    Reads `kind dtype size` lines on stdin; for each, draws elements [0, size) of seed (0, 0)
    and writes the seconds it took on stdout.
    """
    from initcli.rng import stateless
    from initcli.rng.philox import PhiloxStream

    stream = PhiloxStream.from_seed(0, 0)
    for line in sys.stdin:
        kind, dtype, size = line.split()
        started = time.perf_counter()
        getattr(stateless, kind)(stream, dtype, 0, int(size))
        print(time.perf_counter() - started, flush=True)


class InitcliDraws:
    """The `serve` process: `time(kind, dtype, size)` returns the seconds one draw took there."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )

    def time(self, kind: str, dtype: str, size: int) -> float:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{kind} {dtype} {size}\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            raise SystemExit("the initcli draw process failed")
        return float(answer)

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait()


def in_process(repeat: int, dtypes: list[str], cases: list[tuple[str, tuple[int, ...]]]) -> list[bool]:
    """Print initcli's in-process draw against TensorFlow's kernel; return met/not met per targeted row."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    ours = InitcliDraws()  # started before TensorFlow is imported here
    import tensorflow as tf

    # glorot_uniform draws `uniform`, he_normal (like every variance-scaling normal) `truncated_normal`,
    # RandomNormal `normal`.
    kinds = [
        ("uniform", tf.random.stateless_uniform),
        ("normal", tf.random.stateless_normal),
        ("truncated_normal", tf.random.stateless_truncated_normal),
    ]
    verdicts = []
    # float64: normal and truncated normal only (uniform needs no transcendental functions).
    for dtype in dtypes:
        dtype_kinds = kinds if dtype == "float32" else kinds[1:]
        print(
            f"\n{'in-process draw (' + dtype + ')':32} {'initcli s':>9} {'tf s':>8} {'ratio':>7} {'target':>7} {'':8}"
        )
        for label, shape in cases:
            size = 1
            for d in shape:
                size *= d
            for kind, theirs in dtype_kinds:
                ours_time, tf_time = interleaved_best(
                    lambda: ours.time(kind, dtype, size),  # noqa: B023
                    lambda: theirs(shape, seed=(0, 0), dtype=getattr(tf, dtype)).numpy(),  # noqa: B023
                    repeat,
                )
                ratio = ours_time / tf_time
                target = TARGETS.get((kind, dtype)) if label in TARGET_SHAPES else None
                verdict = ""
                if target is not None:
                    verdicts.append(ratio <= target)
                    verdict = "met" if ratio <= target else "NOT MET"
                target_text = f"{target:6.1f}x" if target is not None else f"{'-':>7}"
                print(f"{kind + ' ' + label:32} {ours_time:9.4f} {tf_time:8.4f} {ratio:6.2f}x {target_text} {verdict}")
    ours.close()
    return verdicts


def load_average() -> str:
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--in-process-only", action="store_true", help="skip the whole-process comparison")
    parser.add_argument("--dtype", action="append", choices=["float32", "float64"], help="in-process dtypes")
    parser.add_argument(
        "--shape", action="append", help="shapes to run instead of the default three, e.g. 3x3x256x256 (repeatable)"
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    print(f"CPUs available: {len(os.sched_getaffinity(0))}; load average before: {load_average()}")
    cases = CASES
    if args.shape:
        cases = [(label, tuple(int(d) for d in label.split("x"))) for label in args.shape]
    if not args.in_process_only:
        processes(args.repeat, cases)
    verdicts = in_process(max(args.repeat, 7), args.dtype or ["float32", "float64"], cases)
    judged = f"targets met: {sum(verdicts)} of {len(verdicts)}" if verdicts else "no targeted shape in this run"
    print(f"\nload average after: {load_average()}; {judged}")


if __name__ == "__main__":
    main()
