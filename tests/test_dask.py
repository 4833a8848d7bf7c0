"""`inspect --scheduler`: the rows measured on Dask workers equal the rows of one process, field for field.

The oracle is the local path (`initcli inspect` without --scheduler, itself tested against Keras,
keras-hub and safetensors elsewhere): the Dask path must give its JSON report exactly. One
`distributed.LocalCluster` of two in-process workers (over TCP) serves the module; MIN_TASK_BYTES is
set to 0 and TASKS_PER_WORKER to 1 so that every input is split into several tasks (two or three per
file, at least one per shard for sharded weights), which the workers finish in any order.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import threading
import zipfile
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from fresh_process import modules_after

from initcli.cli import cli

distributed = pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "examples" / "models"
SHARDS = 3
CUTS = (6, 10)  # cnn.keras's datasets 0-5, 6-9, 10-12: conv2d_1's and dense's vars straddle two shards


@pytest.fixture(scope="module")
def cluster():
    # In-process workers, but over TCP: tasks and results are pickled, and --scheduler's probe meets
    # a real scheduler's handshake.
    local = distributed.LocalCluster(
        n_workers=2,
        processes=False,
        threads_per_worker=1,
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address=None,
        # The scheduler's HTTP server (no dashboard) on a free port, not 8787: another cluster on the
        # machine (another test worker's, a user's) may hold 8787, and the scheduler's warning is an error here.
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        silence_logs=50,
    )
    try:
        yield local
    finally:
        local.close()


@pytest.fixture(scope="module")
def client(cluster):
    connected = distributed.Client(cluster.scheduler_address, set_as_default=False)
    try:
        yield connected
    finally:
        connected.close()


@pytest.fixture(autouse=True)
def several_tasks_per_file(monkeypatch):
    """Small files in two or three tasks (a task per worker), sharded weights in a task per shard."""
    from initcli.analysis import remote

    monkeypatch.setattr(remote, "MIN_TASK_BYTES", 0)
    monkeypatch.setattr(remote, "TASKS_PER_WORKER", 1)


def split_into_shards(archive: Path, folder: Path, prefix: str = "m") -> tuple[Path, Path]:
    """The weights of a .keras archive as Keras 3 writes sharded weights (saving_lib.ShardedH5IOStore):
    `{prefix}.weights.json` naming `{prefix}_0000i.weights.h5` shards, layers' `vars` split over two
    shards with its `name` attribute only in the first. Returns the index and the model's config.json."""
    with zipfile.ZipFile(archive) as opened:
        weights, config = opened.read("model.weights.h5"), opened.read("config.json")
    (folder / "model.json").write_bytes(config)
    weight_map: dict[str, list[str]] = {}
    with h5py.File(io.BytesIO(weights), "r") as source:
        names: list[str] = []
        source.visititems(lambda name, item: names.append(name) if isinstance(item, h5py.Dataset) else None)
        files = [h5py.File(folder / f"{prefix}_{i:05}.weights.h5", "w") for i in range(SHARDS)]
        try:
            for i, name in enumerate(names):
                shard = files[(i >= CUTS[0]) + (i >= CUTS[1])]
                group = name.rsplit("/", 1)[0]
                if group not in shard:
                    shard.create_group(group)
                    if not weight_map.get("/" + group):
                        shard[group].attrs.update(dict(source[group].attrs))
                shard.create_dataset(name, data=source[name][()])
                listed = weight_map.setdefault("/" + group, [])
                if Path(shard.filename).name not in listed:
                    listed.append(Path(shard.filename).name)
        finally:
            for shard in files:
                shard.close()
    assert any(len(files) > 1 for files in weight_map.values())  # a layer straddles two shards
    index = folder / f"{prefix}.weights.json"
    index.write_text(json.dumps({"metadata": {"total_size": 0}, "weight_map": weight_map}))
    return index, folder / "model.json"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, list[str]]:
    folder = tmp_path_factory.mktemp("dask")
    sharded = folder / "sharded"
    sharded.mkdir()
    index, config = split_into_shards(MODELS / "cnn.keras", sharded)
    preset = folder / "preset"
    preset.mkdir()
    split_into_shards(MODELS / "cnn.keras", preset, prefix="model")
    (preset / "config.json").write_text(
        json.dumps(
            {
                "module": "keras_hub.src.models.bert.bert_backbone",
                "class_name": "BertBackbone",
                "config": {"name": "bert_backbone"},
                "registered_name": "keras_hub>BertBackbone",
            }
        )
    )
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    rng = np.random.default_rng(5)
    tensors = {
        "embed.weight": rng.normal(0, 0.02, (40, 16)).astype(np.float32),
        "dense/kernel": rng.uniform(-0.3, 0.3, (16, 24)).astype(np.float32),
        "dense/bias": np.zeros(24, np.float32),
        "head.weight": rng.normal(0, 0.1, (24, 8)).astype(np.float16),
    }
    safetensors_file = folder / "model.safetensors"
    safetensors_numpy.save_file(tensors, str(safetensors_file))
    return {
        "keras": [str(MODELS / "cnn.keras")],
        "rnn": [str(MODELS / "rnn.keras")],
        "legacy-h5": [str(MODELS / "cnn.h5")],
        "weights-h5": [str(MODELS / "cnn.weights.h5")],
        "sharded+config": [str(index), "--config", str(config)],
        "sharded": [str(index)],
        "preset": [str(preset)],
        "safetensors": [str(safetensors_file)],
        "savedmodel": [str(ROOT / "tests" / "fixtures" / "tfbundle" / "savedmodel")],
        "layer": [str(index), "--config", str(config), "--layer", "conv2d*"],
    }


