"""The command line: parse options, call one public function (`initcli.public`), render its report.

`sample`, `list` and `explain` run with Python's cyclic garbage collector off (`main`, issue 25): their
start-up is almost all imports, objects that live to the end, which the collector walked ~60 times for
nothing. Measured 2026-12-07 in a fresh venv (numpy 2.4.6, 2 cores, load ~1-6): 16 ms of wall time
spent in collections during `sample` (gc.callbacks), 10-12 ms less CPU per run (median of 15); 370
objects are left in cycles at exit, the same after a 3x3 and a 512x512 draw.
"""

from __future__ import annotations

import functools
import gc
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import click

from initcli import __version__
from initcli.cli.errors import InitcliGroup, refuse_closed_stdout
from initcli.cli.params import (
    AXES,
    BATCH_SHAPE,
    CUSTOM_OBJECTS_OPTION,
    DTYPE_OPTION,
    LAYER_OPTION,
    SCHEDULER_OPTION,
    SHAPE,
    SPEC_OPTION,
    TIMEOUT_OPTION,
    ValuesType,
    alpha_option,
    expand_models,
    initializer_options,
    output_options,
    table_flag,
)
from initcli.errors import ExitCode
from initcli.safety.numbers import POSITIVE_FLOAT, UNIT_INTERVAL
from initcli.types import CHECK_FORMATS, CHECK_NAMES, ENGINES, CheckName, Engine, FloatDType

if TYPE_CHECKING:
    import numpy as np

# Each command imports the public API (`initcli.public`) and the renderers when it runs: `--version` and
# `--help` load neither numpy nor the engine, and a small `sample` only what it uses (see
# tests/test_cli.py's import guard).


@click.group(
    cls=InitcliGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    # Imported when run or listed: `inspect` and `sample` do not load them.
    lazy_commands={"diff": "initcli.cli.diff:diff_command", "propagate": "initcli.cli.propagate:propagate_command"},
)
@click.version_option(__version__, prog_name="initcli")
def cli() -> None:
    """Inspect what Keras initializes weights with, and whether they look right.

    \b
    Exit codes: 0 ok, 1 runtime error, 2 usage error, 3 a check failed,
    130 interrupted.
    Example: initcli sample --init glorot_normal --shape 3x3x64x128 --seed 0
    """


_BACKEND = click.option(
    "--backend",
    type=click.Choice(("tensorflow", "jax", "torch")),
    default="tensorflow",
    show_default=True,
    help="The Keras 3 backend whose draws to reproduce (CPU); see docs/backends.md.",
)
_PARTITIONABLE = click.option(
    "--jax-threefry-partitionable/--no-jax-threefry-partitionable",
    default=True,
    show_default=True,
    help="With --backend jax: JAX's jax_threefry_partitionable (True since JAX 0.5; False before).",
)


def BACKEND_OPTION(command: Any) -> Any:  # noqa: N802 - used as the other option decorators
    """--backend and --[no-]jax-threefry-partitionable, passed on as one `backend` (jax:unpartitioned)."""

    @functools.wraps(command)
    def run(*args: Any, backend: str, jax_threefry_partitionable: bool, **kwargs: Any) -> Any:
        if not jax_threefry_partitionable:
            if backend != "jax":
                raise click.UsageError("--no-jax-threefry-partitionable is a JAX mode: give it with --backend jax")
            backend = "jax:unpartitioned"
        return command(*args, backend=backend, **kwargs)

    return _BACKEND(_PARTITIONABLE(run))


