"""CRC-32C and Snappy: the libraries of the `fast` extra and initcli's fallbacks agree, and both are bounded.

Oracles: a bitwise CRC-32C (test_tfbundle.crc_bitwise, written from the polynomial), the published
check value crc32c(b"123456789") = 0xE3069283 (RFC 3720, B.4), google-crc32c, and cramjam's Snappy
compressor (whose output both decompressors must invert).
"""

from __future__ import annotations

import random

import pytest

from initcli.errors import InitcliError
from initcli.readers import crc32c as crc_module
from initcli.readers import snappy
from tests.test_tfbundle import crc_bitwise, snappy_literal, varint

google_crc32c = pytest.importorskip("google_crc32c")
cramjam = pytest.importorskip("cramjam")


def _samples() -> list[bytes]:
    rng = random.Random(24)
    sizes = [0, 1, 3, 4, 5, 1023, 1024, 1025, 4096, 65_537, 1 << 20]
    return [bytes(rng.getrandbits(8) for _ in range(size)) if size < 70_000 else rng.randbytes(size) for size in sizes]


def test_the_published_check_value() -> None:
    assert crc_module.numpy_crc32c(b"123456789") == 0xE3069283
    assert crc_module.crc32c(b"123456789") == 0xE3069283


@pytest.mark.parametrize("data", _samples(), ids=lambda data: f"{len(data)}B")
def test_both_crc32c_agree_with_the_bitwise_crc_and_google_crc32c(data: bytes) -> None:
    expected = google_crc32c.value(data)
    if len(data) <= 65_537:
        assert crc_bitwise(data) == expected
    assert crc_module.numpy_crc32c(data) == expected
    assert crc_module.crc32c(data) == expected
    half = len(data) // 2
    assert crc_module.crc32c(data[half:], crc_module.crc32c(data[:half])) == expected
    assert crc_module.numpy_crc32c(data[half:], crc_module.numpy_crc32c(data[:half])) == expected


def test_the_library_is_used_when_installed() -> None:
    assert crc_module._FAST is not None  # the test extra installs google-crc32c with its C extension
    assert snappy._library() is cramjam


def _text(size: int) -> bytes:
    rng = random.Random(size)
    words = [b"kernel", b"bias", b"/.ATTRIBUTES/VARIABLE_VALUE", b"layer_with_weights-", b"\x00\x01"]
    return b"".join(rng.choice(words) for _ in range(size // 8))[:size]


@pytest.mark.parametrize("size", [0, 1, 100, 4096, 200_000])
@pytest.mark.parametrize("pure", [False, True], ids=["cramjam", "python"])
def test_both_snappy_decompressors_invert_cramjams_compressor(
    size: int, pure: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if pure:
        monkeypatch.setenv("INITCLI_PURE_CODECS", "1")
    original = _text(size)
    compressed = bytes(cramjam.snappy.compress_raw(original))
    assert snappy.decompress(compressed, limit=1 << 20, source="t") == original
    if original:  # (one literal of zero bytes has no encoding)
        assert snappy.decompress(snappy_literal(original), limit=1 << 20, source="t") == original


@pytest.mark.parametrize("pure", [False, True], ids=["cramjam", "python"])
def test_a_declared_length_over_the_limit_is_refused_before_decompressing(
    pure: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if pure:
        monkeypatch.setenv("INITCLI_PURE_CODECS", "1")
    with pytest.raises(InitcliError, match="declares 4,294,967,295 bytes, more than 1,024"):
        snappy.decompress(varint(0xFFFFFFFF) + b"\x00", limit=1024, source="t")


@pytest.mark.parametrize("pure", [False, True], ids=["cramjam", "python"])
def test_corrupt_snappy_is_one_line(pure: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if pure:
        monkeypatch.setenv("INITCLI_PURE_CODECS", "1")
    good = bytes(cramjam.snappy.compress_raw(_text(5000)))
    rng = random.Random(7)
    for _ in range(300):
        data = bytearray(good)
        for _ in range(rng.randrange(1, 4)):
            data[rng.randrange(len(data))] = rng.getrandbits(8)
        cut = bytes(data[: rng.randrange(1, len(data) + 1)])
        try:
            out = snappy.decompress(cut, limit=1 << 16, source="t")
        except InitcliError as error:
            assert "\n" not in str(error) and str(error).startswith("t: ")
        else:
            assert len(out) <= 1 << 16
