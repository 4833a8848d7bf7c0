"""Resolving initializer names and configs into validated specs, and the one door to their family.

An `InitializerSpec` is what a user or a saved model asked for: a canonical Keras class name and
a complete config (every parameter present, defaults filled in). Resolving checks parameters the
way Keras's constructors check them and raises `BadInputError` with Keras's reason. Everything
that depends on which initializer it is lives on its family (`initcli.initializers`): `spec.family`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from initcli.errors import BadInputError
from initcli.initializers.registry import Family, InitializerKind, family_of, find_kind
from initcli.initializers.seeding import Seed, effective_seed

if TYPE_CHECKING:
    from initcli.stats.theory import Theory


@dataclass(frozen=True)
class InitializerSpec:
    """A resolved initializer: canonical class name and a complete config."""

    class_name: str
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> InitializerKind:
        return find_kind(self.class_name)

    @property
    def family(self) -> Family:
        return family_of(self.class_name)

    def to_dict(self) -> dict[str, Any]:
        """The Keras serialization form `{"class_name", "config"}`."""
        return {"class_name": self.class_name, "config": dict(self.config)}

    @property
    def seed(self) -> int | None:
        """The integer seed, also when the config holds a serialized SeedGenerator."""
        return seed_from_config(self.config.get("seed"))

    def draw_seed(self, requested: int | None) -> Seed:
        """The seed a draw uses: the requested one, else the configured one, else one Keras would pick.

        A deterministic initializer draws no random numbers: any seed gives its values, so it is
        seed 0 (or the one asked for) and always reproducible.
        """
        if not self.family.random:
            return Seed(value=requested or 0, reproducible=True)
        return effective_seed(requested, self.seed)

    def with_fan_axes(self, fan_axes: tuple[list[int], list[int]] | None) -> InitializerSpec:
        """The spec with the fan axes EinsumDense derives, where the family uses fans and none are set."""
        if fan_axes is None or not self.family.uses_fans:
            return self
        if self.config.get("input_axes") is not None and self.config.get("output_axes") is not None:
            return self
        return InitializerSpec(self.class_name, {**self.config, "input_axes": fan_axes[0], "output_axes": fan_axes[1]})

    def check_request(self, shape: tuple[int, ...], dtype: str = "float32") -> None:
        """Raise BadInputError, with Keras's reason, when the initializer cannot fill this tensor."""
        self.family.check_request(self, shape, dtype)

    def theory(self, shape: tuple[int, ...], dtype: str = "float32") -> Theory:
        """What the initializer produces at `shape` in `dtype` (after `check_request`)."""
        return self.family.theory(self, shape, dtype)


def seed_from_config(seed: Any) -> int | None:
    """An int seed from a config value: an int, None, or a serialized keras SeedGenerator."""
    if seed is None or isinstance(seed, bool):
        return None
    if isinstance(seed, int):
        return seed
    if isinstance(seed, Mapping) and seed.get("class_name") == "SeedGenerator":
        inner = (seed.get("config") or {}).get("seed") if isinstance(seed.get("config"), Mapping) else None
        return inner if isinstance(inner, int) and not isinstance(inner, bool) else None
    raise BadInputError(
        "`seed` argument should be an instance of `keras.random.SeedGenerator()` or an integer. "
        f"Received: seed={seed!r}"
    )


def resolve(identifier: str | Mapping[str, Any], **overrides: Any) -> InitializerSpec:
    """Resolve a name or a Keras `{"class_name", "config"}` dict into a validated spec.

    Args:
        identifier: a name (`glorot_uniform`, `GlorotUniform`, `xavier_uniform`, ...) or a dict
            as found in a saved model's config.json.
        **overrides: parameters to set (None values are ignored): what a user asks for.

    Raises:
        BadInputError: unknown name, unknown parameter, or a value Keras would reject; or an override
            Keras accepts but draws other than meant (a negative stddev; a saved config's is read as is).
    """
    if isinstance(identifier, Mapping):
        if "class_name" not in identifier:
            raise BadInputError(f"An initializer dict needs a `class_name`. Received: {dict(identifier)!r}")
        kind = find_kind(str(identifier["class_name"]))
        given_config = identifier.get("config") or {}
        if not isinstance(given_config, Mapping):
            raise BadInputError(f"An initializer's `config` must be a mapping. Received: {given_config!r}")
        given = dict(given_config)
        # Keras 2 / tf.keras configs carry the dtype the initializer was created for; Keras 3 has none.
        given.pop("dtype", None)
    elif isinstance(identifier, str):
        kind = find_kind(identifier)
        given = {}
    else:
        raise BadInputError(f"Cannot interpret initializer {identifier!r}")
    given.update({k: v for k, v in overrides.items() if v is not None})
    unknown = sorted(set(given) - set(kind.defaults))
    if unknown:
        accepted = ", ".join(f"`{p}`" for p in kind.defaults) or "no parameters"
        raise BadInputError(
            f"{kind.class_name} does not take {', '.join(f'`{p}`' for p in unknown)} (it takes {accepted})."
        )
    config = {**kind.defaults, **given}
    if "seed" in config:
        seed_from_config(config["seed"])
    family = family_of(kind.class_name)
    config = family.validate(kind, config)
    family.check_asked(kind, {k: config[k] for k, v in overrides.items() if v is not None})
    return InitializerSpec(kind.class_name, config)


def check_request(spec: InitializerSpec, shape: tuple[int, ...], dtype: str = "float32") -> None:
    """Raise BadInputError, with Keras's reason, when the initializer cannot fill this tensor."""
    spec.check_request(shape, dtype)
