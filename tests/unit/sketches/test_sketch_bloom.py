"""bloom: no false negatives, the configured false-positive rate, the byte format."""

import hashlib
import struct

import pytest

from grid.sketches import SketchFormatError, SketchSpec, deserialize_sketch, merge_all, new_sketch

SPEC = SketchSpec.of("bloom", capacity_items=10_000, error_rate=0.01)


@pytest.fixture(scope="module")
def full_filter():
    bloom = new_sketch(SPEC)
    bloom.update_many([f"member-{index}" for index in range(10_000)])
    return bloom


def test_no_false_negatives(full_filter):
    members = [f"member-{index}" for index in range(10_000)]
    assert all(full_filter.might_contain_many(members))
    assert full_filter.might_contain("member-0")


def test_false_positive_rate_within_twice_the_configured_rate(full_filter):
    probes = [f"stranger-{index}" for index in range(100_000)]
    rate = sum(full_filter.might_contain_many(probes)) / len(probes)
    assert rate <= 2 * 0.01
    fill = full_filter.fill()
    assert fill.expected_false_positive_rate <= 2 * 0.01
    assert rate <= 2 * fill.expected_false_positive_rate


def test_shape_follows_capacity_and_rate(full_filter):
    fill = full_filter.fill()
    # m = -n ln p / (ln 2)^2 and k = (m / n) ln 2 for n = 10,000 and p = 0.01.
    assert fill.bits == 95_851
    assert fill.hashes == 7
    assert fill.items_added == 10_000
    assert 0.45 < fill.bits_set / fill.bits < 0.55


def test_every_item_type_is_found():
    bloom = new_sketch(SPEC)
    items = ["text", 7, 2.5, b"\x00\x01", 3.0]
    bloom.update_many(items)
    assert all(bloom.might_contain_many([*items, 3, "7", "0x0001"]))
    assert not bloom.might_contain("absent")


def test_merge_is_the_union():
    first, second = new_sketch(SPEC), new_sketch(SPEC)
    first.update_many([f"a{index}" for index in range(500)])
    second.update_many([f"b{index}" for index in range(500)])
    merged = merge_all(SPEC, [first, second])
    both = new_sketch(SPEC)
    both.update_many([f"a{index}" for index in range(500)] + [f"b{index}" for index in range(500)])
    assert merged.serialize() == both.serialize()
    second.merge(first)
    assert second.serialize() == both.serialize()


def test_header_is_the_documented_format(full_filter):
    data = full_filter.serialize()
    header = struct.unpack_from("<4sBBHQQdQ", data)
    assert header == (b"SHBF", 1, 1, 7, 95_851, 10_000, 0.01, 10_000)
    assert len(data) == 40 + (95_851 + 7) // 8


def test_hashing_is_the_documented_scheme():
    bloom = new_sketch(SketchSpec.of("bloom", capacity_items=10, error_rate=0.01))
    bloom.update("alice")
    fill = bloom.fill()
    digest = hashlib.blake2b(b"alice", digest_size=16).digest()
    first, second = struct.unpack("<QQ", digest)
    expected = {((first + step * second) % 2**64) % fill.bits for step in range(fill.hashes)}
    bits = bloom.serialize()[40:]
    found = {index for index in range(fill.bits) if bits[index // 8] >> (index % 8) & 1}
    assert found == expected


@pytest.mark.parametrize(
    "mangle",
    [
        lambda data: data[:10],
        lambda data: b"XXXX" + data[4:],
        lambda data: data[:4] + b"\x02" + data[5:],
        lambda data: data[:-1],
    ],
)
def test_damaged_bytes_are_refused(full_filter, mangle):
    with pytest.raises(SketchFormatError):
        deserialize_sketch(SPEC, mangle(full_filter.serialize()))


def test_bytes_of_another_spec_are_refused(full_filter):
    other = SketchSpec.of("bloom", capacity_items=10_000, error_rate=0.02)
    with pytest.raises(SketchFormatError, match="capacity_items, error_rate"):
        deserialize_sketch(other, full_filter.serialize())
