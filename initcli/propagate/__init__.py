"""Propagating a signal through a model: its graph, the static prediction, a measured run, the verdict.

Owns: the layer graph (`graph`), the Gaussian moment rules (`gaussian`), the static prediction
(`static`), the measured forward pass (`measure`, `run`), assembling and judging the report (`assemble`,
`verdict`, `report`).

May import: the layers below it (`initcli.keras`, `initcli.initializers`, `initcli.stats`,
`initcli.rng`, `initcli.safety`, `initcli.errors`, `initcli.types`). One documented exception in the
import contract (pyproject's `[tool.importlinter]`): `run` draws the starting weights with
`initcli.analysis.sampling`, lazily, although `initcli.analysis` sits above it.
"""