def _inspect(arguments: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["inspect", *arguments, "--format", "json"])
    return result.exit_code, result.output


@pytest.mark.parametrize(
    # One input per way a worker finds the values (the whole model by position: a .keras archive,
    # safetensors, a SavedModel; one shard by dataset: sharded weights, a preset) and a --layer selection.
    "name",
    ["keras", "safetensors", "savedmodel", "sharded+config", "preset", "layer"],
)
def test_rows_on_dask_equal_the_local_rows(cluster, client, inputs, name) -> None:
    arguments = inputs[name]
    local_code, local = _inspect(arguments)
    assert local_code == 0, local
    with distributed.get_task_stream(client) as stream:
        code, remote = _inspect([*arguments, "--scheduler", cluster.scheduler_address])
    ran = [task for task in stream.data if "measure_task" in str(task["key"])]
    assert code == 0, remote
    expected, got = json.loads(local), json.loads(remote)
    assert len(got["weights"]) == len(expected["weights"]) > 1
    for ours, theirs in zip(got["weights"], expected["weights"], strict=True):
        assert ours == theirs  # every field of every row, compared one row at a time for a readable failure
    assert got == expected  # and the whole report: totals, verdicts, notes, findings
    assert remote == local  # byte for byte, as printed
    # The work really ran on the workers, in the tasks the client planned (several for each input).
    (tasks, _), _ = _planned(inputs, name)
    assert len(ran) == len(tasks) > 1


def test_several_models_share_one_connection(cluster, client, inputs, monkeypatch) -> None:
    from initcli.parallel import dask as initcli_dask

    connections = []
    real_connected = initcli_dask.connected

    def counted(address, **options):
        connections.append(address)
        return real_connected(address, **options)

    monkeypatch.setattr(initcli_dask, "connected", counted)
    models = [*inputs["safetensors"], str(MODELS / "mlp.keras")]
    local = _inspect(models)
    with distributed.get_task_stream(client) as stream:
        remote = _inspect([*models, "--scheduler", cluster.scheduler_address])
    assert connections == [cluster.scheduler_address]  # one connection for the command, not one per model
    assert local[0] == remote[0] == 0
    assert len([task for task in stream.data if "measure_task" in str(task["key"])]) >= 2
    assert json.loads(remote[1]) == json.loads(local[1]) and len(json.loads(local[1])["models"]) == 2


def _run(command: str, arguments: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [command, *arguments, "--format", "json"])
    return result.exit_code, result.output


def _counting_connections(monkeypatch) -> list[str]:
    from initcli.parallel import dask as initcli_dask

    connections: list[str] = []
    real_connected = initcli_dask.connected

    def counted(address, **options):
        connections.append(address)
        return real_connected(address, **options)

    monkeypatch.setattr(initcli_dask, "connected", counted)
    return connections


