"""The hash tags of a sharded queue's shards, and the ``shards`` setting's checks."""

from __future__ import annotations

import collections
import subprocess
import sys
import typing

import pytest

from sergeant.connector import _unique
from sergeant.connector.redis import keys, shards
from sergeant.connector.redis.settings import parse_params
from sergeant.errors import ConfigError

CLUSTER = "redis+cluster://a:7000,b:7001,c:7002"


NAMES = ["emails", "q", "a{b}c", "ünïcode"]


def _ranges(tags: typing.Sequence[str], count: int) -> list[int]:
    return [shards.shard_range(shards.slot_of(tag), count) for tag in tags]


@pytest.mark.parametrize("count", [2, 3, 5, shards.EXACT_SHARDS])
@pytest.mark.parametrize("queue", NAMES)
def test_each_shard_takes_a_slot_range_of_its_own(queue: str, count: int) -> None:
    tags = shards.shard_tags(queue, count)
    assert len(tags) == count
    assert sorted(_ranges(tags, count)) == list(range(count))
    # shard 0 keeps the legacy tag; the others are queue#k
    assert tags[0] == queue
    form = "{k}#{queue}" if "}" in queue else "{queue}#{k}"
    assert all(
        tag == form.format(queue=queue, k=tag.replace(queue, "").strip("#")) for tag in tags[1:]
    )


@pytest.mark.parametrize("queue", NAMES)
def test_raising_shards_keeps_every_tag(queue: str) -> None:
    """A raised count only adds shards: the items of the tags a queue had stay read."""
    most = shards.shard_tags(queue, shards.MAX_SHARDS)
    assert len(set(map(shards.slot_of, most))) == shards.MAX_SHARDS
    for count in [*range(1, 40), 100, 513, 1000]:
        assert shards.shard_tags(queue, count) == most[:count]


@pytest.mark.parametrize("count", [shards.EXACT_SHARDS + 1, 16, 64, 1024])
@pytest.mark.parametrize("queue", NAMES)
def test_beyond_the_exact_counts_no_range_holds_more_than_three(queue: str, count: int) -> None:
    held = collections.Counter(_ranges(shards.shard_tags(queue, count), count))
    assert max(held.values()) <= 3
    assert len(held) >= count * 2 // 3


def test_shard_zero_is_the_legacy_key_layout() -> None:
    assert keys.queue_keys(shards.shard_tags("emails", 3)[0]) == keys.queue_keys("emails")
    assert shards.shard_tags("emails", 1) == ("emails",)


def test_tags_are_the_same_in_another_process() -> None:
    code = "from sergeant.connector.redis import shards; print(shards.shard_tags('emails', 3))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == repr(shards.shard_tags("emails", 3))


def test_the_slot_is_the_one_redis_computes() -> None:
    # CLUSTER KEYSLOT "sergeant:{emails}:ready:high" and "...{foo}..." on a real server
    assert shards.slot_of("foo") == 12182
    assert shards.slot_of("emails") == shards.slot_of("emails")


def test_shards_from_params_or_the_url() -> None:
    assert parse_params(url=CLUSTER).shards == 1
    assert parse_params(url=CLUSTER, shards=3).shards == 3
    assert parse_params(url=CLUSTER + "?shards=3").shards == 3
    assert parse_params(url=CLUSTER + "?shards=3", shards=3).shards == 3
    seeds = [{"host": "a", "port": 1}, {"host": "b", "port": 2}]
    assert parse_params(nodes=seeds, cluster=True, shards=2).shards == 2
    assert parse_params(url="redis://a:1/0", shards=1).shards == 1


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"url": CLUSTER, "shards": 0}, r"params\.shards is 0; give an int from 1 to 1024"),
        ({"url": CLUSTER, "shards": 1025}, "shards is 1025; give an int from 1 to 1024"),
        ({"url": CLUSTER, "shards": "3"}, "shards is '3'"),
        ({"url": CLUSTER, "shards": True}, "shards is True"),
        ({"url": CLUSTER, "shards": 2.0}, "shards is 2.0"),
        ({"url": CLUSTER + "?shards=x"}, "url's shards is 'x'; give an int"),
        ({"url": CLUSTER + "?shards=2", "shards": 3}, "shards is 3; the url gives shards=2"),
        ({"url": "redis://a:1/0", "shards": 3}, "shards is 3; .*single server gains nothing"),
        ({"url": "redis://a:1/0?shards=3"}, "'shards' applies to a redis\\+cluster:// URL only"),
        (
            {"urls": ["redis://a:1", "redis://b:2"], "shards": 2},
            "shards is 2; .*independent nodes already spread every queue",
        ),
        (
            {"nodes": [{"host": "a", "port": 1}, {"host": "b", "port": 2}], "shards": 2},
            "independent nodes already spread",
        ),
    ],
)
def test_bad_shards_are_config_errors_naming_the_field(
    params: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_params(**params)  # type: ignore[arg-type]


@pytest.mark.parametrize("count", [2, 3, 5, 8])
def test_a_raised_count_moves_only_the_keys_the_new_member_takes(count: int) -> None:
    """Unique keys, groups and once keys sit on the member their key hashes to; one
    more member takes about its share of them, and no other key moves."""
    names = [f"tenant-{i}" for i in range(6000)]
    before = [_unique.member_of("q", name, count) for name in names]
    after = [_unique.member_of("q", name, count + 1) for name in names]
    moved = [new for old, new in zip(before, after, strict=True) if old != new]
    assert set(moved) == {count}
    assert 0.8 / (count + 1) < len(moved) / len(names) < 1.2 / (count + 1)
    held = collections.Counter(after)
    assert sorted(held) == list(range(count + 1))
    assert max(held.values()) < 1.2 * len(names) / (count + 1)
    assert _unique.member_of("q", "tenant-1", 1) == 0
