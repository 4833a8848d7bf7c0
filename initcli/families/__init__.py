"""The registry of initializer families: every Keras 3 built-in initializer belongs to one.

Adding a family is one module (a `Family` subclass listing its `InitializerKind`s) and one line in
`FAMILIES`.
"""

from __future__ import annotations

from initcli.families.base import DEFAULT_CHUNK_ELEMENTS, Family, InitializerKind
from initcli.families.constant import ConstantFamily
from initcli.families.identity import IdentityFamily
from initcli.families.orthogonal import OrthogonalFamily
from initcli.families.random import RandomNormalFamily, RandomUniformFamily, TruncatedNormalFamily
from initcli.families.stft import STFTFamily
from initcli.families.variance_scaling import VarianceScalingFamily

FAMILIES: tuple[Family, ...] = (
    RandomNormalFamily(),
    TruncatedNormalFamily(),
    RandomUniformFamily(),
    VarianceScalingFamily(),
    OrthogonalFamily(),
    IdentityFamily(),
    ConstantFamily(),
    STFTFamily(),
)

_FAMILY_OF_CLASS: dict[str, Family] = {kind.class_name: family for family in FAMILIES for kind in family.kinds}
KINDS: tuple[InitializerKind, ...] = tuple(kind for family in FAMILIES for kind in family.kinds)


def family_of(class_name: str) -> Family:
    """The family serving a canonical Keras class name (as `resolve` produces)."""
    return _FAMILY_OF_CLASS[class_name]


__all__ = ["DEFAULT_CHUNK_ELEMENTS", "FAMILIES", "KINDS", "Family", "InitializerKind", "family_of"]
