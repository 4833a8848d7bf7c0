"""Real `.keras` files with custom layers that other people committed, and layer code that loads them.

The files are public repositories' data and are not in this repository (fetched material stays out
of its commits; each file is 3-4 MB): the tests look for them, by the names below, in the folder
`$INITCLI_PUBLIC_CUSTOM_LAYERS`, else `shared/public-custom-layers/` beside or inside the checkout,
and skip (locally) when it is absent; a file found with another sha256 fails. Where each came
from: ORIGINS.md beside this file. The layer modules here were written for these tests from each
file's config and weight groups (class, arguments, attribute names), not copied from the repositories.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import fetched

FOLDER_NAME = "public-custom-layers"


@dataclass(frozen=True)
class PublicFile:
    name: str
    repository: str
    path: str
    commit: str
    sha256: str
    keras_version: str
    layers_module: str | None
    trained: bool


FILES = {
    f.name: f
    for f in (
        PublicFile(
            "glbn333_transformer_model.keras",
            "glbn333/pfam_transformer",
            "transformer_model.keras",
            "7204789aa2e7ef241a2b0312a194bc08c237d17f",
            "6f2551050bb3b16598b8882d1f18030aec6282b1a40ccd24f90fb87fc8ebf762",
            "3.1.1",
            "tests.public_custom.keras_io_text_classification",
            trained=False,
        ),
        PublicFile(
            "sateefa_transformer.keras",
            "sateefa2904/Transformer-based-Reversal-and-Question-Classification-Models",
            "transformer.keras",
            "4b171eed58f27c1cfdc536b23bb76c9cadcb1f99",
            "d181078382da00a68742f90fc14c442f5486306bb0232481fee4ddb119225e3f",
            "3.9.2",
            "tests.public_custom.chollet_encoder",
            trained=True,
        ),
        PublicFile(
            "Harshitha553_transformer_model.keras",
            "Harshitha553/Transformer-Streamlit",
            "transformer_model.keras",
            "32a9e06bd1ea6325c1996496f1ef2a2f234d31a4",
            "d05a81818e68d0b5033b8cc6dccf7dc756cc7ef1b3a5292020749d69f7eb2bff",
            "3.11.3",
            "tests.public_custom.chollet_translation",
            trained=True,
        ),
        PublicFile(
            "Niveditha79_transformer_model.keras",
            "Niveditha79/Transformers_Model",
            "transformer_model.keras",
            "043d5f8f8224c88f07b8858bebecd8fd274fa635",
            "2662120f401058ea3293f80a85e54436c854be40352c41abcf1fb7bc022c3fe4",
            "3.14.0",
            None,
            trained=True,
        ),
    )
}


def locate(name: str) -> Path:
    """The public file `name`, checked against its sha256; skips when no folder holds it."""
    expected = FILES[name]
    path = fetched.find("INITCLI_PUBLIC_CUSTOM_LAYERS", FOLDER_NAME, name)
    if path is not None:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert digest == expected.sha256, f"{path}: sha256 {digest}, expected {expected.sha256}"
        return path
    pytest.skip(f"public file {name} ({expected.repository}) not in {FOLDER_NAME}/ (tests/public_custom/ORIGINS.md)")
