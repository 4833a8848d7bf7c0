"""A numpy reproduction of TensorFlow's stateless random number generation (CPU, Philox4x32-10).

`philox` generates the raw 32-bit words, `glibc` holds exact ports of the C library's float32
`logf`/`sincosf` that TensorFlow's Box-Muller step calls, and `stateless` turns words into
uniform, normal and truncated-normal values laid out exactly as TensorFlow lays them out.

May import: `initcli.parallel`, `initcli.safety`, `initcli.errors`, `initcli.types`.
"""
