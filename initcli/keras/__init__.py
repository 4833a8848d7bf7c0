"""What Keras itself does, across its versions, and the only door to a real Keras.

Owns: each layer's weights, default initializers and fan rules (`layers`), Keras 1 and Keras 2 names
and configs translated to Keras 3 (`keras1`, `eras`), `initcli defaults` (`defaults`),
BatchNormalization's moving statistics (`batchnorm`), importing Keras when a request needs it
(`bridge`), building a model from a spec or a `module:function` (`building`), and loading a saved
model with the user's `--custom-objects` code (`custom_objects`), and a live model's config and weights
tree as its own Keras would save them (`live`), and the initializers KerasHub's backbones pass (`kerashub`).

May import: `initcli.initializers`, `initcli.safety.documents`, `initcli.safety`, `initcli.errors`; and, for
the name `initcli.keras.InitCheck` only, `initcli.callback` (lazily).
TensorFlow/Keras are imported only inside `bridge`, `building` and `custom_objects`, when asked for;
`live` uses the saver of the Keras a live model comes from (already imported).
"""

from typing import Any as _Any

_CALLBACK_NAMES = ("InitCheck", "InitCheckError", "InitCheckWarning")


def __getattr__(name: str) -> _Any:
    """`InitCheck` and its error and warning, from `initcli.callback` (the training callback, which sits
    at the public API's level, above this package), imported on first use: the one upward import of
    this package, a name only, listed in pyproject.toml's import contract."""
    if name in _CALLBACK_NAMES:
        from initcli import callback

        return getattr(callback, name)
    raise AttributeError(f"module 'initcli.keras' has no attribute {name!r}")
