"""The command line: a thin Click layer over the core. Commands wire records to renderers."""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import numpy as np

from initcli import __version__, tables
from initcli.assessment import FLAT_COLUMNS, assess, flat_fields
from initcli.checks import CHECKS
from initcli.errors import BadInputError, ExitCode, InitcliError
from initcli.explanation import explain_lines
from initcli.initializers import KINDS, check_request, resolve
from initcli.output import (
    FORMATS,
    SCHEMA_VERSION,
    format_value,
    render_csv,
    render_json,
    render_markdown,
    render_rows_table,
    stderr_console,
    stdout_console,
)
from initcli.rng.stateless import FLOAT_DTYPES
from initcli.sampling import ENGINES, draw_whole, iter_chunks, keras_default_seed
from initcli.stats import DEFAULT_ALPHA
from initcli.theory import theory_for

if TYPE_CHECKING:
    pass


class ShapeType(click.ParamType):
    """A tensor shape: 3x3x64x128, 3,3,64,128, (3, 3, 64, 128), 784x256, or () for a scalar."""

    name = "shape"

    def convert(self, value: Any, param: Any, ctx: Any) -> tuple[int, ...]:
        if isinstance(value, tuple):
            return value
        text = str(value).strip()
        inner = text[1:-1] if text.startswith("(") and text.endswith(")") else text
        inner = inner.strip()
        if inner in ("", "scalar"):
            return ()
        parts = [p.strip() for p in re.split(r"[x,×]", inner)]
        if parts and parts[-1] == "" and "," in inner:
            parts = parts[:-1]  # "(3,)" is a one-element tuple
        dims = []
        for part in parts:
            if not re.fullmatch(r"[+-]?\d+", part):
                self.fail(f"{text!r}: dimension {part!r} is not an integer", param, ctx)
            dim = int(part)
            if dim <= 0:
                self.fail(f"{text!r}: dimension {part} must be positive", param, ctx)
            dims.append(dim)
        return tuple(dims)


class AxesType(click.ParamType):
    name = "axes"

    def convert(self, value: Any, param: Any, ctx: Any) -> list[int]:
        if isinstance(value, list):
            return value
        try:
            return [int(p) for p in str(value).split(",") if p.strip()]
        except ValueError:
            self.fail(f"{value!r} is not a comma-separated list of integer axes", param, ctx)


SHAPE = ShapeType()


def output_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The --format and --columns options every data command shares."""
    command = click.option(
        "--columns",
        "columns",
        metavar="NAME,...",
        help="csv/markdown: only these columns, in this order (see the README for the names).",
    )(command)
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="table for people; json, csv or markdown for scripts (see the README's contract).",
    )(command)


def _select_columns(requested: str | None, available: tuple[str, ...]) -> tuple[str, ...]:
    if not requested:
        return available
    names = tuple(name.strip() for name in requested.split(",") if name.strip())
    unknown = [name for name in names if name not in available]
    if unknown or not names:
        raise click.BadParameter(
            f"unknown column(s) {', '.join(unknown) or '(none given)'}; available: {', '.join(available)}",
            param_hint="'--columns'",
        )
    return names


class InitcliGroup(click.Group):
    """Translates domain errors into one-line messages and documented exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BadInputError as error:
            raise click.UsageError(str(error), ctx) from None
        except InitcliError as error:
            exception = click.ClickException(str(error))
            exception.exit_code = int(error.exit_code)
            raise exception from None
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            raise click.exceptions.Exit(ExitCode.INTERRUPTED) from None
        except BrokenPipeError:
            # The reader went away (e.g. `| head`); stop quietly.
            sys.stderr.close()
            raise click.exceptions.Exit(ExitCode.OK) from None
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as error:  # noqa: BLE001 - last line of defence: never a traceback
            if os.environ.get("INITCLI_DEBUG"):
                raise
            exception = click.ClickException(
                f"internal error: {type(error).__name__}: {error} (set INITCLI_DEBUG=1 for a traceback)"
            )
            raise exception from None


@click.group(cls=InitcliGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="initcli")
def cli() -> None:
    """Inspect what Keras initializes weights with, and whether they look right.

    \b
    Exit codes: 0 ok, 1 runtime error, 2 usage error, 3 a check failed, 130 interrupted.
    Example: initcli sample --init glorot_normal --shape 3x3x64x128 --seed 0
    """