def _datasets(opened: h5py.File) -> list[h5py.Dataset]:
    found: list[h5py.Dataset] = []
    opened.visititems(lambda _, item: found.append(item) if isinstance(item, h5py.Dataset) else None)
    return found


@pytest.fixture(scope="module")
def moved_shards(inputs, tmp_path_factory) -> str:
    """cnn.keras's weights split into shards as `inputs["sharded"]`, each value moved (x1.1 + noise)."""
    folder = tmp_path_factory.mktemp("moved")
    index, _ = split_into_shards(MODELS / "cnn.keras", folder)
    rng = np.random.default_rng(7)
    for shard in sorted(folder.glob("*.weights.h5")):
        with h5py.File(shard, "r+") as opened:
            for dataset in _datasets(opened):
                values = dataset[()]
                dataset[...] = values * 1.1 + rng.normal(0, 0.01, values.shape).astype(values.dtype)
    return str(index)


def test_check_on_dask_equals_one_process(cluster, client, inputs, monkeypatch) -> None:
    connections = _counting_connections(monkeypatch)
    # One model (the sharded index with its config: a task per shard), then two in one command.
    for models in (inputs["sharded+config"], [*inputs["safetensors"], *inputs["keras"]]):
        local = _run("check", models)
        with distributed.get_task_stream(client) as stream:
            remote = _run("check", [*models, "--scheduler", cluster.scheduler_address])
        assert remote == local  # exit code and the JSON report, byte for byte
        assert json.loads(local[1])  # a report, not an error line
        assert len([task for task in stream.data if "measure_task" in str(task["key"])]) >= 2
    assert connections == [cluster.scheduler_address] * 2  # one connection per command, not per model


def test_diff_on_dask_equals_one_process(cluster, client, inputs, moved_shards, monkeypatch) -> None:
    """A .keras archive (found by position) against moved sharded weights (found by dataset)."""
    connections = _counting_connections(monkeypatch)
    models = [*inputs["keras"], moved_shards]
    local = _run("diff", models)
    with distributed.get_task_stream(client) as stream:
        remote = _run("diff", [*models, "--scheduler", cluster.scheduler_address])
    assert local[0] == 0, local[1]
    expected, got = json.loads(local[1]), json.loads(remote[1])
    moved = [row for row in expected["weights"] if row["relative_change"] is not None]
    assert len(moved) > 1 and all(row["relative_change"] > 0.05 for row in moved)
    for ours, theirs in zip(got["weights"], expected["weights"], strict=True):
        assert ours == theirs  # every statistic of every pair, bit for bit (JSON's repr of the float64)
    assert remote == local
    assert len([task for task in stream.data if "compare_task" in str(task["key"])]) >= SHARDS
    assert connections == [cluster.scheduler_address]


def test_check_and_diff_refuse_what_dask_cannot_read(cluster) -> None:
    code, output = _run("check", [str(MODELS / "mlp.keras"), "--custom-objects", "x", "--scheduler", "local"])
    assert code == 2 and "--scheduler does not take --custom-objects" in output
    from initcli import api
    from initcli.errors import BadInputError
    from initcli.readers import open_model

    opened = open_model(str(MODELS / "mlp.keras"))  # as a live model is given: opened in this process
    try:
        with pytest.raises(BadInputError, match="a live model is in this process"):
            api.diff_models(opened, str(MODELS / "mlp.keras"), scheduler=cluster.scheduler_address)
        with pytest.raises(BadInputError, match="a live model is in this process"):
            api.check_model(opened, scheduler=cluster.scheduler_address)
    finally:
        opened.close()


def test_the_public_api_takes_a_scheduler(cluster, client, inputs) -> None:
    import initcli

    path = inputs["sharded+config"][0]
    config = inputs["sharded+config"][2]
    local = initcli.inspect(path, config=config)
    with distributed.get_task_stream(client) as stream:
        remote = initcli.inspect(path, config=config, scheduler=cluster.scheduler_address)
    assert remote.to_dict() == local.to_dict() and len(remote.weights) == len(local.weights) > 1
    assert len([task for task in stream.data if "measure_task" in str(task["key"])]) >= SHARDS


