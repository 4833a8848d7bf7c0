"""A small, bounded decoder of the protobuf wire format, for the few messages initcli reads by hand.

TensorFlow's checkpoint and SavedModel files are protobuf messages (tensor_bundle.proto,
trackable_object_graph.proto, tf_keras's saved_metadata.proto). initcli decodes the handful of
fields it needs without the protobuf package: a message becomes a map from field number to the
values seen, and nested messages are decoded only when asked for. Every length is checked against
the buffer, varints stop at 10 bytes, and nesting stops at `MAX_DEPTH`; any violation is an
`InitcliError` naming the file. Every decoded field (a Python object of ~100-200 bytes) and every
copied string is spent from the command's budget (`initcli.safety.budget`), so that 40 MB of empty
fields stops at the field limit instead of building gigabytes of objects.

Why not the `protobuf` package: its upb parser is fast and has recursion limits, but it needs the
generated classes of TensorFlow's `.proto` files (tensor_bundle, saved_object_graph, saved_metadata,
versions...), which would mean vendoring TensorFlow's descriptors or importing TensorFlow; it also
materializes every field of a message, where this decoder splits only the few messages initcli
reads and leaves the rest as views into the buffer. Either way the work must be bounded by count,
which a generic parser does not do (its limit is recursion depth, not fields). Measured (protobuf
7.36, upb backend): `FileDescriptorSet.FromString(b"\\x0a\\x00" * 5_000_000)`, 10 MB of empty
repeated submessages, takes 0.33 s and 791 MB more peak memory, with no way to stop it at a field
count; the red team's 40 MB `saved_model.pb` would need some 3 GB before any check of ours could run.
Here the same input stops at the 1,000,000-field budget with a one-line error.
"""

from __future__ import annotations

from dataclasses import dataclass

from initcli.errors import InitcliError
from initcli.safety.budget import Budget, active

MAX_DEPTH = 64
MAX_VARINT_BYTES = 10

_VARINT, _FIXED64, _LENGTH, _START_GROUP, _END_GROUP, _FIXED32 = 0, 1, 2, 3, 4, 5
_UINT64 = 1 << 64

Value = int | memoryview


def read_varint(data: memoryview | bytes | bytearray, position: int, source: str) -> tuple[int, int]:
    """Decode the base-128 varint at `position`: (value as an unsigned 64-bit int, next position)."""
    result = 0
    for index in range(MAX_VARINT_BYTES):
        if position >= len(data):
            raise InitcliError(f"{source}: malformed protobuf (truncated varint)")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << (7 * index)
        if byte < 0x80:
            if result >= _UINT64:
                raise InitcliError(f"{source}: malformed protobuf (varint exceeds 64 bits)")
            return result, position
    raise InitcliError(f"{source}: malformed protobuf (varint longer than {MAX_VARINT_BYTES} bytes)")


def as_signed(value: int) -> int:
    """A varint decoded as unsigned, read as the two's-complement int64 that protobuf writes."""
    return value - _UINT64 if value >= 1 << 63 else value


@dataclass(frozen=True)
class Message:
    """The fields of one decoded message: field number -> values in order of appearance.

    Varint and fixed-width fields hold ints; length-delimited fields hold memoryviews into the
    original buffer (strings, bytes, nested messages and packed repeated scalars).
    """

    fields: dict[int, list[Value]]
    source: str
    depth: int
    budget: Budget | None = None

    def _values(self, number: int) -> list[Value]:
        return self.fields.get(number, [])

    def integer(self, number: int, default: int = 0, *, signed: bool = True) -> int:
        """The last value of a scalar integer field (protobuf's rule for repeated scalars), or default."""
        values = self._values(number)
        if not values:
            return default
        value = values[-1]
        if isinstance(value, memoryview):
            raise InitcliError(f"{self.source}: malformed protobuf (field {number} is not an integer)")
        return as_signed(value) if signed else value

    def integers(self, number: int, *, signed: bool = True) -> list[int]:
        """A repeated integer field, packed or not."""
        out: list[int] = []
        for value in self._values(number):
            if isinstance(value, memoryview):
                position = 0
                while position < len(value):
                    item, position = read_varint(value, position, self.source)
                    out.append(as_signed(item) if signed else item)
            else:
                out.append(as_signed(value) if signed else value)
        return out

    def data(self, number: int) -> bytes:
        """The last value of a bytes field, or b""."""
        values = self._values(number)
        if not values:
            return b""
        value = values[-1]
        if not isinstance(value, memoryview):
            raise InitcliError(f"{self.source}: malformed protobuf (field {number} is not length-delimited)")
        (self.budget or active()).spend_bytes(len(value), self.source)
        return value.tobytes()

    def text(self, number: int) -> str:
        """The last value of a string field, or ""; invalid UTF-8 is an error."""
        try:
            return self.data(number).decode("utf-8")
        except UnicodeDecodeError:
            raise InitcliError(f"{self.source}: malformed protobuf (field {number} is not UTF-8 text)") from None

    def messages(self, number: int) -> list[Message]:
        """The values of a repeated message field, each decoded."""
        out = []
        for value in self._values(number):
            if not isinstance(value, memoryview):
                raise InitcliError(f"{self.source}: malformed protobuf (field {number} is not a message)")
            out.append(parse_message(value, self.source, depth=self.depth + 1, budget=self.budget))
        return out

    def message(self, number: int) -> Message | None:
        """A singular message field (protobuf merges repeated occurrences; initcli takes the last)."""
        found = self.messages(number)
        return found[-1] if found else None


