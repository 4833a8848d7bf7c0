"""What an initializer is and does: one module per family, and everything Keras-independent about them.

Owns: the families (`base.Family` and one module each: `random`, `variance_scaling`, `orthogonal`,
`identity`, `constant`, `stft`, `elementwise` for what the random ones share), their registry
(`registry`), resolving names and configs into specs (`spec`), fans (`fans`), seeds (`seeding`),
and what a family answers for `explain` (`explanation`, `snippets`) and other frameworks
(`equivalents`). A new initializer is a `Family` subclass in one module of this package and one line
in `registry.FAMILIES`.

May import: `initcli.errors`, `initcli.types`, `initcli.stats`, `initcli.rng`, `initcli.parallel`.
Never the readers, the analysis, the renderers or the command line.
"""

from __future__ import annotations

from initcli.initializers.base import DEFAULT_CHUNK_ELEMENTS, Family, InitializerKind
from initcli.initializers.registry import FAMILIES, KINDS, all_names, family_of, find_kind
from initcli.initializers.spec import InitializerSpec, check_request, resolve, seed_from_config

__all__ = [
    "DEFAULT_CHUNK_ELEMENTS",
    "FAMILIES",
    "KINDS",
    "Family",
    "InitializerKind",
    "InitializerSpec",
    "all_names",
    "check_request",
    "family_of",
    "find_kind",
    "resolve",
    "seed_from_config",
]
