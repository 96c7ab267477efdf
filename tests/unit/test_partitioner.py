"""Unit tests of grid.partitioner: stable CRC-32 placement, hash tags, bounds."""

import zlib

import pytest

from grid.partitioner import PARTITIONS_DEFAULT, PARTITIONS_MAX, Partitioner, hash_tag


def crc_partition(text: str, partitions: int = PARTITIONS_DEFAULT) -> int:
    return zlib.crc32(text.encode()) % partitions


def test_default_partition_count_is_64():
    assert PARTITIONS_DEFAULT == 64
    assert Partitioner().partitions == 64


@pytest.mark.parametrize("key", ["alice", "bob", "user:42", "", "ключ", "🐟"])
def test_partition_is_crc32_of_utf8_key_modulo_count(key):
    assert Partitioner().partition_of(key) == zlib.crc32(key.encode("utf-8")) % 64


def test_known_keys_have_fixed_partitions():
    # Literal expectations: a change of hash function or encoding breaks stored data.
    partitioner = Partitioner(64)
    assert zlib.crc32(b"alice") == 0x278EBC47
    assert partitioner.partition_of("alice") == 0x278EBC47 % 64 == 7
    assert partitioner.partition_of("alice") == zlib.crc32(b"alice") % 64
    assert Partitioner(7).partition_of("alice") == zlib.crc32(b"alice") % 7


def test_placement_does_not_depend_on_the_instance():
    keys = [f"key-{index}" for index in range(200)]
    first = [Partitioner(16).partition_of(key) for key in keys]
    second = [Partitioner(16).partition_of(key) for key in keys]
    assert first == second
    assert len(set(first)) > 8, "two hundred keys should spread over most of 16 partitions"


def test_keys_sharing_a_hash_tag_share_a_partition():
    partitioner = Partitioner(4096)
    assert partitioner.partition_of("{user1}:a") == partitioner.partition_of("{user1}:b")
    assert partitioner.partition_of("{user1}:a") == crc_partition("user1", 4096)
    assert partitioner.partition_of("prefix{user1}suffix") == crc_partition("user1", 4096)


def test_only_the_first_tag_counts():
    assert hash_tag("{a}{b}") == "a"
    assert hash_tag("x{a}y{b}") == "a"
    assert Partitioner(4096).partition_of("{a}{b}") == crc_partition("a", 4096)


@pytest.mark.parametrize(
    ("key", "tag"),
    [
        ("plain", "plain"),
        ("{}", "{}"),
        ("{}:a", "{}:a"),
        ("{user1", "{user1"),
        ("user1}", "user1}"),
        ("a{}{b}", "a{}{b}"),
        ("}{x}", "x"),
        ("{{x}}", "{x"),
    ],
)
def test_empty_or_unclosed_braces_hash_the_whole_key(key, tag):
    assert hash_tag(key) == tag
    assert Partitioner(4096).partition_of(key) == crc_partition(tag, 4096)


def test_empty_tag_keys_do_not_collapse_together():
    partitioner = Partitioner(4096)
    assert partitioner.partition_of("{}:a") == crc_partition("{}:a", 4096)
    assert partitioner.partition_of("{}:b") == crc_partition("{}:b", 4096)
    assert crc_partition("{}:a", 4096) != crc_partition("{}:b", 4096)


@pytest.mark.parametrize("partitions", [0, -1, PARTITIONS_MAX + 1])
def test_partition_count_out_of_bounds_is_refused(partitions):
    with pytest.raises(ValueError, match=r"partitions must be within 1\.\.4096"):
        Partitioner(partitions)


@pytest.mark.parametrize("partitions", [1, PARTITIONS_MAX])
def test_partition_count_bounds_are_inclusive(partitions):
    partitioner = Partitioner(partitions)
    assert partitioner.partitions == partitions
    assert 0 <= partitioner.partition_of("anything") < partitions


def test_single_partition_holds_everything():
    partitioner = Partitioner(1)
    assert {partitioner.partition_of(f"k{index}") for index in range(50)} == {0}


def test_partitions_of_matches_partition_of_for_plain_and_tagged_keys():
    partitioner = Partitioner(32)
    plain = [f"k{index}" for index in range(100)]
    assert partitioner.partitions_of(plain) == [partitioner.partition_of(key) for key in plain]
    mixed = [*plain, "{t}:1", "{t}:2", "{", "{}", "x{y}"]
    assert partitioner.partitions_of(mixed) == [partitioner.partition_of(key) for key in mixed]
    assert partitioner.partitions_of([]) == []


def test_group_returns_positions_by_partition_in_input_order():
    partitioner = Partitioner(8)
    keys = ["{a}1", "b", "{a}2", "c", "{a}3", "b"]
    groups = partitioner.group(keys)
    tagged = partitioner.partition_of("a")
    assert {0, 2, 4} <= set(groups[tagged])
    expected: dict[int, list[int]] = {}
    for position, key in enumerate(keys):
        expected.setdefault(partitioner.partition_of(key), []).append(position)
    assert groups == expected
    assert sorted(position for positions in groups.values() for position in positions) == list(
        range(len(keys))
    )
    for positions in groups.values():
        assert positions == sorted(positions)


def test_group_accepts_any_iterable():
    partitioner = Partitioner(8)
    keys = ["x", "y", "z"]
    assert partitioner.group(iter(keys)) == partitioner.group(keys)
    assert partitioner.group([]) == {}


@pytest.mark.parametrize("partitions", [64, 10, 1])
def test_packed_keys_hash_like_one_by_one(partitions: int) -> None:
    partitioner = Partitioner(partitions)
    keys = ["alice", "bob", "é-unicode", "x" * 300, "{user1}:a", "{user1}:b", "{}", "a{b"]
    packed = "\x00".join(keys).encode()
    assert partitioner.partitions_of_packed(packed) == partitioner.partitions_of(keys)
    plain = keys[:4]
    assert partitioner.partitions_of_packed("\x00".join(plain).encode()) == [
        partitioner.partition_of(key) for key in plain
    ]