@cli.command()
@click.option("--init", "init_name", required=True, metavar="NAME", help="Initializer: snake or Camel name or alias.")
@click.option("--shape", type=SHAPE, required=True, help="Tensor shape: 3x3x64x128, 3,3,64,128 or '(3, 3, 64, 128)'.")
@click.option("--seed", type=int, help="Keras seed. Without it, a random seed is drawn as Keras does.")
@DTYPE_OPTION
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default="numpy",
    show_default=True,
    help="numpy: initcli's bit-exact reproduction (no TensorFlow); keras: call Keras itself.",
)
@BACKEND_OPTION
@initializer_options
@click.option("--input-axes", type=AXES, help="Axes counted in fan_in, e.g. 0,1 (with --output-axes).")
@click.option("--output-axes", type=AXES, help="Axes counted in fan_out, e.g. 2.")
@alpha_option("False-alarm rate of the 'inconsistent' verdict.")
@click.option(
    "--save", "save_path", type=click.Path(path_type=Path), help="Write the values to this .npy file (- for stdout)."
)
@click.option("--force", is_flag=True, help="Allow --save to overwrite an existing file.")
@click.option(
    "--values", "show_values", is_flag=True, help="Print the values themselves (the first 1000; --save for all)."
)
@table_flag("--hist", "Show a histogram of the sample next to the theoretical density (tables only).")
@output_options
def sample(
    init_name: str,
    shape: tuple[int, ...],
    seed: int | None,
    dtype: str,
    engine: str,
    backend: str,
    alpha: float,
    save_path: Path | None,
    force: bool,
    show_values: bool,
    hist: bool,
    output_format: str,
    columns: str | None,
    wide: bool,
    **parameters: Any,
) -> None:
    """Draw exactly what a Keras initializer draws, and compare it with the theory.

    \b
    Example:
      initcli sample --init glorot_normal --shape 3x3x64x128 --seed 0
      initcli sample --init glorot_uniform --shape 2x2 --seed 0 --values
      initcli sample --init he_uniform --shape 784x256 --seed 1 --format json
    """
    from initcli import public
    from initcli.render import printing, tables

    report = public.sample(
        init_name,
        shape,
        seed=seed,
        dtype=cast(FloatDType, dtype),
        engine=cast(Engine, engine),
        backend=backend,
        alpha=alpha,
        values=show_values,
        save=save_path,
        force=force,
        **parameters,
    )
    renderables = functools.partial(tables.sample_renderables, report, hist=hist)
    # With --save -, standard output carries the .npy: the report goes to standard error.
    printing.print_report(report, output_format, columns, renderables, wide, err=str(save_path) == "-")


@cli.command(name="list")
@output_options
def list_command(output_format: str, columns: str | None, wide: bool) -> None:
    """List every Keras initializer initcli knows, with aliases, parameters and formula.

    \b
    Example:
      initcli list --format markdown
    """
    from initcli import public
    from initcli.render import printing, tables

    report = public.list_initializers()
    printing.print_report(report, output_format, columns, functools.partial(tables.list_renderables, report), wide)


@cli.command()
@click.argument("name")
@click.option("--shape", type=SHAPE, help="Plug in the numbers for this shape.")
@click.option("--seed", type=int, help="With --shape: the values Keras draws with this seed, and exact numpy code.")
@DTYPE_OPTION
@BACKEND_OPTION
@initializer_options
@output_options
def explain(
    name: str,
    shape: tuple[int, ...] | None,
    seed: int | None,
    dtype: str,
    backend: str,
    output_format: str,
    columns: str | None,
    wide: bool,
    **parameters: Any,
) -> None:
    """Explain an initializer: formula, numbers for a shape, Keras call, values, numpy, PyTorch and Flax.

    \b
    Example:
      initcli explain glorot_uniform --shape 3x3x64x128
      initcli explain glorot_uniform --shape 2x2 --seed 0
    """
    from initcli import public
    from initcli.render import printing, tables

    report = public.explain(name, shape, seed=seed, dtype=cast(FloatDType, dtype), backend=backend, **parameters)
    printing.print_report(report, output_format, columns, functools.partial(tables.explain_renderables, report), wide)


CONFIG_OPTION = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The model.to_json() file of a weights-only MODEL: names its weights and gives their initializers.",
)


@cli.command(name="inspect")
@click.argument("models", nargs=-1, metavar="[MODEL]...")
@SPEC_OPTION
@click.option("--seed", type=int, help="With a spec, a function or --fresh: keras.utils.set_random_seed(SEED).")
@click.option("--fresh", is_flag=True, help="Also rebuild the saved model from its config, freshly initialized.")
@LAYER_OPTION
@alpha_option("False-alarm rate of the 'inconsistent' verdict for the whole model.")
@TIMEOUT_OPTION
@CONFIG_OPTION
@CUSTOM_OBJECTS_OPTION
@SCHEDULER_OPTION
@BACKEND_OPTION
@output_options
def inspect_command(
    models: tuple[str, ...],
    custom_objects: tuple[str, ...],
    scheduler: str | None,
    backend: str,
    spec_path: Path | None,
    config_path: Path | None,
    seed: int | None,
    fresh: bool,
    patterns: tuple[str, ...],
    alpha: float,
    timeout: float | None,
    output_format: str,
    columns: str | None,
    wide: bool,
) -> None:
    """One row per weight of a model: fans, initializer, default, theory, sample, verdict.

    MODEL is a .keras archive, a legacy .h5 model, a .weights.h5 file, a SavedModel directory or a
    TF checkpoint (read without TensorFlow, executing nothing from the file), or
    `package.module:function` / `path/file.py:function` returning a Keras model (built with
    TensorFlow). --spec builds one from a spec file. Several MODELs (or quoted globs such as
    'models/*.keras') are inspected in one run, with a total at the end.

    \b
    Example:
      initcli inspect examples/models/mlp.keras
      initcli inspect 'examples/models/*.keras' --format csv
      initcli inspect --spec examples/specs/mlp.yaml --seed 0
      initcli inspect examples/model_code.py:build_model --seed 0
    """
    from initcli import public
    from initcli.render import printing, tables
    from initcli.reports import InspectManyReport

    targets = expand_models(models)
    # Several models: a list, and an InspectManyReport back (one model: its path, an InspectReport).
    source: Any = targets if len(targets) > 1 else (targets[0] if targets else None)
    with printing.weight_progress() as progress:
        report = public.inspect(
            source,
            spec=spec_path,
            config=config_path,
            seed=seed,
            fresh=fresh,
            layer=patterns,
            alpha=alpha,
            timeout=timeout,
            custom_objects=custom_objects,
            progress=progress,
            scheduler=scheduler,
            backend=backend,
        )
    if isinstance(report, InspectManyReport):
        printing.print_file_errors(report.errors)
        renderables = functools.partial(tables.inspect_many_renderables, report)
    else:
        renderables = functools.partial(tables.inspect_renderables, report)
    printing.print_report(report, output_format, columns, renderables, wide)
    if isinstance(report, InspectManyReport) and report.exit_code:
        raise click.exceptions.Exit(report.exit_code)


