"""`InitCheck`: a Keras callback that runs `initcli.check` on the model when training begins.

    model.fit(x, y, callbacks=[initcli.keras.InitCheck(on_fail="raise")])

It works with Keras 3 and tf_keras without importing either: it is a plain object with every hook
both libraries call (Keras only calls a callback's methods; tf_keras also asks which batch hooks it
implements). The check reads the live model as `initcli.check(model)` does.

It lives at the public API's level (it calls `initcli.public.check` and renders the findings) and is
also reachable as `initcli.keras.InitCheck`, which imports this module on first use.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from initcli.errors import BadInputError, ExitCode, InitcliError

if TYPE_CHECKING:
    from initcli.propagate.report import PropagateReport
    from initcli.reports import CheckReport
    from initcli.types import CheckName

OnFail = Literal["raise", "warn"]
FINDINGS_SHOWN = 20
FAILING_VERDICTS = ("exploding", "vanishing", "nan")


class InitCheckError(InitcliError):
    """The model failed `InitCheck`'s checks when training began; `report` holds the findings."""

    exit_code = ExitCode.CHECK_FAILED

    def __init__(self, message: str, report: CheckReport, propagation: PropagateReport | None = None) -> None:
        super().__init__(message)
        self.report = report
        self.propagation = propagation


class InitCheckWarning(UserWarning):
    """`InitCheck(on_fail="warn")` found problems with the model's initial weights."""


def failure_message(report: CheckReport, propagation: PropagateReport | None = None) -> str:
    """The findings as `initcli check` prints them (the first `FINDINGS_SHOWN`), then the summary; then
    the failing verdicts of the forward pass, if one ran."""
    from initcli.render.views import check_lines

    lines = check_lines(report)
    findings, summary = lines[:-1], lines[-1]
    shown = findings[:FINDINGS_SHOWN]
    if len(findings) > len(shown):
        shown.append(f"... and {len(findings) - len(shown)} more findings (InitCheck.report has them all)")
    passes = [] if propagation is None else _unstable(propagation)
    return "\n".join(["initcli InitCheck: the initial weights failed the checks", *shown, summary, *passes])


def _unstable(propagation: PropagateReport) -> list[str]:
    """`propagate: ...` for each verdict of the forward pass that fails (`n/a`, nothing to judge, does not)."""
    return [
        f"propagate: {verdict.message}"
        for run in propagation.runs
        for verdict in run.verdicts
        if verdict.kind in FAILING_VERDICTS
    ]


class InitCheck:
    """Check the model's initial weights when training begins, with `initcli.check`.

    Args:
        on_fail: `"raise"` raises `InitCheckError` (training does not start); `"warn"` warns with an
            `InitCheckWarning` and lets training go on.
        only: run only these checks (as `initcli.check`'s `only`), e.g. `["distribution", "propagation"]`.
        skip: leave these checks out.
        rules: a rule file, or the rules themselves (a list of mappings with a `layer` glob and
            any of `initializer`, `max_abs_mean`, `std_range`).
        propagate: also one training-mode forward pass (`initcli.propagate`, on a copy
            of the model): True feeds a batch of N(0, 1) inputs, an array (batch, *input_shape) feeds
            that batch. A verdict exploding, vanishing or nan fails.
        **options: any other keyword argument of `initcli.check` (`alpha`, `strict`, `layer`...).

    Attributes:
        report: the `CheckReport` of the last check, or None before training began.
        propagation: the `PropagateReport` of the last forward pass, or None.
    """

    def __init__(
        self,
        on_fail: OnFail = "raise",
        *,
        only: Sequence[CheckName] | None = None,
        skip: Sequence[CheckName] | None = None,
        rules: str | os.PathLike[str] | Sequence[Mapping[str, Any]] | None = None,
        propagate: bool | Any = False,
        **options: Any,
    ) -> None:
        if on_fail not in ("raise", "warn"):
            raise BadInputError(f"InitCheck: on_fail is 'raise' or 'warn'; received {on_fail!r}")
        if "alpha" in options:  # refused here, as `check` would, not when training begins
            from initcli.safety.numbers import parse_alpha

            options["alpha"] = parse_alpha(options["alpha"])
        self.on_fail = on_fail
        self.only = None if only is None else list(only)
        self.skip = None if skip is None else list(skip)
        self.rules = rules
        self.options = options
        self.propagate = propagate
        self.report: CheckReport | None = None
        self.propagation: PropagateReport | None = None
        self.model: Any = None
        self.params: dict[str, Any] = {}

    # Both libraries set these.
    def set_model(self, model: Any) -> None:
        self.model = model

    def set_params(self, params: Any) -> None:
        self.params = dict(params or {})

    def on_train_begin(self, logs: Any = None) -> None:
        """Check the model; raise or warn when a check fails."""
        from initcli.public import check

        if self.model is None:
            raise InitcliError("InitCheck: no model to check (is the callback passed to model.fit?)")
        report = check(self.model, only=self.only, skip=self.skip, rules=self.rules, **self.options)
        self.report = report
        propagation = None
        if self.propagate is not False:
            from initcli.public import propagate

            batch = "normal" if self.propagate is True else self.propagate
            propagation = propagate(self.model, input=batch, mode="training")
        self.propagation = propagation
        if report.passed and (propagation is None or not _unstable(propagation)):
            return
        message = failure_message(report, propagation)
        if self.on_fail == "raise":
            raise InitCheckError(message, report, propagation)
        warnings.warn(message, InitCheckWarning, stacklevel=2)

    # tf_keras asks which batch hooks a callback implements, and whether it takes TF logs.
    _supports_tf_logs = False

    def _implements_train_batch_hooks(self) -> bool:
        return False

    def _implements_test_batch_hooks(self) -> bool:
        return False

    def _implements_predict_batch_hooks(self) -> bool:
        return False

    # Every other hook does nothing.
    def on_train_end(self, logs: Any = None) -> None:
        pass

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        pass

    def on_batch_begin(self, batch: int, logs: Any = None) -> None:
        pass

    def on_batch_end(self, batch: int, logs: Any = None) -> None:
        pass

    def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
        pass

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        pass

    def on_test_begin(self, logs: Any = None) -> None:
        pass

    def on_test_end(self, logs: Any = None) -> None:
        pass

    def on_test_batch_begin(self, batch: int, logs: Any = None) -> None:
        pass

    def on_test_batch_end(self, batch: int, logs: Any = None) -> None:
        pass

    def on_predict_begin(self, logs: Any = None) -> None:
        pass

    def on_predict_end(self, logs: Any = None) -> None:
        pass

    def on_predict_batch_begin(self, batch: int, logs: Any = None) -> None:
        pass

    def on_predict_batch_end(self, batch: int, logs: Any = None) -> None:
        pass