def parse_message(data: bytes | memoryview, source: str, *, depth: int = 0, budget: Budget | None = None) -> Message:
    """Split one serialized message into its fields.

    Args:
        data: the serialized message.
        source: the file it came from, for error messages.
        depth: how deep this message is nested (the caller's depth + 1).
        budget: what the fields are spent from (default: the command's, `initcli.safety.budget.active`);
            nested messages decoded later spend from the same one.

    Raises:
        InitcliError: truncated or malformed input, or nesting deeper than MAX_DEPTH.
        BudgetError: more fields than the budget allows, or its deadline passed.
    """
    if budget is None:
        budget = active()
    if depth > min(MAX_DEPTH, budget.max_depth):
        raise InitcliError(f"{source}: malformed protobuf (nested deeper than {min(MAX_DEPTH, budget.max_depth)})")
    view = memoryview(data).cast("B") if not isinstance(data, memoryview) else data
    fields: dict[int, list[Value]] = {}
    position = _parse_fields(view, 0, source, depth, fields, group=None, budget=budget)
    if position != len(view):
        raise InitcliError(f"{source}: malformed protobuf (unexpected end-group marker)")
    return Message(fields, source, depth, budget)


_SPEND_EVERY = 1024  # fields decoded between two spends from the budget


def _parse_fields(
    view: memoryview,
    position: int,
    source: str,
    depth: int,
    fields: dict[int, list[Value]] | None,
    group: int | None,
    budget: Budget,
) -> int:
    """Decode fields from `position` to the end of `view` (or to the end of `group`); return where it stopped."""
    end = len(view)
    unspent = 0
    while position < end:
        unspent += 1
        if unspent >= _SPEND_EVERY:
            budget.spend_fields(unspent, source)
            unspent = 0
        key = view[position]
        if key < 0x80:  # one-byte keys and values are the common case: skip the call
            position += 1
        else:
            key, position = read_varint(view, position, source)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise InitcliError(f"{source}: malformed protobuf (field number 0)")
        value: Value
        if wire_type == _VARINT:
            if position < end and view[position] < 0x80:
                value = view[position]
                position += 1
            else:
                value, position = read_varint(view, position, source)
        elif wire_type == _FIXED64 or wire_type == _FIXED32:
            width = 8 if wire_type == _FIXED64 else 4
            if position + width > end:
                raise InitcliError(f"{source}: malformed protobuf (truncated fixed-width field)")
            value = int.from_bytes(view[position : position + width], "little")
            position += width
        elif wire_type == _LENGTH:
            if position < end and view[position] < 0x80:
                length = view[position]
                position += 1
            else:
                length, position = read_varint(view, position, source)
            if length > end - position:
                raise InitcliError(
                    f"{source}: malformed protobuf (field {number} declares {length} bytes, {end - position} remain)"
                )
            value = view[position : position + length]
            position += length
        elif wire_type == _START_GROUP:
            # Deprecated groups carry no field initcli reads: skip them, still bounded in depth.
            if depth + 1 > MAX_DEPTH:
                raise InitcliError(f"{source}: malformed protobuf (nested deeper than {MAX_DEPTH})")
            position = _parse_fields(view, position, source, depth + 1, None, group=number, budget=budget)
            continue
        elif wire_type == _END_GROUP:
            if group != number:
                raise InitcliError(f"{source}: malformed protobuf (unmatched end-group marker)")
            budget.spend_fields(unspent, source)
            return position
        else:
            raise InitcliError(f"{source}: malformed protobuf (wire type {wire_type})")
        if fields is not None:
            fields.setdefault(number, []).append(value)
    if group is not None:
        raise InitcliError(f"{source}: malformed protobuf (unterminated group)")
    budget.spend_fields(unspent, source)
    return position