@cli.command()
@click.argument("models", nargs=-1, required=True, metavar="MODEL...")
@click.option("--only", multiple=True, type=click.Choice(CHECK_NAMES), help="Run only these checks (repeatable).")
@click.option("--skip", multiple=True, type=click.Choice(CHECK_NAMES), help="Skip these checks (repeatable).")
@alpha_option("False-alarm rate of the distribution check for the whole model.")
@click.option(
    "--strict", is_flag=True, help="Treat warnings (fan caveats, weights unlike an inferred default) as failures."
)
@click.option(
    "--rules",
    "rules_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="YAML or JSON file of per-layer expectations (see the README).",
)
@LAYER_OPTION
@TIMEOUT_OPTION
@CONFIG_OPTION
@CUSTOM_OBJECTS_OPTION
@click.option(
    "--allow-unchecked",
    is_flag=True,
    help="Pass even when the distribution check (or a check named with --only) tested no weight.",
)
@click.option("--require", "require", type=click.Choice(("fresh",)), help="fresh: a trained model fails (exit 3).")
@SCHEDULER_OPTION
@click.option(
    "--format",
    "output_format",
    type=click.Choice(CHECK_FORMATS),
    default="text",
    show_default=True,
    help="text: one line per finding; json; github: Actions ::error annotations.",
)
def check(
    models: tuple[str, ...],
    only: tuple[str, ...],
    skip: tuple[str, ...],
    alpha: float,
    strict: bool,
    rules_path: Path | None,
    patterns: tuple[str, ...],
    timeout: float | None,
    config_path: Path | None,
    custom_objects: tuple[str, ...],
    allow_unchecked: bool,
    require: str | None,
    scheduler: str | None,
    output_format: str,
) -> None:
    """Gate a build on freshly initialized models: exit 0 if every check passes, 3 if any fails.

    Checks: distribution, nonfinite, constant, duplicate, fans (a warning unless --strict), rules;
    propagation (the mean-field prediction of the signal's scale, no TensorFlow) with --only.
    The distribution check's --alpha is the false-alarm rate for the whole model (Holm's
    correction over its weights). A trained model is said so in one line and its moved weights
    (verdict trained) fail no check; --require fresh makes a trained model fail (exit 3). A check that tested no
    weight never passes silently: see the coverage line. Several MODELs (or quoted globs) are
    checked in one run: the gate passes only if every model is read and passes.

    \b
    Example: initcli check examples/models/cnn.keras --format github
             initcli check 'models/**/*.keras'
    """
    from initcli import public
    from initcli.render import printing
    from initcli.reports import CheckManyReport

    targets = expand_models(models)
    source: Any = targets if len(targets) > 1 else targets[0]  # several: a CheckManyReport back
    with printing.weight_progress() as progress:
        report = public.check(
            source,
            only=cast("tuple[CheckName, ...]", only),
            skip=cast("tuple[CheckName, ...]", skip),
            rules=rules_path,
            layer=patterns,
            alpha=alpha,
            strict=strict,
            allow_unchecked=allow_unchecked,
            require="fresh" if require == "fresh" else None,
            config=config_path,
            custom_objects=custom_objects,
            timeout=timeout,
            progress=progress,
            scheduler=scheduler,
        )
    if isinstance(report, CheckManyReport):
        printing.print_check_many(report, output_format)
        exit_code = report.exit_code
    else:
        printing.print_check(report, output_format)
        exit_code = 0 if report.passed else ExitCode.CHECK_FAILED
    if exit_code:
        raise click.exceptions.Exit(exit_code)