def _echo_json(payload: dict[str, Any]) -> None:
    """Print one JSON object with its schema_version: indented on a terminal, compact for scripts."""
    indent = 2 if sys.stdout.isatty() else None
    click.echo(render_json({"schema_version": SCHEMA_VERSION, **payload}, indent))


def _emit(
    output_format: str,
    payload: dict[str, Any],
    rows: list[dict[str, Any]],
    columns: tuple[str, ...],
    table: Callable[[], Any],
) -> None:
    columns = _select_columns(click.get_current_context().params.get("columns"), columns)
    if output_format == "json":
        _echo_json(payload)
    elif output_format == "csv":
        click.echo(render_csv(rows, columns), nl=False)
    elif output_format == "markdown":
        click.echo(render_markdown(rows, columns), nl=False)
    else:
        console = stdout_console()
        for renderable in table():
            console.print(renderable)


def _save_values(path: Path, shape: tuple[int, ...], dtype: str, chunks: Any, force: bool) -> Any:
    """Write chunks into an .npy file as they stream by, and pass them on."""
    from numpy.lib.format import open_memmap

    if path.exists() and not force:
        raise InitcliError(f"{path} already exists; pass --force to overwrite it.")
    if path.is_dir():
        raise InitcliError(f"{path} is a directory.")
    # .npy has no bfloat16 type numpy can read back without ml_dtypes; float32 holds it exactly.
    store_dtype = np.float32 if dtype == "bfloat16" else np.dtype(dtype)
    temporary = path.with_name(path.name + ".partial")
    try:
        array = open_memmap(temporary, mode="w+", dtype=store_dtype, shape=shape)
    except OSError as error:
        raise InitcliError(f"Cannot write {path}: {error.strerror}") from None
    flat = array.reshape(-1)
    position = 0
    try:
        for chunk in chunks:
            flat[position : position + chunk.size] = chunk
            position += chunk.size
            yield chunk
        array.flush()
        del array, flat
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


