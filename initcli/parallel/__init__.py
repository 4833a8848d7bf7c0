"""Work spread over processes, and the scratch memory the numeric kernels reuse.

Owns: fanning a model's weights out to worker processes (`fanout`) and per-thread scratch buffers
(`scratch`).

May import: `initcli.errors` only.
"""
