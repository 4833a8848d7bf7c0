"""The work behind the commands: judging a model's weights, the CI checks, drawing samples.

Owns: `inspect`'s per-weight rows and verdicts (`inspection`), `check`'s findings and rules
(`checks`), drawing an initializer's values with the numpy engine or Keras (`sampling`) and a spec's
initial weights on Keras 3's JAX and torch backends without any framework (`predicted`).

May import: `initcli.readers`, `initcli.initializers`, `initcli.stats`, `initcli.keras`,
`initcli.propagate`, `initcli.rng`, `initcli.parallel`, `initcli.safety`. Never the renderers or the
command line.
"""
