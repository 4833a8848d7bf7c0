"""Work spread over processes, and the scratch memory the numeric kernels reuse.

Owns: the one fan-out of independent tasks to forked processes (`fanout`: a model's weights for
inspect, a large draw's pieces for `initcli.rng.parallel`) and per-thread scratch buffers (`scratch`).

May import: `initcli.errors` only.
"""
