"""What a plain `.keras` inspect imports (issue 25): no ml_dtypes, no TensorFlow-bundle readers.

ml_dtypes 0.7 takes ~0.8 s to import in a fresh venv; it is needed only for a bfloat16 or float8
weight. The SavedModel/checkpoint readers (`readers/tfmodel.py`, `readers/tfbundle.py`) are needed
only for those formats. benchmarks/bench_startup.py times the whole process.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fresh_process import modules_after

ROOT = Path(__file__).resolve().parent.parent
MLP = ROOT / "examples" / "models" / "mlp.keras"


_modules_of = modules_after


_NEVER_FOR_KERAS = {"ml_dtypes", "tensorflow", "keras", "tf_keras", "scipy", "jax", "torch", "safetensors"}
_NEVER_FOR_KERAS |= {"dask", "distributed", "tornado", "cloudpickle"}  # only with --scheduler (tests/test_dask.py)
_BUNDLE_READERS = {"initcli.readers.tfmodel", "initcli.readers.tfbundle", "initcli.readers.snappy"}


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_keras_inspect_imports_no_ml_dtypes_and_no_bundle_readers(fmt: str) -> None:
    exit_code, modules = _modules_of(["inspect", str(MLP), "--format", fmt])
    assert exit_code == 0
    assert "initcli.readers.open" in modules and "h5py" in modules  # the command really read the file
    assert not {m.split(".")[0] for m in modules} & _NEVER_FOR_KERAS
    assert not modules & _BUNDLE_READERS, sorted(modules & _BUNDLE_READERS)
    # Nor the new large-model readers a .keras file does not need.
    assert not {
        m
        for m in modules
        if m.startswith(("initcli.readers.safetensors", "initcli.readers.sharded", "initcli.readers.preset"))
    }
    # Made lazy for the 0.25 s target: the building code (with tempfile) is for specs, functions
    # and --fresh; custom_objects for --custom-objects; the diff and propagate commands for themselves.
    assert not modules & _LAZY_FOR_KERAS, sorted(modules & _LAZY_FOR_KERAS)


_LAZY_FOR_KERAS = {
    "initcli.keras.building",
    "initcli.keras.custom_objects",
    "initcli.cli.diff",
    "initcli.cli.propagate",
    "tempfile",  # (shutil comes with zipfile, which a .keras archive needs)
}


def test_json_inspect_imports_no_rich_and_no_random() -> None:
    """JSON is not rendered by Rich; only a draw without --seed needs Python's `random`."""
    exit_code, modules = _modules_of(["inspect", str(MLP), "--format", "json"])
    assert exit_code == 0 and "initcli.analysis.inspection" in modules
    assert not {m for m in modules if m.split(".")[0] in ("rich", "random")}


def test_a_lazy_command_module_loads_when_its_command_runs() -> None:
    """`diff` imports its command module when run (and not `propagate`'s)."""
    exit_code, modules = _modules_of(["diff", str(MLP), str(MLP), "--format", "json"])
    assert exit_code == 0 and "initcli.cli.diff" in modules and "initcli.cli.propagate" not in modules


def test_bfloat16_checkpoint_still_reads_through_ml_dtypes(tmp_path: Path) -> None:
    """The lazy dtype table gives ml_dtypes' bfloat16 where a tensor needs it (numpy as the oracle)."""
    import ml_dtypes
    import numpy as np

    from initcli.readers.tfbundle import _ITEMSIZES, DTYPES, dtype_name

    assert DTYPES[14] == np.dtype(ml_dtypes.bfloat16) and dtype_name(14) == "bfloat16"
    assert DTYPES[25] == np.dtype(ml_dtypes.float8_e4m3fn) and DTYPES[24] == np.dtype(ml_dtypes.float8_e5m2)
    assert DTYPES[1] == np.float32 and 7 not in DTYPES and len(DTYPES) == len(list(DTYPES)) == 17
    assert all(DTYPES[code].itemsize == _ITEMSIZES[code] for code in DTYPES)