@cli.command()
@click.option(
    "--init",
    "init_name",
    required=True,
    metavar="NAME",
    help="Initializer: snake or Camel name or alias (glorot_normal, HeUniform, xavier_uniform).",
)
@click.option("--shape", type=SHAPE, required=True, help="Tensor shape: 3x3x64x128, 3,3,64,128 or '(3, 3, 64, 128)'.")
@click.option("--seed", type=int, help="Keras seed. Without it, a random seed is drawn as Keras does.")
@click.option("--dtype", type=click.Choice(FLOAT_DTYPES), default="float32", show_default=True)
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default="numpy",
    show_default=True,
    help="numpy: initcli's bit-exact reproduction (no TensorFlow); keras: call Keras itself.",
)
@click.option("--scale", type=float, help="VarianceScaling scale (> 0).")
@click.option("--mode", help="VarianceScaling mode: fan_in, fan_out or fan_avg.")
@click.option("--distribution", help="VarianceScaling distribution: truncated_normal, untruncated_normal, uniform.")
@click.option("--mean", type=float, help="RandomNormal/TruncatedNormal mean.")
@click.option("--stddev", type=float, help="RandomNormal/TruncatedNormal stddev (of the normal before truncation).")
@click.option("--minval", type=float, help="RandomUniform lower bound.")
@click.option("--maxval", type=float, help="RandomUniform upper bound.")
@click.option("--gain", type=float, help="Orthogonal/Identity gain.")
@click.option("--value", type=float, help="Constant value.")
@click.option("--input-axes", type=AxesType(), help="Axes counted in fan_in, e.g. 0,1 (with --output-axes).")
@click.option("--output-axes", type=AxesType(), help="Axes counted in fan_out, e.g. 2.")
@click.option(
    "--alpha",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=DEFAULT_ALPHA,
    show_default=True,
    help="False-alarm rate of the 'inconsistent' verdict.",
)
@click.option("--save", "save_path", type=click.Path(path_type=Path), help="Write the drawn values to this .npy file.")
@click.option("--force", is_flag=True, help="Allow --save to overwrite an existing file.")
@click.option("--hist", is_flag=True, help="Show a histogram of the sample next to the theoretical density.")
@output_options
def sample(
    init_name: str,
    shape: tuple[int, ...],
    seed: int | None,
    dtype: str,
    engine: str,
    alpha: float,
    save_path: Path | None,
    force: bool,
    hist: bool,
    output_format: str,
    columns: str | None,
    **parameters: Any,
) -> None:
    """Draw exactly what a Keras initializer draws, and compare it with the theory.

    \b
    Example:
      initcli sample --init glorot_normal --shape 3x3x64x128 --seed 0
      initcli sample --init he_uniform --shape 784x256 --seed 1 --format json
    """
    spec = resolve(init_name, **parameters)
    check_request(spec, shape, dtype)
    theory = theory_for(spec, shape, dtype)
    notes = []
    effective_seed = seed if seed is not None else spec.seed
    reproducible = effective_seed is not None
    if effective_seed is None:
        effective_seed = keras_default_seed()
        notes.append(
            f"No --seed: values are not reproducible. Keras would pick a random seed; this run "
            f"used {effective_seed} (pass --seed {effective_seed} to draw them again)."
        )
    total = math.prod(shape)
    whole: np.ndarray | None = None
    if engine == "keras" or spec.class_name in ("Orthogonal", "Identity", "Constant", "Zeros", "Ones"):
        from initcli.sampling import draw

        whole = draw(spec, shape, dtype, effective_seed, engine)
        chunks: Any = [whole.reshape(-1)]
    else:
        chunks = iter_chunks(spec, shape, dtype, effective_seed)
    if save_path is not None:
        chunks = _save_values(save_path, shape, dtype, chunks, force)
    expected = None
    if spec.class_name in ("Identity", "Constant", "Zeros", "Ones"):
        expected = draw_whole(spec, shape, "float64", effective_seed)
    assessment = assess(chunks, total, theory, dtype, expected=expected, whole=whole, alpha=alpha)
    if save_path is not None:
        note = f"Saved {total} values to {save_path}"
        notes.append(note + (" as float32 (exact for bfloat16)." if dtype == "bfloat16" else "."))

    payload = {
        "initializer": spec.to_dict(),
        "shape": list(shape),
        "dtype": dtype,
        "seed": effective_seed,
        "reproducible": reproducible,
        "engine": engine,
        "fan_in": theory.fan_in,
        "fan_out": theory.fan_out,
        **assessment.to_dict(),
        "notes": notes,
    }
    row = {
        "initializer": spec.class_name,
        "config": spec.config,
        "shape": list(shape),
        "dtype": dtype,
        "seed": effective_seed,
        **flat_fields(assessment),
    }
    columns = ("initializer", "config", "shape", "dtype", "seed", *FLAT_COLUMNS)

    def renderables() -> list[Any]:
        from rich.text import Text

        title = (
            f"{tables.describe_spec(spec)} · shape {format_value(list(shape)) or '()'} · {dtype} · "
            f"seed {effective_seed} · fan_in {theory.fan_in}, fan_out {theory.fan_out}"
        )
        out: list[Any] = [tables.assessment_table(assessment, title)]
        if hist:
            out.append(tables.histogram_table(assessment))
        out += [Text(note, style="dim") for note in notes]
        return out

    _emit(output_format, payload, [row], columns, renderables)


@cli.command(name="list")
@output_options
def list_command(output_format: str, columns: str | None) -> None:
    """List every Keras initializer initcli knows, with aliases, parameters and formula.

    \b
    Example:
      initcli list --format markdown
    """
    rows = [
        {
            "class_name": kind.class_name,
            "name": kind.snake_name,
            "aliases": ", ".join(kind.aliases),
            "parameters": ", ".join(f"{k}={v!r}" for k, v in kind.defaults.items()),
            "formula": kind.formula,
        }
        for kind in KINDS
    ]
    columns = ("class_name", "name", "aliases", "parameters", "formula")
    _emit(
        output_format,
        {"initializers": rows},
        rows,
        columns,
        lambda: [render_rows_table(rows, columns, title="Keras 3 built-in initializers")],
    )


