"""Seeded fuzzing of the Keras 3 sharded-weights index and of KerasHub preset directories (issue 24).

The good inputs are written here, without Keras: two shards by h5py in the layout Keras's
`ShardedH5IOStore` writes (`layers/<layer>/vars/<i>`, a layer's `vars` split over both shards), the
index `{"metadata": {"total_size": ...}, "weight_map": {"/layers/dense/vars": [...]}}`, and a preset's
`config.json` / `metadata.json` as KerasHub's `save_to_preset` writes them. Each case then mutates
them by structure (wrong types, deep or huge nesting, huge shard counts, names with `..`, absolute
paths, NUL/ESC/bidi/lone surrogates, duplicate keys, a shard listed twice, a shard that is another
index, a symlink out of the folder, a FIFO, a directory, a missing shard) or as bytes (the mutator
of test_hostile_fuzz), and reads the model whole.

Every case must give the model's records or one InitcliError of one line (never another exception),
within the attack bound of test_hostile_budget (10 s of CPU, the worker's included), under 1 GB of
traced Python/numpy memory, opening no file outside its folder (an audit hook sees every `open`),
and a sample of cases goes through the CLI (`inspect`, table and JSON) whose output must hold no raw
control character. The whole file takes some 10 s of CPU.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from initcli.cli import cli
from initcli.errors import InitcliError
from initcli.readers import open_model
from initcli.safety.budget import Budget, scope
from tests.test_hostile_budget import _RAW_CONTROLS, ATTACK_SECONDS
from tests.test_hostile_fuzz import PEAK_BYTES, _one_line, _read_whole, mutate

# CI runs every test, slow ones too: the short runs are the test; INITCLI_FUZZ_SCALE=20 runs 20x the
# cases of another seed (as for this file's measurements).
SCALE = max(1, int(os.environ.get("INITCLI_FUZZ_SCALE", "1")))
HANG_SECONDS = 60  # a case still running after this has hung (its own bound is ATTACK_SECONDS of CPU)
KERNEL = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
BIAS = np.full(4, 0.5, np.float32)
KERNEL_1 = np.linspace(-1, 1, 8, dtype=np.float32).reshape(4, 2)
BIAS_1 = np.array([-0.25, 2.0], np.float32)
SHARDS = ["m_00000.weights.h5", "m_00001.weights.h5"]
INDEX = {
    "metadata": {"total_size": 96},
    "weight_map": {"/layers/dense/vars": SHARDS, "/layers/dense_1/vars": [SHARDS[1]]},
}
HUB_CONFIG = {
    "module": "keras_hub.src.models.bert.bert_backbone",
    "class_name": "BertBackbone",
    "config": {"name": "bert_backbone", "vocabulary_size": 5, "num_layers": 1, "hidden_dim": 4},
    "registered_name": "keras_hub>BertBackbone",
}
HUB_METADATA = {"keras_version": "3.15.1", "keras_hub_version": "0.21.0", "parameter_count": 40}
PAYLOAD = "\x1b]0;pwned\x07\x1b[6n\x9b\u202e"

# ---------------------------------------------------------------------------------------------
# What a case may do: the audit hook, the CPU and memory bound, the hang guard.

_opened: list[str] | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _opened is not None and event == "open" and isinstance(args[0], str | bytes):
        _opened.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)  # records only while a case runs (`_opened` is a list)


class _Hung(BaseException):
    pass


def _hang(signum: int, frame: object) -> None:
    raise _Hung


def _cpu() -> float:
    own = time.process_time()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own + children.ru_utime + children.ru_stime


def _opened_outside(root: Path, folder: Path, opened: list[str]) -> list[str]:
    """Files opened under `root` (the test's directory) but not inside the model's `folder`."""
    inside, under = os.path.realpath(folder), os.path.realpath(root)
    found = []
    for name in opened:
        real = os.path.realpath(name)
        if os.path.commonpath([real, under]) == under and os.path.commonpath([real, inside]) != inside:
            found.append(name)
    return found


def attack(root: Path, folder: Path, path: Path, case: str) -> None:
    """Read `path` whole: records or one one-line InitcliError, bounded in CPU and memory, nothing
    opened outside `folder` (tracemalloc must be tracing)."""
    global _opened
    tracemalloc.reset_peak()
    started = _cpu()
    _opened = []
    previous = signal.signal(signal.SIGALRM, _hang)
    signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
    try:
        with scope(Budget(timeout=10)):
            _read_whole(path)
    except InitcliError as error:
        _one_line(error)
    except _Hung:  # pragma: no cover - the failure being looked for
        pytest.fail(f"{case}: hung for {HANG_SECONDS} s")
    except Exception as error:  # pragma: no cover - the failure being looked for
        pytest.fail(f"{case}: {type(error).__name__}: {error}")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        opened, _opened = _opened, None
    spent = _cpu() - started
    assert spent < ATTACK_SECONDS, f"{case}: {spent:.1f} s of CPU"
    peak = tracemalloc.get_traced_memory()[1]
    assert peak < PEAK_BYTES, f"{case}: {peak:,} bytes traced"
    outside = _opened_outside(root, folder, opened)
    assert not outside, f"{case}: opened {outside}"


def _random_cases(
    root: Path, folder: Path, path: Path, mutate_case: Callable[[Any], str], count: int, seed: int, rng: Any
) -> None:
    """`count` random cases: each mutates the model (`mutate_case(rng)` says how) and is attacked;
    every tenth also goes through the CLI."""
    for index in range(count):
        case = f"case {index} (seed {seed}, {mutate_case(rng)})"
        attack(root, folder, path, case)
        if index % 10 == 0:
            cli_output_is_safe(path, rng.choice(["table", "json"]), case)


def cli_output_is_safe(path: Path, output_format: str, case: str) -> None:
    """`initcli inspect PATH`: exit 0, or 1/2 with one `Error:` line; no internal error, nothing raw."""
    result = CliRunner().invoke(cli, ["inspect", str(path), "--format", output_format])
    output = result.stdout + result.stderr
    assert result.exit_code in (0, 1, 2), f"{case}: exit {result.exit_code}: {output[-500:]}"
    assert "internal error" not in output and "Traceback" not in output, f"{case}: {output[-500:]}"
    if result.exit_code:
        assert result.stderr.rstrip("\n").rpartition("\n")[2].startswith("Error: "), f"{case}: {result.stderr}"
        if result.exit_code == 1:
            assert result.stderr.count("\n") == 1, f"{case}: {result.stderr!r}"
    raw = [control for control in _RAW_CONTROLS if control in output]
    assert not raw, f"{case}: {raw} in {output[-500:]!r}"


# ---------------------------------------------------------------------------------------------
# The good files, and the odd things a folder may hold beside them.


def _write_shards(folder: Path) -> None:
    with h5py.File(folder / SHARDS[0], "w") as handle:
        group = handle.create_group("layers/dense/vars")
        group.attrs["name"] = "dense"
        group.create_dataset("0", data=KERNEL)
    with h5py.File(folder / SHARDS[1], "w") as handle:
        handle.create_group("layers/dense/vars").create_dataset("1", data=BIAS)
        group = handle.create_group("layers/dense_1/vars")
        group.attrs["name"] = "dense_1"
        group.create_dataset("0", data=KERNEL_1)
        group.create_dataset("1", data=BIAS_1)


def _variant_shards(folder: Path) -> dict[str, bytes]:
    """Shards that disagree with the good ones: a dataset both hold, a group that is a dataset
    elsewhere, an attribute of another value, a deep tree, a shard of no layers."""
    variants: dict[str, Callable[[h5py.File], None]] = {
        "both": lambda h: h.create_dataset("layers/dense/vars/0", data=KERNEL),
        "kind": lambda h: h.create_dataset("layers/dense/vars", data=BIAS),
        "attr": lambda h: h.create_group("layers/dense/vars").attrs.__setitem__("name", "other"),
        "attr_array": lambda h: h.create_group("layers/dense/vars").attrs.__setitem__("name", np.arange(3)),
        "deep": lambda h: h.create_group("layers/" + "/".join(f"g{i}" for i in range(70))),
        "empty": lambda h: None,
        "escape": lambda h: h.create_dataset(f"layers/{PAYLOAD}/vars/0", data=BIAS),
        "string": lambda h: h.create_dataset("layers/dense_2/vars/0", data=np.array([b"abc"] * 4)),
        "scalar": lambda h: h.create_dataset("layers/dense_2/vars/0", data=np.float64(2.5)),
        "huge_declared": lambda h: h.create_dataset(
            "layers/dense_2/vars/0", shape=(1 << 20, 1 << 20), dtype="f4", chunks=(64, 64)
        ),
    }
    out = {}
    for name, write in variants.items():
        path = folder / f"variant-{name}.h5"
        with h5py.File(path, "w") as handle:
            write(handle)
        out[name] = path.read_bytes()
        path.unlink()
    return out


def _oddities(folder: Path, outside: Path) -> None:
    """Files a hostile folder holds for an index to name: links out, a FIFO, a directory, a loop,
    another index, a link back to the index."""
    (folder / "link-out.weights.h5").symlink_to(outside / "secret.weights.h5")
    (folder / "dotdot-link.weights.h5").symlink_to(Path("..") / outside.name / "secret.weights.h5")
    (folder / "dev-zero.weights.h5").symlink_to("/dev/zero")
    (folder / "loop.weights.h5").symlink_to("loop.weights.h5")
    (folder / "self.weights.h5").symlink_to("m.weights.json")
    (folder / "index.weights.h5").write_text(json.dumps(INDEX))
    (folder / "folder.weights.h5").mkdir()
    os.mkfifo(folder / "pipe.weights.h5")


def _outside(root: Path) -> Path:
    outside = root / "outside"
    if not outside.exists():
        outside.mkdir()
        _write_shards(outside)
        shutil.copy(outside / SHARDS[0], outside / "secret.weights.h5")
        (outside / "secret.json").write_text(json.dumps(HUB_CONFIG))
    return outside


# ---------------------------------------------------------------------------------------------
# Structured mutations of the index.

_ODD_NAMES: list[object] = [
    "../m_00000.weights.h5",
    "../outside/secret.weights.h5",
    "/etc/passwd",
    "/tmp/m_00000.weights.h5",
    "sub/m_00000.weights.h5",
    "..\\m_00000.weights.h5",
    ".hidden.weights.h5",
    "..weights.h5",
    "m\x00.weights.h5",
    f"{PAYLOAD}.weights.h5",
    "\ud800.weights.h5",
    "\udc80.weights.h5",
    "x" * 300 + ".weights.h5",
    "missing.weights.h5",
    "m.weights.json",
    "link-out.weights.h5",
    "dotdot-link.weights.h5",
    "dev-zero.weights.h5",
    "loop.weights.h5",
    "self.weights.h5",
    "index.weights.h5",
    "folder.weights.h5",
    "pipe.weights.h5",
    SHARDS[0],
    SHARDS[1],
    "",
    7,
    None,
    True,
    1.5,
    [],
    {},
    {"a": SHARDS[0]},
    [[SHARDS[0]]],
]
_ODD_KEYS = ["layers/dense/vars", "", "/", f"/{PAYLOAD}", "/\x00", "/" + "k" * 5000, "\ud800", "/layers/../x"]


def _nested(depth: int, leaf: object) -> str:
    """A placeholder that `_dumps` replaces by `leaf` inside `depth` lists (json.dumps would recurse)."""
    return f"@nested:{depth}:{json.dumps(leaf)}@"


def _dumps(document: object) -> str:
    text = json.dumps(document, ensure_ascii=True)
    while (start := text.find('"@nested:')) >= 0:
        end = text.index('@"', start) + 2
        _, depth, leaf = json.loads(text[start:end])[1:-1].split(":", 2)
        text = text[:start] + "[" * int(depth) + leaf + "]" * int(depth) + text[end:]
    return text.replace('"@many@"', "[" + "0," * 1_100_000 + "0]")  # over the JSON element limit


def _structured_index(rng: Any) -> bytes:
    index: Any = json.loads(json.dumps(INDEX))
    weight_map = index["weight_map"]
    for _ in range(rng.randrange(1, 4)):
        kind = rng.randrange(12)
        key = rng.choice(list(weight_map) or ["/layers/dense/vars"])
        if kind == 0:
            weight_map[key] = rng.choice(_ODD_NAMES)
        elif kind == 1:
            weight_map[key] = [rng.choice(_ODD_NAMES) for _ in range(rng.randrange(1, 4))] + SHARDS[: rng.randrange(3)]
        elif kind == 2:
            weight_map[rng.choice(_ODD_KEYS)] = weight_map.pop(key, SHARDS)
        elif kind == 3:
            index["weight_map"] = rng.choice([[], "x", 1, None, [SHARDS], {}])
            break
        elif kind == 4:
            index = rng.choice([[index], "x", 1, None, [], {"metadata": {}}, {"weight_map": weight_map, "x": index}])
            break
        elif kind == 5:
            index["metadata"] = rng.choice([None, [], "x", {"total_size": -1}, {"total_size": 1 << 80}, 1e308])
        elif kind == 6:  # many distinct names (past MAX_SHARDS, or under it), or one name many times
            count = rng.choice([3, 10_001])
            weight_map[key] = [f"m_{i:05}.weights.h5" for i in range(count)]
        elif kind == 7:
            weight_map[key] = [SHARDS[0]] * rng.choice([2, 1000, 30_000])
        elif kind == 8:  # nested deeper than the JSON limit, or just deeper than a list of names
            weight_map[key] = _nested(rng.choice([2, 90, 150, 5000]), SHARDS[0])
        elif kind == 9:  # many keys
            weight_map.update({f"/layers/x{i}/vars": [SHARDS[0]] for i in range(rng.choice([10, 20_000]))})
        elif kind == 10:
            weight_map.pop(key, None)
        else:  # both shards named under every key: each listed twice
            for name in list(weight_map):
                weight_map[name] = SHARDS + SHARDS
    text = _dumps(index)
    if rng.random() < 0.15:  # duplicate keys: json keeps the last; the index is read as Python reads it
        text = text[:-1] + ', "weight_map": {"/layers/dense/vars": ["' + rng.choice(SHARDS) + '"]}}'
        text = text if text.startswith("{") and len(text) > 2 else "{" + text[1:]
    return text.encode()


# ---------------------------------------------------------------------------------------------
# The sharded fuzzer: one folder, rewritten per case.


class _Folder:
    """The model folder of the sharded fuzzer: good shards and oddities, restored between cases."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.outside = _outside(root)
        self.folder = root / "model"
        self.folder.mkdir()
        _write_shards(self.folder)
        _oddities(self.folder, self.outside)
        self.index = self.folder / "m.weights.json"
        self.index.write_text(json.dumps(INDEX))
        self.shards = {name: (self.folder / name).read_bytes() for name in SHARDS}
        self.variants = _variant_shards(root)

    def restore(self) -> None:
        for name, data in self.shards.items():
            path = self.folder / name
            if path.is_symlink() or path.is_dir():
                path.rmdir() if path.is_dir() and not path.is_symlink() else path.unlink()
            path.write_bytes(data)
        self.index.write_text(json.dumps(INDEX))

    def case(self, rng: Any) -> str:
        """Write one mutated case; say what it is."""
        self.restore()
        kind = rng.randrange(10)
        if kind < 4:
            self.index.write_bytes(_structured_index(rng))
            return "structured index"
        if kind < 6:
            self.index.write_bytes(mutate(self.index.read_bytes(), rng))
            return "index bytes"
        target = self.folder / rng.choice(SHARDS)
        if kind < 8:
            target.write_bytes(mutate(target.read_bytes(), rng))
            return f"{target.name} bytes"
        if kind == 8:
            name = rng.choice(sorted(self.variants))
            target.write_bytes(self.variants[name])
            return f"{target.name} is the {name} variant"
        how = rng.choice(["missing", "link-out", "dir", "index", "truncated"])
        if how == "missing":
            target.unlink()
        elif how == "link-out":
            target.unlink()
            target.symlink_to(self.outside / target.name)
        elif how == "dir":
            target.unlink()
            target.mkdir()
        elif how == "index":
            target.write_text(json.dumps(INDEX))
        else:
            target.write_bytes(target.read_bytes()[: rng.randrange(target.stat().st_size)])
        return f"{target.name} {how}"


@pytest.fixture(scope="module")
def traced() -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


def test_the_good_shards_read_as_h5py_wrote_them(tmp_path: Path) -> None:
    """The fuzzer's seed is a good model: its records are the arrays h5py wrote (the oracle)."""
    folder = _Folder(tmp_path)
    model = open_model(folder.index)
    try:
        records = {record.path: record.read() for record in model.records()}
    finally:
        model.close()
    assert sorted(records) == ["dense/bias", "dense/kernel", "dense_1/bias", "dense_1/kernel"]
    np.testing.assert_array_equal(records["dense/kernel"], KERNEL)
    np.testing.assert_array_equal(records["dense/bias"], BIAS)
    np.testing.assert_array_equal(records["dense_1/kernel"], KERNEL_1)
    np.testing.assert_array_equal(records["dense_1/bias"], BIAS_1)


def test_an_index_of_1100_shards_is_walked_by_one_worker_past_descriptor_1024(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1,100 shards stay open (descriptors past 1024, where select() fails) and one worker walks them all."""
    import initcli.readers.h5snapshot as h5snapshot

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1300:
        pytest.skip(f"at most {hard} open files here")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1300) if hard == resource.RLIM_INFINITY else hard, hard))
    template = tmp_path / "template.h5"
    with h5py.File(template, "w") as handle:
        handle.create_dataset("layers/dXXXXX/vars/0", data=BIAS)
    data = template.read_bytes()
    assert data.count(b"dXXXXX") == 1
    folder = tmp_path / "model"
    folder.mkdir()
    names = [f"m_{i:05}.weights.h5" for i in range(1100)]
    for i, name in enumerate(names):  # the layer's name is patched in place: d00000, d00001, ...
        (folder / name).write_bytes(data.replace(b"dXXXXX", f"d{i:05}".encode()))
    index = folder / "m.weights.json"
    index.write_text(json.dumps({"weight_map": {f"/layers/d{i:05}/vars": [n] for i, n in enumerate(names)}}))
    workers = []
    walk = h5snapshot.run_isolated
    monkeypatch.setattr(h5snapshot, "run_isolated", lambda *a, **k: workers.append(1) or walk(*a, **k))
    try:
        model = open_model(index)
        try:
            records = list(model.records())
            assert len(workers) == 1
            assert [r.layer for r in records] == [f"d{i:05}" for i in range(1100)]
            np.testing.assert_array_equal(records[-1].read(), BIAS)
        finally:
            model.close()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _fuzz_sharded(root: Path, count: int, seed: int) -> None:
    import random

    rng = random.Random(seed)
    folder = _Folder(root)
    for name in _ODD_NAMES:  # each odd name once on its own (the random cases combine them)
        folder.restore()
        document = {"weight_map": {"/layers/dense/vars": [name, SHARDS[1]], "/layers/dense_1/vars": SHARDS[1]}}
        folder.index.write_text(json.dumps(document))
        attack(root, folder.folder, folder.index, f"shard name {name!r}")
    for key in _ODD_KEYS:
        folder.restore()
        folder.index.write_text(json.dumps({"weight_map": {key: SHARDS}}))
        attack(root, folder.folder, folder.index, f"weight_map key {key[:20]!r}")
    _random_cases(root, folder.folder, folder.index, folder.case, count, seed, rng)


def test_sharded_index_fuzz_short(tmp_path: Path, traced: None) -> None:
    _fuzz_sharded(tmp_path, 120 * SCALE, 24 + SCALE - 1)


# ---------------------------------------------------------------------------------------------
# The preset fuzzer: config.json, metadata.json and the weights (one file, or an index and shards).


def _hub_weights(path: Path) -> None:
    with h5py.File(path, "w") as handle:
        handle.create_dataset("layers/reversible_embedding/vars/0", data=KERNEL)
        handle.create_dataset("layers/transformer_encoder/vars/0", data=KERNEL_1)


def _structured_document(good: dict[str, Any], rng: Any) -> bytes:
    document: Any = json.loads(json.dumps(good))
    kind = rng.randrange(8)
    key = rng.choice(list(document))
    if kind == 0:
        document[key] = rng.choice([None, 1, [], {}, "", PAYLOAD, "k" * 100_000, "\ud800", 1 << 70, 1e308])
    elif kind == 1:
        document = rng.choice([[document], "x", 1, None, [], {}])
    elif kind == 2:
        document[key] = _nested(rng.choice([5, 99, 101, 5000]), {})
    elif kind == 3:
        document["config"] = rng.choice([{f"k{i}": [0] * 10 for i in range(10)}, "@many@"])
    elif kind == 4:
        document.pop(key)
    elif kind == 5:
        document["module"] = rng.choice(["keras_hub", "keras.src.models", "os", f"keras_hub{PAYLOAD}", "builtins"])
        document["registered_name"] = rng.choice([None, "keras_hub>X", "os>system", PAYLOAD])
    elif kind == 6:
        document["class_name"] = rng.choice([f"Bert{PAYLOAD}", "x" * 10_000, "Backbone\n::error::forged"])
    else:
        document["keras_version"] = rng.choice([PAYLOAD, "3" * 41, 3, ["3"], "3.15.1\n::error::forged"])
    text = _dumps(document)
    if rng.random() < 0.15 and text.startswith("{") and len(text) > 2:  # a duplicate key, the last kept
        text = text[:-1] + ', "class_name": ' + json.dumps(rng.choice(["BertBackbone", 1, PAYLOAD])) + "}"
    return text.encode()


ODD_FILES = ["link-out", "dotdot-link", "fifo", "dir", "dev-zero", "loop", "link-to-config"]


class _Preset:
    """The preset folder of the preset fuzzer, restored between cases."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.outside = _outside(root)
        self.folder = root / "preset"
        self.folder.mkdir()
        self.files = {
            "config.json": json.dumps(HUB_CONFIG).encode(),
            "metadata.json": json.dumps(HUB_METADATA).encode(),
        }
        _hub_weights(root / "hub.weights.h5")
        self.files["model.weights.h5"] = (root / "hub.weights.h5").read_bytes()
        _write_shards(root)
        self.sharded = {name: (root / name).read_bytes() for name in SHARDS}
        self.names = ["config.json", "metadata.json", "model.weights.h5", "model.weights.json"]

    def restore(self, sharded: bool) -> None:
        for entry in self.folder.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        for name, data in self.files.items():
            if not (sharded and name == "model.weights.h5"):
                (self.folder / name).write_bytes(data)
        if sharded:
            index = json.loads(json.dumps(INDEX))
            index["weight_map"] = {key: [f"model_{n[2:]}" for n in value] for key, value in index["weight_map"].items()}
            (self.folder / "model.weights.json").write_text(json.dumps(index))
            for name, data in self.sharded.items():
                (self.folder / f"model_{name[2:]}").write_bytes(data)

    def odd(self, name: str, how: str) -> str:
        """Make the preset's file `name` a link out, a FIFO, a directory, a device, a loop or a link to config.json."""
        path = self.folder / name
        if path.exists() or path.is_symlink():
            path.unlink()
        if how == "link-out":
            path.symlink_to(self.outside / ("secret.json" if name.endswith("json") else "secret.weights.h5"))
        elif how == "dotdot-link":
            path.symlink_to(Path("..") / "outside" / "secret.weights.h5")
        elif how == "fifo":
            os.mkfifo(path)
        elif how == "dir":
            path.mkdir()
        elif how == "dev-zero":
            path.symlink_to("/dev/zero")
        elif how == "loop":
            path.symlink_to(name)
        else:
            path.symlink_to("config.json")
        return f"{name} {how}"

    def case(self, rng: Any) -> str:
        sharded = rng.random() < 0.3
        self.restore(sharded)
        weights = "model.weights.json" if sharded else "model.weights.h5"
        kind = rng.randrange(10)
        if kind < 3:
            name = rng.choice(["config.json", "metadata.json"])
            good = HUB_CONFIG if name == "config.json" else HUB_METADATA
            (self.folder / name).write_bytes(_structured_document(good, rng))
            return f"structured {name}"
        if kind < 5:
            name = rng.choice(["config.json", "metadata.json", weights])
            path = self.folder / name
            path.write_bytes(mutate(path.read_bytes(), rng))
            return f"{name} bytes"
        if kind == 5 and sharded:
            (self.folder / weights).write_bytes(_structured_index(rng))
            return "structured model.weights.json"
        if kind == 6:  # a file the preset's readers must not follow, or cannot open
            return self.odd(rng.choice(self.names), rng.choice(ODD_FILES))
        if kind == 7:  # a weights file beside others that claim it: a TF checkpoint index, both kinds
            extra = rng.choice(["model.weights.h5.index", "model.weights.json", "model.weights.h5", "saved_model.pb"])
            source = self.files["config.json"] if extra.endswith(".json") else mutate(b"\x00" * 64, rng)
            (self.folder / extra).write_bytes(source)
            return f"an extra {extra}"
        if kind == 8:
            name = rng.choice(["config.json", "metadata.json", weights])
            (self.folder / name).unlink()
            return f"no {name}"
        (self.folder / "assets").mkdir()
        (self.folder / "assets" / "tokenizer").symlink_to(self.outside / "secret.json")
        return "assets linking out"


def test_the_good_preset_reads_as_h5py_wrote_it(tmp_path: Path) -> None:
    preset = _Preset(tmp_path)
    for sharded, expected in ((False, [KERNEL, KERNEL_1]), (True, [KERNEL, BIAS, KERNEL_1, BIAS_1])):
        preset.restore(sharded)
        model = open_model(preset.folder)
        try:
            values = [record.read() for record in model.records()]
            assert model.format == "kerashub-preset"
        finally:
            model.close()
        assert len(values) == len(expected)
        for value, oracle in zip(values, expected, strict=True):
            np.testing.assert_array_equal(value, oracle)


def _fuzz_preset(root: Path, count: int, seed: int) -> None:
    import random

    rng = random.Random(seed)
    preset = _Preset(root)
    for name in preset.names:  # each of the preset's files made each odd thing once
        for how in ODD_FILES:
            preset.restore(sharded=name == "model.weights.json")
            attack(root, preset.folder, preset.folder, preset.odd(name, how))
    _random_cases(root, preset.folder, preset.folder, preset.case, count, seed, rng)


def test_preset_fuzz_short(tmp_path: Path, traced: None) -> None:
    _fuzz_preset(tmp_path, 120 * SCALE, 24 + SCALE - 1)


# ---------------------------------------------------------------------------------------------
# Hostile arguments of the newer options.


@pytest.mark.parametrize("address", ["tls://a:1", "inproc://x"])
def test_a_scheduler_dask_cannot_connect_to_is_one_line_at_once(address: str) -> None:
    """tls:// without a TLS configuration and inproc:// fail inside Client(): once left a half-made client
    whose __del__ printed a traceback at exit after a 10 s wait."""
    pytest.importorskip("distributed")
    from tests.test_hostile_budget import assert_one_line_error, run_cli

    mlp = Path(__file__).resolve().parent.parent / "examples" / "models" / "mlp.keras"
    run = run_cli("inspect", str(mlp), "--scheduler", address)
    assert_one_line_error(run, f"cannot reach the Dask scheduler at {address}")
