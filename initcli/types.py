"""The closed vocabularies of initcli's records: distributions, verdicts, tests, formats, checks.

Each is a `Literal` (so mypy checks every use) with the tuple of its values beside it (so the CLI's
choices and the JSON Schema's enums come from one place; a test keeps the schema equal to them).
"""

from __future__ import annotations

from typing import Literal, get_args

Distribution = Literal["normal", "truncated_normal", "uniform", "constant", "identity", "orthogonal", "stft"]
# "trained": far from the initializer in a model that training moved (see stats/assessment.py).
# "non-default": a weight inside a custom layer, judged against the Keras default of the class its
# structure shows (no config says its initializer), whose values do not look like that default.
Verdict = Literal["consistent", "suspicious", "inconsistent", "trained", "non-default", "n/a"]
# The test that decided a weight's verdict: a moment, the whole distribution, or an exact comparison.
DecisiveTest = Literal["mean", "std", "ks", "exact", "orthogonality", "nonfinite"]
OutputFormat = Literal["table", "json", "csv", "markdown"]
CheckFormat = Literal["text", "json", "github"]
CheckName = Literal["distribution", "nonfinite", "constant", "duplicate", "fans", "rules", "propagation"]
Severity = Literal["error", "warning"]
FileFormat = Literal[
    "keras", "h5", "weights.h5", "savedmodel", "tf-checkpoint", "sharded-weights", "safetensors", "kerashub-preset"
]
# Where a model came from when it was built rather than read: `inspect --spec` or `module:function`.
BuiltFrom = Literal["spec", "function"]
FloatDType = Literal["float16", "bfloat16", "float32", "float64"]
# How `sample` draws: initcli's bit-exact numpy engine, or Keras itself.
Engine = Literal["numpy", "keras"]

DISTRIBUTIONS: tuple[Distribution, ...] = get_args(Distribution)
VERDICTS: tuple[Verdict, ...] = get_args(Verdict)
DECISIVE_TESTS: tuple[DecisiveTest, ...] = get_args(DecisiveTest)
OUTPUT_FORMATS: tuple[OutputFormat, ...] = get_args(OutputFormat)
CHECK_FORMATS: tuple[CheckFormat, ...] = get_args(CheckFormat)
CHECK_NAMES: tuple[CheckName, ...] = get_args(CheckName)
FILE_FORMATS: tuple[FileFormat, ...] = get_args(FileFormat)
FLOAT_DTYPES: tuple[FloatDType, ...] = get_args(FloatDType)
ENGINES: tuple[Engine, ...] = get_args(Engine)

# The false-alarm rate of the 'inconsistent' verdict for a whole run, unless --alpha says otherwise.
DEFAULT_ALPHA = 1e-3
