"""Names from files never forge output: no control characters, escapes or markup reach any format."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from initcli.cli import cli

MODELS = Path(__file__).resolve().parent.parent / "examples" / "models"
HOSTILE = "evil\n::notice::forged\x1b[31mred[/]"


def _renamed(tmp_path: Path) -> Path:
    """mlp.keras with a layer renamed to a hostile string (in config.json and the weights' name attribute)."""
    import h5py

    with zipfile.ZipFile(MODELS / "mlp.keras") as archive:
        members = {info.filename: archive.read(info.filename) for info in archive.infolist()}
    config = json.loads(members["config.json"])
    text = json.dumps(config).replace('"hidden1"', json.dumps(HOSTILE))
    members["config.json"] = text.encode()
    weights = tmp_path / "w.h5"
    weights.write_bytes(members["model.weights.h5"])
    with h5py.File(weights, "r+") as handle:

        def rename(name, obj):
            if obj.attrs.get("name") == "hidden1":
                obj.attrs["name"] = HOSTILE

        handle.visititems(rename)
    members["model.weights.h5"] = weights.read_bytes()
    target = tmp_path / "hostile.keras"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return target


@pytest.mark.parametrize("args", [["inspect"], ["inspect", "--format", "csv"], ["inspect", "--format", "markdown"],
                                  ["check", "--format", "text"], ["check", "--format", "github"]])  # fmt: skip
def test_hostile_names_are_made_visible_in_every_format(tmp_path, args):
    model = _renamed(tmp_path)
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"rules": [{"layer": "*", "initializer": "ones"}]}))  # a finding per weight
    extra = ["--rules", str(rules)] if args[0] == "check" else []
    result = CliRunner().invoke(cli, [args[0], str(model), *args[1:], *extra], env={"COLUMNS": "200"})
    assert result.exit_code in (0, 3), result.output
    output = result.output
    assert "\x1b" not in output
    # A workflow command or a finding only counts at the start of a line: none may be forged there.
    assert not any(line.startswith(("::notice::forged", "red")) for line in output.splitlines())
    assert "evil" in output and ("\\n" in output or "\\x1b" in output)


def test_json_never_prints_nan_or_infinity_and_unwraps_numpy_scalars():
    from initcli.render.formats import render_json

    nested = {"a": float("nan"), "b": [np.float32("inf"), {"c": np.float64("-inf")}], "d": np.float32(1.5)}
    assert json.loads(render_json(nested)) == {"a": None, "b": [None, {"c": None}], "d": 1.5}
    finite = {"e": np.int64(3), "f": np.bool_(True), "g": (1, 2), "h": np.float32(0.25)}
    assert json.loads(render_json(finite)) == {"e": 3, "f": True, "g": [1, 2], "h": 0.25}