@cli.command()
@click.argument("name")
@click.option("--shape", type=SHAPE, help="Plug in the numbers for this shape.")
@click.option("--dtype", type=click.Choice(FLOAT_DTYPES), default="float32", show_default=True)
@click.option("--scale", type=float)
@click.option("--mode")
@click.option("--distribution")
@click.option("--mean", type=float)
@click.option("--stddev", type=float)
@click.option("--minval", type=float)
@click.option("--maxval", type=float)
@click.option("--gain", type=float)
@click.option("--value", type=float)
@output_options
def explain(
    name: str, shape: tuple[int, ...] | None, dtype: str, output_format: str, columns: str | None, **parameters: Any
) -> None:
    """Explain an initializer's formula, with the numbers for a shape plugged in.

    \b
    Example:
      initcli explain glorot_uniform --shape 3x3x64x128
    """
    spec = resolve(name, **parameters)
    if shape is not None:
        check_request(spec, shape, dtype)
    lines = explain_lines(spec, shape, dtype)
    theory = theory_for(spec, shape, dtype) if shape is not None else None
    payload = {
        "initializer": spec.to_dict(),
        "formula": spec.kind.formula,
        "shape": None if shape is None else list(shape),
        "dtype": dtype,
        "fan_in": theory.fan_in if theory else None,
        "fan_out": theory.fan_out if theory else None,
        "theory": theory.to_dict() if theory else None,
        "explanation": lines,
    }
    row = {
        "initializer": spec.class_name,
        "shape": None if shape is None else list(shape),
        "fan_in": payload["fan_in"],
        "fan_out": payload["fan_out"],
        "formula": spec.kind.formula,
        "distribution": theory.distribution if theory else None,
        "theory_mean": theory.mean if theory else None,
        "theory_std": theory.std if theory else None,
        "theory_limit": theory.limit if theory else None,
        "stddev_param": theory.stddev_param if theory else None,
    }

    def renderables() -> list[Any]:
        from rich.text import Text

        return [Text("\n".join(lines))]

    _emit(output_format, payload, [row], tuple(row), renderables)


INSPECT_COLUMNS = (
    "path",
    "layer",
    "layer_class",
    "weight",
    "shape",
    "dtype",
    "initializer",
    "default_initializer",
    "is_default",
    *FLAT_COLUMNS,
)


def _inspect_flat(row: Any) -> dict[str, Any]:
    record = row.record
    configured = row.initializer if row.initializer is not None else record.initializer
    return {
        "path": record.path,
        "layer": record.layer,
        "layer_class": record.layer_class,
        "weight": record.weight,
        "shape": list(record.shape),
        "dtype": record.dtype,
        "initializer": tables.initializer_label(configured),
        "default_initializer": tables.initializer_label(row.default),
        "is_default": row.is_default,
        **flat_fields(row.assessment),
        "fan_in": row.fan_in,
        "fan_out": row.fan_out,
    }


def _totals(rows: list[Any]) -> dict[str, Any]:
    verdicts: dict[str, int] = {}
    for row in rows:
        verdicts[row.assessment.verdict] = verdicts.get(row.assessment.verdict, 0) + 1
    return {"weights": len(rows), "parameters": sum(math.prod(row.record.shape) for row in rows), "verdicts": verdicts}


def _is_function_reference(text: str) -> bool:
    from initcli.building import is_function_reference

    return is_function_reference(text)


def _collect_rows(records: Any, output_format: str) -> list[Any]:
    rows = []
    if sys.stderr.isatty() and output_format == "table":
        with stderr_console().status("inspecting weights...") as status:
            for row in records:
                rows.append(row)
                status.update(f"inspecting weights... {len(rows)} done, last {row.record.path}")
        return rows
    return list(records)


def _fresh_rows(saved: Any, seed: int | None, patterns: tuple[str, ...], alpha: float, scratch: Path) -> dict:
    from initcli import building
    from initcli.inspection import inspect_records
    from initcli.readers import open_model

    if saved.config is None:
        raise InitcliError(f"--fresh needs the model config of a .keras file; {saved.source} has none")
    rebuilt = open_model(building.save_temporary(building.rebuild_fresh(saved.config, seed), scratch))
    try:
        return {row.record.path: row for row in inspect_records(rebuilt.records(), patterns, alpha)}
    finally:
        rebuilt.close()


