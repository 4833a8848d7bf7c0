"""Ambiguous structures inside custom layers stay by index, each with its reason (docs/custom-layers.md).

One custom layer per rule of initcli.readers.structure (tests/custom_ambiguous_example.py), built and
saved by Keras 3 in the test. Oracle: the saving model's variables: the class Keras made each one
with, its shape, and its place among its layer's variables (index i is Keras's i-th variable).
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from initcli.cli.main import cli

pytestmark = pytest.mark.tensorflow


def _rows(*args: str) -> dict[str, dict]:
    result = CliRunner().invoke(cli, ["inspect", *args, "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return {row["path"]: row for row in json.loads(result.stdout)["weights"]}


@pytest.fixture(scope="module")
def saved(keras, tmp_path_factory):
    from tests import custom_ambiguous_example

    keras.backend.clear_session()
    keras.utils.set_random_seed(2)
    model = custom_ambiguous_example.build_model()
    path = tmp_path_factory.mktemp("ambiguous") / "ambiguous.keras"
    model.save(path)
    by_layer: dict[str, tuple[object, list]] = {}
    for layer in model._flatten_layers(include_self=False, recursive=True):
        variables = [*layer._trainable_variables, *layer._non_trainable_variables]
        if variables:
            by_layer[variables[0].path.rsplit("/", 1)[0]] = (layer, variables)
    return path, by_layer, _rows(str(path))


# (the layer's path, the class Keras made it with, the reason initcli gives for indices)
_RULES = [
    (
        "one_vector_norm/layer_normalization",
        "LayerNormalization",
        "are one vector: gamma (center=False) or beta (scale=False), the file does not say",
    ),
    (
        "three_vector_batch_norm/batch_normalization",
        "BatchNormalization",
        "are three vectors: gamma or beta is missing (scale=False or center=False), the file does not say which",
    ),
    ("nested/scale", "Scale", "no standard class fits for sure"),  # a custom layer's own add_weight
    ("named_projection/proj", "Dense", "names 'proj', 'proj': no standard class fits for sure"),
    (
        "rank_three_einsum/einsum_dense_2",
        "EinsumDense",
        "hold a rank-3 kernel: its names and fans follow the equation, which only its config holds",
    ),
]


@pytest.mark.parametrize(("layer_path", "keras_class", "reason"), _RULES, ids=[r[0] for r in _RULES])
def test_ambiguous_sublayers_stay_by_index_with_the_reason(saved, layer_path, keras_class, reason):
    _, by_layer, rows = saved
    layer, variables = by_layer[layer_path]
    assert type(layer).__name__ == keras_class  # the file really holds that class: initcli must not guess
    for index, variable in enumerate(variables):
        row = rows[f"{layer_path}/{index}"]
        assert tuple(row["shape"]) == tuple(variable.shape)
        assert row["weight"] == str(index) and not row.get("inferred") and row["layer_class"] is None
        assert row["initializer"] is None and row["verdict"] == "n/a"
        assert "named by index, the structure is ambiguous" in row["notes"][-1] and reason in row["notes"][-1]
    assert f"{layer_path}/{len(variables)}" not in rows


def test_a_functional_inside_a_custom_layer_says_the_path_keras_gives(saved):
    """A `layers` group named `encoder`: Sequential or Functional the file does not say; Keras builds a
    Functional's layers when it is made, outside the custom layer (its paths are unscoped)."""
    _, by_layer, rows = saved
    layer, variables = by_layer["dense"]
    assert type(layer).__name__ == "Dense"
    for variable in variables:
        row = rows[f"inner_model/encoder/{variable.path}"]
        assert row["weight"] == variable.name and row["layer_class"] == "Dense" and row["inferred"]
        assert f"Keras names this {variable.path}" in row["notes"][-1]
        assert "whose class its name 'encoder' does not tell" in row["notes"][-1]


def test_attention_like_groups_that_are_not_multi_head_attention_stay_unnamed(saved):
    """query_dense and key_dense without value_dense and output_dense (HalfAttention, a custom class
    inside a custom layer) are not MultiHeadAttention; their EinsumDense are rank-3: by index."""
    from initcli.readers.structure import infer

    _, by_layer, rows = saved
    shapes = {
        name: [tuple(v.shape) for v in by_layer[f"outer/half_attention/{auto}"][1]]
        for name, auto in (("query_dense", "einsum_dense"), ("key_dense", "einsum_dense_1"))
    }
    inference = infer("attention", "half_attention", [], shapes)
    assert inference.entry is None and "not MultiHeadAttention's four" in inference.reason
    full = {**shapes, "value_dense": shapes["key_dense"], "output_dense": [(2, 3, 6), (6,)]}
    assert infer("attention", "half_attention", [], full).entry["class_name"] == "MultiHeadAttention"
    assert rows["outer/half_attention/einsum_dense/0"]["weight"] == "0"


def test_with_the_code_every_ambiguous_weight_is_named_as_keras_names_it(saved):
    path, by_layer, _ = saved
    rows = _rows(str(path), "--custom-objects", "tests.custom_ambiguous_example")
    expected = {variable.path: type(layer).__name__ for layer, variables in by_layer.values() for variable in variables}
    assert {p: row["layer_class"] for p, row in rows.items()} == expected


def test_near_misses_of_attention_and_recurrent_cells_stay_unnamed(keras):
    """Keras-built MultiHeadAttention and LSTM shapes, altered one rule at a time."""
    from initcli.readers.structure import infer

    attention = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3)
    attention.build((None, 5, 6), (None, 5, 6))
    parts = {"query_dense": "_query_dense", "key_dense": "_key_dense", "value_dense": "_value_dense"}
    parts["output_dense"] = "_output_dense"
    shapes = {name: [tuple(v.shape) for v in getattr(attention, attr).weights] for name, attr in parts.items()}
    assert infer("att", "multi_head_attention", [], shapes).entry["class_name"] == "MultiHeadAttention"
    one_bias_less = {**shapes, "key_dense": shapes["key_dense"][:1]}
    assert "some projections have a bias and others not" in infer("att", None, [], one_bias_less).reason
    other_heads = {**shapes, "key_dense": [(6, 3, 3), (3, 3)]}
    assert "query and key kernels disagree" in infer("att", None, [], other_heads).reason

    lstm = keras.layers.LSTM(4)
    lstm.build((None, 5, 3))
    cell = [tuple(v.shape) for v in lstm.cell.weights]
    assert infer("rnn", "lstm", [], {"cell": cell}).entry["class_name"] == "LSTM"
    two_gates = [(3, 8), (4, 8), (8,)]
    assert "2 gates: not SimpleRNN, GRU or LSTM" in infer("rnn", None, [], {"cell": two_gates}).reason
    assert "cell bias (4) does not fit LSTM" in infer("rnn", None, [], {"cell": [*cell[:2], (4,)]}).reason
