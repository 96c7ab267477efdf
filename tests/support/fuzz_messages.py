"""Random and mutated request bodies for any protobuf message, drawn from a seeded rng.

Three kinds of body: a message built field by field from its descriptor (awkward strings,
extreme numbers, unknown enum values, JSON-ish bytes, nested messages), the bytes of such
a message mutated (bits flipped, bytes cut, inserted or repeated), and random bytes.
`names` are strings worth using often (existing maps and keys), so that random requests
reach past the "map not found" checks into the code behind them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

AWKWARD_TEXT = [
    "",
    "a",
    "ключ",
    "line\nbreak",
    "nul\x00inside",
    "\t\r\x7f",
    "🐟" * 3,
    "__offsets",
    "{tag}key",
    "x" * 2000,
    # Longer than a gRPC answer's metadata may be, should an error quote it whole.
    "ю" * 20_000,
    "' OR 1=1 --",
    "SELECT 1",
    "SELECT * FROM",
    # Statements over the maps a fuzzing session creates, so the SQL paths run for real.
    "SELECT * FROM fuzz_accounts WHERE balance > ? ORDER BY __key",
    "SELECT owner, count(*) FROM fuzz_accounts GROUP BY owner",
    "INSERT INTO fuzz_accounts (__key, owner, balance) VALUES (?, 'Z', 1)",
    "UPDATE fuzz_accounts SET balance = balance + 1 WHERE __key = ?",
    "DELETE FROM fuzz_accounts WHERE __key = ?",
    "EXPLAIN SELECT * FROM fuzz_free",
    "SELECT * FROM fuzz_hll",
    "(a+)+$",
    "%s%n",
    "../../etc/passwd",
]
AWKWARD_JSON = [
    b"",
    b"null",
    b"{}",
    b"[]",
    b"1",
    b"18446744073709551616",
    b"1e400",
    b'"text"',
    b'{"n": 1}',
    b'{"owner": "x", "balance": -1}',
    b'{"owner": "x", "balance": 3, "at": {"$ts": "2026-11-01T00:00:00+00:00"}}',
    b'["alice", 1]',
    b"[2]",
    b'{"lg_k": 12}',
    b'{"k": 3}',
    b'{"$ts": "yesterday"}',
    b'{"$bytes": "!!!!"}',
    b'{"a": {"$bytes": "aGk="}}',
    b"[" * 2000 + b"]" * 2000,
    b"{oops",
    b"\xff\xfe",
    b'"\xed\xa0\x80"',
]
INTEGER_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
NESTING_MAX = 3
REPEATED_MAX = 6


class MessageFuzzer:
    def __init__(self, rng: random.Random, names: Sequence[str]) -> None:
        self.rng = rng
        self.names = list(names)

    def body(self, descriptor: Descriptor) -> bytes:
        """One request body: a random message (half the time), a mutated one, or noise."""
        draw = self.rng.random()
        if draw < 0.5:
            return self.message(descriptor).SerializeToString()
        if draw < 0.85:
            return self.mutated(self.message(descriptor).SerializeToString())
        return self.rng.randbytes(self.rng.randint(0, 64))

    def message(self, descriptor: Descriptor, depth: int = 0) -> Message:
        message = message_factory.GetMessageClass(descriptor)()
        for field in descriptor.fields:
            if self.rng.random() < 0.35:
                continue
            if field.is_repeated:
                for _ in range(self.rng.randint(0, REPEATED_MAX)):
                    self._add(message, field, depth)
            else:
                self._set(message, field, depth)
        return message

    def mutated(self, data: bytes) -> bytes:
        changed = bytearray(data)
        for _ in range(self.rng.randint(1, 4)):
            action = self.rng.randrange(4)
            position = self.rng.randint(0, len(changed))
            if action == 0 and changed:
                index = min(position, len(changed) - 1)
                changed[index] ^= 1 << self.rng.randrange(8)
            elif action == 1:
                del changed[position : position + self.rng.randint(1, 8)]
            elif action == 2:
                changed[position:position] = self.rng.randbytes(self.rng.randint(1, 8))
            else:
                changed[position:position] = changed[position : position + 16] * 2
        return bytes(changed)

    def _set(self, message: Message, field: FieldDescriptor, depth: int) -> None:
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if depth < NESTING_MAX:
                child = self.message(field.message_type, depth + 1)
                getattr(message, field.name).CopyFrom(child)
            return
        try:
            setattr(message, field.name, self.scalar(field))
        except ValueError:
            # A closed enum refuses unknown numbers; the mutations still reach them.
            pass

    def _add(self, message: Message, field: FieldDescriptor, depth: int) -> None:
        container = getattr(message, field.name)
        if field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry:
            # A map field: one entry with a random key and value.
            key_field = field.message_type.fields_by_name["key"]
            value_field = field.message_type.fields_by_name["value"]
            try:
                key = self.scalar(key_field)
                if value_field.type == FieldDescriptor.TYPE_MESSAGE:
                    if depth < NESTING_MAX:
                        container[key].CopyFrom(self.message(value_field.message_type, depth + 1))
                else:
                    container[key] = self.scalar(value_field)
            except ValueError:
                pass
            return
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if depth < NESTING_MAX:
                container.add().CopyFrom(self.message(field.message_type, depth + 1))
            return
        try:
            container.append(self.scalar(field))
        except ValueError:
            pass

    def scalar(self, field: FieldDescriptor) -> Any:
        rng = self.rng
        kind = field.type
        if kind == FieldDescriptor.TYPE_STRING:
            return self.text()
        if kind == FieldDescriptor.TYPE_BYTES:
            choice = rng.random()
            if choice < 0.5:
                return rng.choice(AWKWARD_JSON)
            if choice < 0.75:
                return "\x00".join(rng.sample(self.names, min(3, len(self.names)))).encode()
            return rng.randbytes(rng.randint(0, 40))
        if kind == FieldDescriptor.TYPE_BOOL:
            return rng.random() < 0.5
        if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
            return rng.choice(
                [0.0, -0.0, 1.5, -1.0, 1e308, float("inf"), float("-inf"), float("nan"), 0.999]
            )
        if kind == FieldDescriptor.TYPE_ENUM:
            known = [value.number for value in field.enum_type.values]
            return rng.choice([*known, max(known) + 1, 999, -1])
        low, high = INTEGER_RANGES[kind]
        return rng.choice([0, 1, 2, 7, 100, 10**6, low, high, rng.randint(low, high)])

    def text(self) -> str:
        if self.rng.random() < 0.5 and self.names:
            return self.rng.choice(self.names)
        return self.rng.choice(AWKWARD_TEXT)