@cli.command(name="inspect")
@click.argument("model", required=False)
@click.option(
    "--spec",
    "spec_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Build the model from a YAML/JSON spec or a Keras model JSON (needs TensorFlow).",
)
@click.option("--seed", type=int, help="With a spec, a function or --fresh: keras.utils.set_random_seed(SEED).")
@click.option(
    "--fresh", is_flag=True, help="Also rebuild the saved model from its config, freshly initialized, and compare."
)
@click.option(
    "--layer",
    "patterns",
    multiple=True,
    metavar="PATTERN",
    help="Only weights whose path or layer name matches (glob, or plain text inside). Repeatable.",
)
@click.option(
    "--alpha",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=DEFAULT_ALPHA,
    show_default=True,
    help="False-alarm rate of the 'inconsistent' verdict.",
)
@output_options
def inspect_command(
    model: str | None,
    spec_path: Path | None,
    seed: int | None,
    fresh: bool,
    patterns: tuple[str, ...],
    alpha: float,
    output_format: str,
    columns: str | None,
) -> None:
    """One row per weight of a model: fans, initializer, default, theory, sample, verdict.

    MODEL is a .keras archive, a legacy .h5 model or a .weights.h5 file (read without TensorFlow,
    executing nothing from the file), or `package.module:function` / `path/file.py:function`
    returning a Keras model (built with TensorFlow). --spec builds one from a spec file.

    \b
    Example:
      initcli inspect examples/models/mlp.keras
      initcli inspect --spec examples/specs/mlp.yaml --seed 0
      initcli inspect examples/model_code.py:build_model --seed 0
    """
    import tempfile

    from initcli.inspection import inspect_records
    from initcli.readers import open_model

    if (model is None) == (spec_path is None):
        raise click.UsageError("Give a MODEL (file or module:function) or --spec FILE, exactly one.")
    notes: list[str] = []
    built_from = None
    with tempfile.TemporaryDirectory(prefix="initcli-") as scratch:
        if spec_path is not None or (model is not None and _is_function_reference(model)):
            from initcli import building

            if fresh:
                raise click.UsageError(
                    "--fresh compares a saved model with a rebuilt one; a spec or function is already fresh."
                )
            if spec_path is not None:
                built = building.build_from_spec(spec_path, seed)
                built_from = {"kind": "spec", "source": str(spec_path)}
            else:
                built = building.build_from_function(str(model), seed)
                built_from = {"kind": "function", "source": str(model)}
            built_from.update({"seed": seed, "reproducible": seed is not None})
            notes.append(
                f"Built freshly from {built_from['kind']} {built_from['source']}; "
                + (
                    f"seed {seed} (keras.utils.set_random_seed): reproducible."
                    if seed is not None
                    else "no --seed: the values are not reproducible."
                )
            )
            saved = open_model(building.save_temporary(built, Path(scratch)))
            saved.source = built_from["source"]
            saved.format = built_from["kind"]
        else:
            saved = open_model(Path(str(model)))
        try:
            rows = _collect_rows(inspect_records(saved.records(), patterns, alpha), output_format)
            fresh_rows = {}
            if fresh:
                fresh_rows = _fresh_rows(saved, seed, patterns, alpha, Path(scratch))
                notes.append(
                    "fresh: the model rebuilt from its config and re-initialized"
                    + (f" with seed {seed}" if seed is not None else " (no --seed: not reproducible)")
                )
        finally:
            saved.close()
    totals = _totals(rows)
    notes = list(saved.notes) + notes
    if patterns and not rows:
        notes.append(f"no weight matches {', '.join(patterns)}")
    weights = []
    for row in rows:
        entry = row.to_dict()
        if fresh:
            fresh_row = fresh_rows.get(row.record.path)
            entry["fresh"] = (
                None
                if fresh_row is None
                else {"sample": fresh_row.assessment.sample.to_dict(), "verdict": fresh_row.assessment.verdict}
            )
        weights.append(entry)
    payload = {
        "source": saved.source,
        "format": saved.format,
        "keras_version": saved.keras_version,
        "weights": weights,
        "totals": totals,
        "notes": notes,
    }
    if built_from is not None:
        payload["built"] = built_from

    def renderables() -> list[Any]:
        from rich.text import Text

        title = f"{saved.source} · {saved.format} · Keras {saved.keras_version or 'unknown'}"
        out: list[Any] = [tables.inspect_table(rows, title, fresh_rows if fresh else None)]
        verdicts = ", ".join(f"{count} {verdict}" for verdict, count in sorted(totals["verdicts"].items()))
        out.append(Text(f"{totals['weights']} weights, {totals['parameters']:,} parameters: {verdicts or 'none'}"))
        footnotes = [f"* {row.record.path}: {'; '.join(row.notes)}" for row in rows if row.notes]
        settings = [
            f"{row.record.layer}: " + ", ".join(f"{k}={v}" for k, v in row.record.settings.items())
            for row in rows
            if row.record.settings
        ]
        out += [Text(line, style="dim") for line in dict.fromkeys(footnotes + settings + notes)]
        return out

    _emit(output_format, payload, [_inspect_flat(row) for row in rows], INSPECT_COLUMNS, renderables)


