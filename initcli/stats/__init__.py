"""What an initializer should produce and what it did: theory, sample statistics, tests, verdicts.

Owns: the distributions' theory (`theory`: mean, std, bounds of normal, truncated normal, uniform),
moments of canonical blocks and their merging, for every chunked or distributed path
(`chunkmoments`), streaming statistics and samples of a weight (`moments`), significance tests and multiple-testing
adjustment (`significance`), how a weight is compared with its theory (`comparisons`) and the
verdict of a weight (`assessment`).

May import: `initcli.types`, `initcli.errors`, `initcli.parallel`. Nothing about Keras or files.
"""
