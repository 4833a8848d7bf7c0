"""How Keras turns an initializer's seed into TensorFlow's stateless seed pair."""

from __future__ import annotations

from dataclasses import dataclass

from initcli.errors import BadInputError

_SEED_MODULUS = 2147483646  # Keras's _cast_seed: floormod(seed, int32.max - 1)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def tf_seed(seed: int, draw_index: int = 0) -> tuple[int, int]:
    """The stateless TensorFlow seed pair Keras uses for an int seed (draw k of a SeedGenerator).

    Raises:
        BadInputError: the seed does not fit in int64 (Keras cannot convert it either).
    """
    check_seed(seed)
    return seed % _SEED_MODULUS, draw_index % _SEED_MODULUS


def check_seed(seed: int) -> int:
    """The seed, if Keras can use it.

    Raises:
        BadInputError: the seed does not fit in int64.
    """
    if not _INT64_MIN <= seed <= _INT64_MAX:
        raise BadInputError(f"Seed {seed} does not fit in a 64-bit integer, which Keras requires.")
    return seed


def keras_default_seed() -> int:
    """What Keras does for seed=None: a fresh seed from Python's `random` at construction."""
    import random  # only a draw without --seed needs it

    return random.randint(1, 10**9)


@dataclass(frozen=True, kw_only=True)
class Seed:
    """The seed a draw uses, and whether a user can draw the same values again with it."""

    value: int
    reproducible: bool


def effective_seed(requested: int | None, configured: int | None) -> Seed:
    """The requested seed, else the initializer's own, else a random one as Keras picks it."""
    for candidate in (requested, configured):
        if candidate is not None:
            return Seed(value=check_seed(candidate), reproducible=True)
    return Seed(value=keras_default_seed(), reproducible=False)


BACKENDS = ("tensorflow", "jax", "torch")


def check_backend_seed(seed: int, backend: str) -> int:
    """The seed, if Keras 3 can use it on `backend`.

    JAX's key is the uint32 pair `[seed, 0]`: numpy refuses a seed outside [0, 2^32) (Keras raises
    OverflowError); torch bit-casts any seed to int32 and seeds mt19937 with `seed & 0xFFFFFFFF`.

    Raises:
        BadInputError: a seed Keras refuses on that backend.
    """
    check_seed(seed)
    if backend == "jax" and not 0 <= seed < 2**32:
        raise BadInputError(
            f"Seed {seed} is outside [0, 2^32): Keras's JAX backend makes the uint32 key [seed, 0] and "
            "cannot convert it (OverflowError)."
        )
    return seed