@cli.command()
@click.argument("model", type=click.Path(path_type=Path, dir_okay=True))
@click.option("--only", multiple=True, type=click.Choice(CHECKS), help="Run only these checks (repeatable).")
@click.option("--skip", multiple=True, type=click.Choice(CHECKS), help="Skip these checks (repeatable).")
@click.option(
    "--alpha",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=DEFAULT_ALPHA,
    show_default=True,
    help="False-alarm rate of the distribution check for the whole model.",
)
@click.option("--strict", is_flag=True, help="Treat warnings (fan caveats) as failures.")
@click.option(
    "--rules",
    "rules_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="YAML or JSON file of per-layer expectations (see the README).",
)
@click.option("--layer", "patterns", multiple=True, metavar="PATTERN", help="Only weights matching (as inspect).")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(("text", "json", "github")),
    default="text",
    show_default=True,
    help="text: one line per finding; json; github: Actions ::error annotations.",
)
def check(
    model: Path,
    only: tuple[str, ...],
    skip: tuple[str, ...],
    alpha: float,
    strict: bool,
    rules_path: Path | None,
    patterns: tuple[str, ...],
    output_format: str,
) -> None:
    """Gate a build on a freshly initialized model: exit 0 if every check passes, 3 if any fails.

    \b
    Checks: distribution, nonfinite, constant, duplicate, fans (a warning unless --strict), rules.
    The distribution check's --alpha is for the whole model: each weight is tested at
    alpha / (number of weights). Trained weights fail it by design.
    \b
    Example:
      initcli check examples/models/cnn.keras --format github
    """
    from initcli.checks import github_annotation, load_rules, run_checks, summary
    from initcli.inspection import inspect_records
    from initcli.readers import open_model

    selected = [name for name in (only or CHECKS) if name not in skip]
    rules = load_rules(rules_path) if rules_path is not None else []
    if "rules" in selected and rules_path is None:
        selected.remove("rules")
    saved = open_model(model)
    try:
        # Records are lazy (values are read when inspected): one walk gives the count and the rows.
        records = list(saved.records())
        per_weight_alpha = alpha / max(1, len(records))
        rows = list(inspect_records(iter(records), patterns, per_weight_alpha, digest="duplicate" in selected))
    finally:
        saved.close()
    findings = run_checks(rows, selected, strict, rules)
    result = summary(rows, findings)
    if output_format == "json":
        _echo_json(
            {
                "source": saved.source,
                "checks": selected,
                "alpha": alpha,
                "strict": strict,
                **result,
                "findings": [f.to_dict() for f in findings],
            }
        )
    elif output_format == "github":
        for finding in findings:
            click.echo(github_annotation(finding, saved.source))
    else:
        for finding in findings:
            click.echo(f"{finding.severity}: {finding.path}: [{finding.check}] {finding.message}")
        verdict = "passed" if result["passed"] else "FAILED"
        click.echo(
            f"{saved.source}: {verdict}: {result['weights']} weights checked "
            f"({', '.join(selected) or 'no checks'}), {result['errors']} errors, {result['warnings']} warnings",
            err=True,
        )
    if not result["passed"]:
        raise click.exceptions.Exit(ExitCode.CHECK_FAILED)


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
def defaults(layers: tuple[str, ...], frameworks: str, source: str, output_format: str, columns: str | None) -> None:
    """Default initializer of every initializer argument of Keras layers (or the ones named).

    \b
    Example:
      initcli defaults Dense Conv2D BatchNormalization --framework keras,torch,flax
    """
    from initcli.defaults import FRAMEWORKS, default_rows

    chosen = [name.strip() for name in frameworks.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in FRAMEWORKS]
    if unknown or not chosen:
        raise click.BadParameter(
            f"unknown framework(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(FRAMEWORKS)}",
            param_hint="'--framework'",
        )
    rows = default_rows(layers, chosen, source)
    columns_all = ("layer", "argument", "default", "formula", "settings", *[name for name in chosen if name != "keras"])
    _emit(
        output_format,
        {"source": source, "defaults": rows},
        rows,
        columns_all,
        lambda: [render_rows_table(rows, _select_columns(columns, columns_all), title="Keras default initializers")],
    )


