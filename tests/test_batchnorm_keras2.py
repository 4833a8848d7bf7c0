"""`initcli batchnorm --keras 2|3` against tf_keras and Keras 3 themselves.

tf_keras's fused kernel (rank 4-5 input, fused=None) puts Bessel's n/(n-1) into the moving variance;
its unfused path (rank 2-3, or fused=False) and Keras 3 do not. Tolerances: float32 input, 1e-5
relative (float32 statistics against our float64 on the same float32 values); float16 input, 2e-3
relative (Keras 3 keeps float16 moving statistics, whose spacing near 1 is 9.8e-4).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from initcli.cli import cli
from initcli.errors import BadInputError
from initcli.keras.batchnorm import explain, uses_fused_kernel

SHAPES = [(4, 1), (6, 3), (5, 2, 3), (4, 1, 1, 1), (2, 3, 2, 2), (3, 2, 2, 1, 2)]


def _framework_moving(module, batch: np.ndarray, dtype: str, steps: int, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    layer = module.layers.BatchNormalization(momentum=0.7, dtype=dtype, **kwargs)
    for _ in range(steps):
        layer(batch.astype(dtype), training=True)
    return np.asarray(layer.moving_mean, np.float64), np.asarray(layer.moving_variance, np.float64)


def _batch(shape: tuple[int, ...], dtype: str) -> np.ndarray:
    rng = np.random.default_rng(sum(shape))
    return (rng.normal(size=shape) * 1.7 + 0.4).astype(dtype)


@pytest.mark.tensorflow
@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("shape", SHAPES)
def test_moving_statistics_equal_tf_keras_and_keras3(keras, shape, dtype):
    import tf_keras

    batch = _batch(shape, dtype)
    rtol = 1e-5 if dtype == "float32" else 2e-3
    for version, module in ((2, tf_keras), (3, keras)):
        mean, variance = _framework_moving(module, batch, dtype, steps=3)
        ours = explain(batch.astype(np.float64), momentum=0.7, steps=3, keras=version)
        assert ours.fused == (version == 2 and len(shape) in (4, 5))
        np.testing.assert_allclose(ours.moving_mean, mean, rtol=rtol, atol=1e-6)
        np.testing.assert_allclose(ours.moving_variance, variance, rtol=rtol)


@pytest.mark.tensorflow
def test_tf_keras_fused_false_on_4d_is_the_unfused_rule():
    import tf_keras

    batch = _batch((2, 3, 2, 2), "float32")
    _, variance = _framework_moving(tf_keras, batch, "float32", steps=2, fused=False)
    ours = explain(batch.astype(np.float64), momentum=0.7, steps=2, keras=2, fused=False)
    assert not ours.fused
    np.testing.assert_allclose(ours.moving_variance, variance, rtol=1e-5)


@pytest.mark.tensorflow
def test_tf_keras_refuses_fused_on_2d_as_we_do():
    import tf_keras

    with pytest.raises(ValueError, match="4D or 5D"):
        tf_keras.layers.BatchNormalization(fused=True)(np.zeros((4, 2), np.float32), training=True)
    with pytest.raises(BadInputError, match="rank 4 or 5"):
        uses_fused_kernel(2, 2, True)
    with pytest.raises(BadInputError, match="no fused kernel"):
        uses_fused_kernel(3, 4, True)


@pytest.mark.tensorflow
@pytest.mark.parametrize(("args", "rank"), [((), 2), (("--keras", "2"), 2), (("--keras", "2", "--input-rank", "4"), 4)])
def test_issue_example_on_the_command_line(keras, args, rank):
    import tf_keras

    values = np.array([0, 1.405974, 0.3, 2.0])
    result = CliRunner().invoke(
        cli, ["batchnorm", "--values", "0,1.405974,0.3,2.0", "--momentum", "0.5", *args, "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    module = tf_keras if "2" in args else keras
    layer = module.layers.BatchNormalization(momentum=0.5)
    layer(values.reshape((-1,) + (1,) * (rank - 1)).astype("float32"), training=True)
    expected = float(np.asarray(layer.moving_variance)[0])
    assert report["moving_variance"][0] == pytest.approx(expected, rel=1e-6)
    assert report["moving_variance"][0] == pytest.approx(0.93887 if rank == 4 else 0.8292, abs=5e-5)


def test_usage_errors_are_one_line():
    runner = CliRunner()
    for args in (["--values", "0,1", "--unfused"], ["--shape", "4x3", "--input-rank", "4"]):
        result = runner.invoke(cli, ["batchnorm", *args])
        assert result.exit_code == 2
        assert "Traceback" not in result.output
