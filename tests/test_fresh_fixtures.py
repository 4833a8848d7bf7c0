"""`inspect --fresh` runs on every fixture Keras 3 or tf_keras can load, and refuses the rest in one line.

The oracle for "can load" is Keras itself: `keras.models.load_model` and `tf_keras.models.load_model`
(compile=False) on each model file and SavedModel of tests/fixtures and examples/models. Marked slow:
33 files, each loaded by Keras (and tf_keras where Keras cannot) and rebuilt once: 18 s at load
average 6-8 on the shared 2-core VM.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

from initcli.cli.main import cli
from tests.fetched import folders

ROOT = Path(__file__).resolve().parents[1]


def _fixtures() -> list[Path]:
    found = []
    fetched = [folder for folder in folders("INITCLI_PUBLIC_FIXTURES", "public-fixtures") if folder.is_dir()][:1]
    for folder in (ROOT / "tests" / "fixtures", ROOT / "examples" / "models", *fetched):
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.suffix in (".h5", ".keras", ".hdf5"):
                found.append(path)
            elif path.is_dir() and (path / "saved_model.pb").is_file():
                found.append(path)
    return found


def _loads(module, path: Path) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module.models.load_model(path, compile=False)
    except Exception:  # noqa: BLE001 - any failure means this Keras cannot load it
        return False
    return True


@pytest.mark.tensorflow
@pytest.mark.slow
def test_fresh_runs_on_every_fixture_keras_or_tf_keras_loads(keras):
    import tf_keras

    fixtures = _fixtures()
    fetched = sum(not path.is_relative_to(ROOT) for path in fixtures)
    assert len(fixtures) - fetched >= 15 and (fetched == 0 or fetched >= 13)  # the folders were walked
    loadable = []
    for path in fixtures:
        can = _loads(keras, path) or _loads(tf_keras, path)
        result = CliRunner().invoke(cli, ["inspect", str(path), "--fresh", "--format", "json"])
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else Path("<fetched>", path.name)
        if can:
            loadable.append(shown)
            assert result.exit_code == 0, (shown, result.output[-300:])
        else:
            assert result.exit_code == 1, (shown, result.output[-300:])
            assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: "), (shown, result.stderr)
    # Keras 2.0-2.3 .h5, tf.keras .h5/.keras, both SavedModels, Keras 3 files.
    assert len(loadable) >= (20 if fetched else 12)
    from initcli.keras.building import clear_session

    for module in (keras, tf_keras):  # names as a fresh process gives them, for the tests after this one
        clear_session(module)
