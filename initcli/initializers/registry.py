"""The registry of initializer families, and looking an initializer up by any of its names.

Every Keras 3 built-in initializer belongs to one family. Adding a family is one module (a `Family`
subclass listing its `InitializerKind`s) and one line in `FAMILIES`.
"""

from __future__ import annotations

from initcli.errors import BadInputError
from initcli.initializers.base import Family, InitializerKind
from initcli.initializers.constant import ConstantFamily
from initcli.initializers.identity import IdentityFamily
from initcli.initializers.orthogonal import OrthogonalFamily
from initcli.initializers.random import RandomNormalFamily, RandomUniformFamily, TruncatedNormalFamily
from initcli.initializers.stft import STFTFamily
from initcli.initializers.variance_scaling import VarianceScalingFamily

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


def _normalize(name: str) -> str:
    return name.replace("_", "").replace("-", "").lower()


_BY_NAME: dict[str, InitializerKind] = {
    _normalize(name): kind for kind in KINDS for name in (kind.class_name, kind.snake_name, *kind.aliases)
}


def all_names() -> list[str]:
    """Every accepted spelling (snake names, class names and aliases), for suggestions."""
    return [name for kind in KINDS for name in (kind.snake_name, kind.class_name, *kind.aliases)]


def find_kind(name: str) -> InitializerKind:
    """Look an initializer up by snake name, class name or alias (case and `_` insensitive).

    Raises:
        BadInputError: the name is unknown; the message suggests the closest names.
    """
    kind = _BY_NAME.get(_normalize(name))
    if kind is None:
        import difflib

        close = difflib.get_close_matches(name, all_names(), n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else " Run `initcli list` to see them."
        raise BadInputError(f"Unknown initializer {name!r}.{hint}")
    return kind