def _planned(inputs, name: str, budget_seconds: float = 60.0):
    """The tasks `--scheduler` would send for input `name`, planned as the client plans them."""
    from initcli.analysis import remote
    from initcli.readers import open_model
    from initcli.readers.open import read_model_json
    from initcli.safety.budget import Budget

    arguments = inputs[name]
    config = read_model_json(arguments[2]) if "--config" in arguments else None
    saved = open_model(arguments[0], config=config)
    try:
        records = list(saved.records())
        if "--layer" in arguments:
            records = [record for record in records if record.path.startswith(arguments[-1].rstrip("*"))]
        return remote.plan(saved, arguments[0], config, records, 2, 0.01, Budget(timeout=budget_seconds)), records
    finally:
        saved.close()


def test_sharded_weights_are_split_by_shard(inputs, monkeypatch) -> None:
    from initcli.analysis import remote

    monkeypatch.setattr(remote, "MIN_TASK_BYTES", 256 << 20)  # the default: small shards are not split
    (tasks, members), records = _planned(inputs, "sharded+config")
    assert sorted(Path(task.path).name for task in tasks) == [f"m_{i:05}.weights.h5" for i in range(SHARDS)]
    assert all(task.shard and task.directory == str(Path(inputs["sharded"][0]).parent) for task in tasks)
    assert sorted(i for group in members for i in group) == list(range(len(records)))  # every weight, once
    # Each weight is sent to the shard whose file holds its dataset.
    for task in tasks:
        with h5py.File(task.path, "r") as shard:
            assert all(str(name).strip("/") in shard for name in task.locators)


def test_the_deadline_holds_on_the_worker(inputs) -> None:
    """A worker re-makes the command's budget with the time left: none left, its HDF5 walk stops."""
    from initcli.analysis import remote
    from initcli.safety.budget import BudgetError

    (tasks, _), _ = _planned(inputs, "sharded+config")
    (outcome,) = remote.measure_task(replace(tasks[0], remaining=0.0))
    assert isinstance(outcome, BudgetError) and "timeout" in str(outcome)
    (tasks, _), _ = _planned(inputs, "keras")
    (outcome,) = remote.measure_task(replace(tasks[0], remaining=0.0))
    assert isinstance(outcome, BudgetError) and "timeout" in str(outcome)


def test_a_worker_reads_only_regular_files_inside_the_index_directory(inputs, tmp_path) -> None:
    from initcli.analysis import remote
    from initcli.errors import InitcliError

    (tasks, _), _ = _planned(inputs, "sharded+config")
    outside = tmp_path / "elsewhere.weights.h5"
    outside.write_bytes(Path(tasks[0].path).read_bytes())
    link = tmp_path / "index" / "m_00000.weights.h5"
    link.parent.mkdir()
    link.symlink_to(outside)
    (outcome,) = remote.measure_task(replace(tasks[0], path=str(link), directory=str(link.parent)))
    assert isinstance(outcome, InitcliError) and "outside" in str(outcome)
    fifo = tmp_path / "index" / "m_00001.weights.h5"
    os.mkfifo(fifo)
    (outcome,) = remote.measure_task(replace(tasks[0], path=str(fifo), directory=str(fifo.parent)))
    assert isinstance(outcome, InitcliError) and "not a regular file" in str(outcome)


def test_a_worker_that_sees_another_file_says_so(inputs, tmp_path) -> None:
    from initcli.analysis import remote
    from initcli.errors import InitcliError

    (tasks, _), _ = _planned(inputs, "sharded+config")
    copy = tmp_path / Path(tasks[1].path).name
    copy.write_bytes(Path(tasks[1].path).read_bytes() + b"\0" * 8)
    (outcome,) = remote.measure_task(replace(tasks[1], path=str(copy), directory=str(tmp_path)))
    assert isinstance(outcome, InitcliError) and "the same files at the same path" in str(outcome)
    (tasks, _), _ = _planned(inputs, "keras")
    other = remote.measure_task(replace(tasks[0], path=str(MODELS / "mlp.keras")))
    assert isinstance(other[-1], InitcliError) and "the same files at the same path" in str(other[-1])
    with pytest.raises(InitcliError, match="a Dask worker runs initcli .*, the client 0.0.1: install the same"):
        remote.measure_task(replace(tasks[0], version="0.0.1"))