@cli.command()
@click.option("--values", "values_text", metavar="X,Y,...", help="The batch (one feature), e.g. 0,1.405974.")
@click.option("--shape", type=SHAPE, help="Draw the batch instead: shape (batch, ..., features).")
@click.option("--init", "init_name", default="random_normal", show_default=True, help="Initializer to draw with.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--momentum", type=click.FloatRange(0, 1), default=0.99, show_default=True)
@click.option("--epsilon", type=click.FloatRange(0, min_open=True), default=1e-3, show_default=True)
@click.option(
    "--steps", type=click.IntRange(1, 10_000), default=1, show_default=True, help="Training steps that see this batch."
)
@output_options
def batchnorm(
    values_text: str | None,
    shape: tuple[int, ...] | None,
    init_name: str,
    seed: int,
    momentum: float,
    epsilon: float,
    steps: int,
    output_format: str,
    columns: str | None,
) -> None:
    """Show step by step what Keras's BatchNormalization does with a batch.

    Batch mean and biased variance, the moving mean and variance after each step from their
    initial zeros and ones (moving = moving·momentum + batch·(1 − momentum)), and the outputs in
    training mode (batch statistics) and inference mode (moving statistics).

    \b
    Example:
      initcli batchnorm --values 0,1.405974 --momentum 0.5
    """
    from initcli.batchnorm import explain as explain_batchnorm

    if (values_text is None) == (shape is None):
        raise click.UsageError("Give the batch with --values or draw one with --shape (exactly one of them).")
    if values_text is not None:
        try:
            batch = np.array([float(v) for v in values_text.split(",")], dtype=np.float64)
        except ValueError:
            raise click.BadParameter(
                f"{values_text!r} is not a comma-separated list of numbers", param_hint="'--values'"
            ) from None
        if not np.all(np.isfinite(batch)):
            raise click.BadParameter("values must be finite", param_hint="'--values'")
    else:
        assert shape is not None
        if len(shape) < 1:
            raise click.BadParameter("a batch needs at least one dimension", param_hint="'--shape'")
        from initcli.sampling import draw

        batch = draw(resolve(init_name), shape, "float32", seed).astype(np.float64)
    history, training, inference = explain_batchnorm(batch, momentum, epsilon, steps)
    rows = [
        {
            "step": s.step,
            "feature": f,
            "batch_mean": s.batch_mean[f],
            "batch_variance": s.batch_variance[f],
            "moving_mean": s.moving_mean[f],
            "moving_variance": s.moving_variance[f],
        }
        for s in history
        for f in range(len(s.batch_mean))
    ]
    payload = {
        "momentum": momentum,
        "epsilon": epsilon,
        "steps": steps,
        "batch": batch.tolist(),
        "history": rows,
        "training_output": training.tolist(),
        "inference_output": inference.tolist(),
    }
    columns_all = ("step", "feature", "batch_mean", "batch_variance", "moving_mean", "moving_variance")

    def renderables() -> list[Any]:
        from rich.text import Text

        shown = rows if len(rows) <= 40 else rows[:20] + rows[-20:]
        explanation = Text(
            f"moving = moving·{momentum:g} + batch·{1 - momentum:g}, starting from moving_mean 0 and "
            f"moving_variance 1; variance is the batch's biased (population) variance; epsilon {epsilon:g}.\n"
            f"training output = (x − batch_mean)/sqrt(batch_variance + ε); inference output = "
            f"(x − moving_mean)/sqrt(moving_variance + ε) (gamma 1, beta 0).\n"
            f"training output (first values): {np.round(training.reshape(-1)[:6], 6).tolist()}\n"
            f"inference output after {steps} step(s) (first values): {np.round(inference.reshape(-1)[:6], 6).tolist()}"
        )
        return [
            render_rows_table(shown, _select_columns(columns, columns_all), title="BatchNormalization"),
            explanation,
        ]

    _emit(output_format, payload, rows, columns_all, renderables)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="initcli")


from initcli.propagate.command import propagate_command  # noqa: E402

cli.add_command(propagate_command)
