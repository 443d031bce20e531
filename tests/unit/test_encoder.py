"""Encoding round-trips for every serializer and compressor; bad bytes raise DecodeError."""

from __future__ import annotations

import pickle

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sergeant.config import COMPRESSORS, SERIALIZERS
from sergeant.encoder import Encoder
from sergeant.errors import DecodeError, EncodingError
from sergeant.objects import Task

CODECS = [(s, c) for s in SERIALIZERS for c in (None, *COMPRESSORS)]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=10,
)  # fmt: skip
tasks = st.builds(
    Task,
    kwargs=st.dictionaries(st.text(), json_values, max_size=5),
    trace_id=st.none() | st.text(max_size=20),
    date=st.floats(0, 4e9),
    run_count=st.integers(0, 1000),
)


@pytest.mark.parametrize(("serializer", "compressor"), CODECS)
@settings(max_examples=40, deadline=None)
@given(task=tasks)
def test_round_trip(serializer: str, compressor: str | None, task: Task) -> None:
    """decode(encode(task)) gives back an equal task, id included."""
    encoder = Encoder(serializer, compressor)
    assert encoder.decode(encoder.encode(task)) == task


@pytest.mark.parametrize(("serializer", "compressor"), CODECS)
@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=200))
def test_random_bytes_raise_decode_error(
    serializer: str, compressor: str | None, data: bytes
) -> None:
    """Arbitrary bytes either decode to a well-formed task or raise DecodeError; nothing else."""
    encoder = Encoder(serializer, compressor)
    error: DecodeError | None = None
    try:
        task = encoder.decode(data)
    except DecodeError as exc:
        error = exc
    else:
        assert isinstance(task.kwargs, dict)
    if error is not None:
        assert error.data == data
        assert error.codec in (serializer, compressor)


@pytest.mark.parametrize(
    ("serializer", "payload", "codec"),
    [
        ("pickle", pickle.dumps([1, {}, None, 0.0, 0])[:-3], "pickle"),
        ("pickle", msgpack.packb(["id", {}, None, 0.0, 0]), "pickle"),
        ("msgpack", b"\xc1garbage", "msgpack"),
        ("json", b'{"not": "an envelope"}', "json"),
        ("pickle", pickle.dumps({"kwargs": {}}), "pickle"),
    ],
)
def test_malformed_payloads_name_the_codec(serializer: str, payload: bytes, codec: str) -> None:
    """Truncated pickle, msgpack in a pickle queue, and wrong shapes name the failing codec."""
    with pytest.raises(DecodeError) as info:
        Encoder(serializer).decode(payload)
    assert info.value.codec == codec
    assert info.value.data == payload
    assert str(info.value).startswith(f"undecodable payload: {codec}: ")


def test_bad_compressed_data_names_the_compressor() -> None:
    """Bytes that are not zlib data fail in the compressor, named as such."""
    with pytest.raises(DecodeError) as info:
        Encoder("pickle", "zlib").decode(b"not zlib")
    assert info.value.codec == "zlib"


def test_unserializable_kwargs_raise_encoding_error() -> None:
    """kwargs JSON cannot hold give a clear EncodingError naming the serializer."""
    with pytest.raises(EncodingError, match="'json'"):
        Encoder("json").encode(Task(kwargs={"x": object()}))


def test_bytes_survive_msgpack_and_pickle() -> None:
    """Binary kwargs round-trip with msgpack and pickle."""
    for serializer in ("msgpack", "pickle"):
        encoder = Encoder(serializer)
        task = Task(kwargs={"blob": b"\x00\xff"})
        assert encoder.decode(encoder.encode(task)).kwargs == {"blob": b"\x00\xff"}


@pytest.mark.parametrize(("serializer", "compressor"), CODECS)
@settings(max_examples=25, deadline=None)
@given(batch=st.lists(tasks | st.binary(max_size=60), max_size=6))
def test_decode_many_is_decode_of_each(
    serializer: str, compressor: str | None, batch: list[Task | bytes]
) -> None:
    """A batch decodes as decoding each payload would: the same tasks (steps and all),
    or the DecodeError of the first bad payload."""
    encoder = Encoder(serializer, compressor)
    payloads = [item if isinstance(item, bytes) else encoder.encode(item) for item in batch]
    expected: list[Task] | type[DecodeError]
    try:
        expected = [encoder.decode(payload) for payload in payloads]
    except DecodeError:
        expected = DecodeError
    if expected is DecodeError:
        with pytest.raises(DecodeError):
            encoder.decode_many(payloads)
    else:
        assert encoder.decode_many(payloads) == expected


@pytest.mark.parametrize("serializer", SERIALIZERS)
def test_list_envelopes_of_earlier_versions_decode_the_same(serializer: str) -> None:
    """Tasks already in a queue, written as a list envelope by an earlier version
    (a scheduled task with its sixth item too), decode as the tuple written now."""
    encoder = Encoder(serializer)
    tasks = [
        Task(kwargs={"i": 1}, trace_id="t", date=5.0, run_count=2, id="a-1"),
        Task(kwargs={"i": 2}, date=6.0, id="a-2", scheduled_for=60.0),
    ]
    dumps = encoder.serializer.dumps
    old = [
        dumps(["a-1", {"i": 1}, "t", 5.0, 2]),
        dumps(["a-2", {"i": 2}, None, 6.0, 0, {"s": 60.0}]),
    ]
    new = encoder.encode_many(tasks)
    assert [encoder.decode(data) for data in old] == tasks
    assert encoder.decode_many(old) == encoder.decode_many(new) == tasks
    if serializer == "pickle":
        assert type(pickle.loads(new[0])) is tuple  # the envelope pickle reads fastest
    else:
        assert old == new  # msgpack and JSON write a tuple as the list it was