def test_the_first_failing_weight_is_the_error_as_in_one_process(cluster, inputs, monkeypatch) -> None:
    """Weights 2 and 9 fail (in different shards, so in tasks that finish in any order): weight 2's error."""
    from initcli.analysis import inspection, remote
    from initcli.errors import InitcliError

    (_, _), records = _planned(inputs, "sharded+config")
    failing = {records[2].path: "first", records[9].path: "second"}
    measure = inspection.measure_record

    def planted(record, interval_alpha=0.05):
        if record.path in failing:
            raise InitcliError(f"{record.path}: the {failing[record.path]} planted failure")
        return measure(record, interval_alpha)

    monkeypatch.setattr(inspection, "measure_record", planted)
    monkeypatch.setattr(remote, "measure_record", planted)
    local = _inspect(inputs["sharded+config"])
    remote_result = _inspect([*inputs["sharded+config"], "--scheduler", cluster.scheduler_address])
    assert local[0] == remote_result[0] == 1
    assert "first planted failure" in local[1]
    assert remote_result[1] == local[1]


_RELEASE = threading.Event()


def _stuck(task):
    """A task that never finishes by itself (a worker stuck on a slow disk)."""
    _RELEASE.wait(30)
    return []


def test_the_client_stops_waiting_at_the_deadline(cluster, inputs, monkeypatch) -> None:
    from initcli.analysis import remote

    monkeypatch.setattr(remote, "measure_task", _stuck)
    try:
        code, output = _inspect([*inputs["weights-h5"], "--timeout", "1", "--scheduler", cluster.scheduler_address])
    finally:
        _RELEASE.set()
    assert code == 1
    assert output.count("\n") == 1 and "took longer than the 1 s timeout" in output and "cancelled" in output


def test_an_unreachable_scheduler_is_one_line_and_exit_1() -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code, output = _inspect([str(MODELS / "mlp.keras"), "--scheduler", f"tcp://127.0.0.1:{port}"])
    assert code == 1
    assert output.count("\n") == 1 and f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}" in output


@pytest.mark.parametrize(
    ("answer", "message"),
    [(None, "no answer within 0.3 s"), (b"HTTP/1.1 400 Bad Request\r\n\r\n", "is not a Dask scheduler")],
)
def test_a_server_that_is_not_a_scheduler_is_one_line(monkeypatch, answer, message) -> None:
    import socket

    from initcli.parallel import dask

    monkeypatch.setattr(dask, "CONNECT_SECONDS", 0.3)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()

        def serve() -> None:
            connection, _ = server.accept()
            with connection, contextlib.suppress(OSError):  # the client closes first
                if answer is not None:
                    connection.sendall(answer)
                connection.recv(1)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        code, output = _inspect([str(MODELS / "mlp.keras"), "--scheduler", f"127.0.0.1:{server.getsockname()[1]}"])
    assert code == 1 and output.count("\n") == 1 and message in output, output


@pytest.mark.parametrize("address", ["not an address", "tcp://host-without-port", "http://host:8786"])
def test_a_bad_address_is_a_usage_error(address) -> None:
    code, output = _inspect([str(MODELS / "mlp.keras"), "--scheduler", address])
    assert code == 2 and "is not a Dask scheduler address" in output


def test_a_spec_a_function_or_custom_objects_are_refused_with_a_scheduler() -> None:
    code, output = _inspect(["--spec", str(ROOT / "examples" / "specs" / "mlp.yaml"), "--scheduler", "local"])
    assert code == 2 and "--scheduler measures a saved MODEL file" in output
    code, output = _inspect([str(ROOT / "examples" / "model_code.py:build_model"), "--scheduler", "local"])
    assert code == 2 and "--scheduler measures a saved MODEL file" in output
    code, output = _inspect([str(MODELS / "mlp.keras"), "--custom-objects", "no_such_module", "--scheduler", "local"])
    assert code == 2 and "--scheduler does not take --custom-objects" in output


def test_dask_is_imported_only_with_a_scheduler() -> None:
    """Without --scheduler (tests/test_startup_inspect.py runs the plain inspect), nor for a bad address."""
    exit_code, modules = modules_after(["inspect", str(MODELS / "mlp.keras"), "--scheduler", "no such address"])
    assert exit_code == 2
    assert not {m for m in modules if m.split(".")[0] in ("dask", "distributed", "tornado", "cloudpickle")}
    assert "initcli.parallel.dask" in modules  # the address was checked by initcli's own code
