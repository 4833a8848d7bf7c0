"""Readers turn a saved model into weight records, one weight at a time.

`open_model(path)` recognizes `.keras` archives, legacy `.h5` full models and `.weights.h5` files
by their content, never executes anything from them, and returns a `ModelFile` whose `records`
yield `WeightRecord`s in model order; a record's values are read only when asked for.

May import: `initcli.keras` (layer catalogue and eras), `initcli.initializers`, `initcli.stats`,
`initcli.rng`, `initcli.parallel`, `initcli.safety`, `initcli.errors`, `initcli.types`. Never the analysis,
the renderers or the command line.
"""

from initcli.readers.open import open_model
from initcli.readers.records import ModelFile, WeightRecord

__all__ = ["ModelFile", "WeightRecord", "open_model"]