@cli.command()
@click.argument("layers", nargs=-1, metavar="[LAYER]...")
@click.option(
    "--framework",
    "frameworks",
    default="keras",
    show_default=True,
    metavar="keras,torch,flax",
    help="Also show the PyTorch and/or Flax defaults of the equivalent layer.",
)
@click.option(
    "--source",
    type=click.Choice(("table", "keras")),
    default="table",
    show_default=True,
    help="table: initcli's shipped table (no TensorFlow; tested equal to Keras); keras: read "
    "the signatures of the installed Keras.",
)
@output_options
def defaults(
    layers: tuple[str, ...], frameworks: str, source: str, output_format: str, columns: str | None, wide: bool
) -> None:
    """Default initializer of every initializer argument of Keras layers (or the ones named).

    \b
    Example:
      initcli defaults Dense Conv2D BatchNormalization \\
          --framework keras,torch,flax
    """
    from initcli import public
    from initcli.render import printing, tables

    chosen: Any = [name.strip() for name in frameworks.split(",") if name.strip()]
    report = public.defaults(layers, frameworks=chosen, source=cast(Literal["table", "keras"], source))
    printing.print_report(report, output_format, columns, functools.partial(tables.defaults_renderables, report), wide)


@cli.command()
@click.option("--values", "values", type=ValuesType(), metavar="X,Y,...", help="The batch (one feature), e.g. 0,1.4.")
@click.option("--shape", type=BATCH_SHAPE, help="Draw the batch instead: shape (batch, ..., features).")
@click.option("--init", "init_name", default="random_normal", show_default=True, help="Initializer to draw with.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--momentum", type=UNIT_INTERVAL, default=0.99, show_default=True)
@click.option("--epsilon", type=POSITIVE_FLOAT, default=1e-3, show_default=True)
@click.option(
    "--steps", type=click.IntRange(1, 10_000), default=1, show_default=True, help="Training steps that see this batch."
)
@click.option(
    "--keras",
    "keras_version",
    type=click.Choice(("2", "3")),
    default="3",
    show_default=True,
    help="3: Keras 3; 2: tf_keras (TF <= 2.15), whose fused kernel (rank 4-5 input) adds Bessel's n/(n-1).",
)
@click.option(
    "--input-rank",
    type=click.IntRange(2, 5),
    help="Rank of the layer's input for --values (e.g. 4: a (n,1,1,1) image batch); default 2.",
)
@click.option("--unfused", is_flag=True, help="Keras 2's fused=False: the unfused rule on any rank.")
@output_options
def batchnorm(
    values: np.ndarray | None,
    shape: tuple[int, ...] | None,
    init_name: str,
    seed: int,
    momentum: float,
    epsilon: float,
    steps: int,
    keras_version: str,
    input_rank: int | None,
    unfused: bool,
    output_format: str,
    columns: str | None,
    wide: bool,
) -> None:
    """Show step by step what Keras's BatchNormalization does with a batch.

    Batch mean and biased variance, the moving mean and variance after each step from their
    initial zeros and ones (moving = moving·momentum + batch·(1 − momentum)), and the outputs in
    training mode (batch statistics) and inference mode (moving statistics).

    \b
    Example:
      initcli batchnorm --values 0,1.405974 --momentum 0.5
      initcli batchnorm --values 0,1.4,0.3,2 --keras 2 --input-rank 4
    """
    from initcli import public
    from initcli.render import printing, tables

    report = public.batchnorm(
        values,
        shape=shape,
        init=init_name,
        seed=seed,
        momentum=momentum,
        epsilon=epsilon,
        steps=steps,
        keras=2 if keras_version == "2" else 3,
        input_rank=input_rank,
        unfused=unfused,
    )
    printing.print_report(report, output_format, columns, functools.partial(tables.batchnorm_renderables, report), wide)


# Short runs whose memory is bounded by what they draw: no cyclic GC (see the module docstring). The
# commands that read models keep it.
_NO_CYCLIC_GC = frozenset({"sample", "list", "explain"})


def main() -> None:
    """Console-script entry point."""
    # A file-size limit (ulimit -f) then fails a write with "File too large" instead of killing the process.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    # One OpenBLAS thread unless the user asks for more: numpy starts its pool at import (issue #25:
    # ~20 ms of CPU a run, more beside busy processes), and initcli's statistics avoid BLAS.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if sys.argv[1:2] and sys.argv[1] in _NO_CYCLIC_GC:
        gc.disable()
    refuse_closed_stdout()
    cli(prog_name="initcli")
