"""Signing keys in the config, the signed frame, and reading payloads for operators safely."""

from __future__ import annotations

import datetime
import decimal
import hmac
import io
import os
import pickle
import uuid
import zlib
from pathlib import Path

import pytest

from sergeant import config
from sergeant.encoder import Encoder
from sergeant.encoder.peek import SafeUnpickler, peek
from sergeant.encoder.signing import HEADER_SIZE, BadSignature
from sergeant.errors import ConfigError
from sergeant.objects import Task

KEY = "a-signing-key-of-32-characters!!"
OLD = "an-older-signing-key-still-valid"


def test_key_given_directly_from_env_or_from_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The three ways to give keys agree; env and file hold several, newest first."""
    monkeypatch.setenv("TASK_KEYS", f"{KEY} {OLD}")
    key_file = tmp_path / "keys"
    key_file.write_text(f"{KEY}\n{OLD}\n")
    expected = [KEY.encode(), OLD.encode()]
    assert config.Encoder(signing_key=[KEY, OLD.encode()]).signing_keys() == expected
    assert config.Encoder(signing_key_env="TASK_KEYS").signing_keys() == expected
    assert config.Encoder(signing_key_file=str(key_file)).signing_keys() == expected
    assert config.Encoder().signing_keys() == []


def test_the_key_never_shows_in_reprs_or_errors() -> None:
    """repr of the config (and of a worker config holding it) and of the signer hide the key."""
    encoder_config = config.Encoder(signing_key=KEY)
    worker_config = config.WorkerConfig(name="q", encoder=encoder_config)
    assert KEY not in repr(encoder_config)
    assert KEY not in repr(worker_config)
    signer = Encoder(signing_keys=[KEY.encode()]).signer
    assert KEY not in repr(signer)
    with pytest.raises(ConfigError) as info:
        config.Encoder(signing_key=[KEY, "short-secret"])
    assert "short-secret" not in str(info.value)
    assert "key #2 is 12 bytes; use at least 16" in str(info.value)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"signing_key_env": "NO_SUCH_VARIABLE_HERE"}, "is not set in the environment"),
        ({"signing_key_file": "/no/such/key/file"}, "cannot be read"),
        ({"signing_key": []}, "holds no key"),
        ({"signing_key": KEY, "signing_key_env": "X"}, "both signing_key and signing_key_env"),
        ({"signing_key": [KEY, 7]}, "key #2 is a int"),
    ],
)
def test_bad_signing_config_is_a_clear_error(fields: dict[str, object], message: str) -> None:
    """Each mistake names the field and what to do."""
    with pytest.raises(ConfigError, match=message):
        config.Encoder(**fields)  # type: ignore[arg-type]


def test_signed_roundtrip_rotation_and_refusals() -> None:
    """Sign with the first key, verify with any; unsigned, unknown-key and tampered refused."""
    task = Task(kwargs={"n": 1})
    new, old = KEY.encode(), OLD.encode()
    by_old = Encoder(signing_keys=[old]).encode(task)
    rotated = Encoder(signing_keys=[new, old])
    assert rotated.decode(by_old).kwargs == {"n": 1}
    by_rotated = rotated.encode(task)
    assert Encoder(signing_keys=[new]).decode(by_rotated).id == task.id
    with pytest.raises(BadSignature, match="a key this worker does not have"):
        Encoder(signing_keys=[old]).decode(by_rotated)
    with pytest.raises(BadSignature, match="not signed"):
        rotated.decode(Encoder().encode(task))
    with pytest.raises(BadSignature, match="does not match"):
        rotated.decode(by_rotated[:-1] + bytes([by_rotated[-1] ^ 1]))


def test_worker_without_key_runs_signed_tasks_unchecked() -> None:
    """An unsigned encoder reads a signed payload (producers can start signing first)."""
    data = Encoder("msgpack", "zlib", [KEY.encode()]).encode(Task(kwargs={"n": 2}))
    assert Encoder("msgpack", "zlib").decode(data).kwargs == {"n": 2}


def test_safe_unpickler_builds_plain_values_and_refuses_other_globals() -> None:
    """Containers, datetime, decimal, uuid and OrderedDict load; os.system does not."""
    value = {
        "when": datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
        "price": decimal.Decimal("1.5"),
        "id": uuid.uuid4(),
        "tags": frozenset({"a"}),
        "blob": bytearray(b"x"),
    }
    assert safe_load(pickle.dumps(value, protocol=5)) == value
    with pytest.raises(pickle.UnpicklingError, match=r"refused global posix\.system"):
        safe_load(pickle.dumps(os.system, protocol=5))


def safe_load(data: bytes) -> object:
    """``data`` loaded by the operators' unpickler."""
    return SafeUnpickler(io.BytesIO(data)).load()


@pytest.mark.parametrize("serializer", ["pickle", "msgpack", "json"])
@pytest.mark.parametrize("compressor", [None, "zlib", "gzip", "bzip2", "lzma"])
def test_peek_reads_every_codec_even_when_the_target_does_not_name_it(
    serializer: str, compressor: str | None
) -> None:
    """A broker named by URL (pickle, no compressor assumed) still shows every kind of task."""
    task = Task(kwargs={"n": 3}, trace_id="t")
    seen = peek(Encoder(serializer, compressor).encode(task), Encoder())
    assert seen.task == task, seen.note
    assert serializer in seen.note


def test_peek_stops_at_a_compression_bomb() -> None:
    """A payload that unpacks past the bound is described, not unpacked."""
    bomb = zlib.compress(b"[" + b" " * (80 << 20))
    seen = peek(bomb, Encoder(compressor="zlib"))
    assert seen.task is None
    assert "larger than 64 MiB" in seen.note


@pytest.mark.parametrize("key_size", [16, 64, 65, 200])
def test_signature_is_standard_hmac_sha256(key_size: int) -> None:
    """The frame's MAC is HMAC-SHA256 of the payload, as ``hmac`` computes it (any key size)."""
    key = bytes(range(256))[:key_size]
    signed = Encoder("json", signing_keys=[key]).encode(Task(kwargs={"n": 1}, id="x"))
    body = signed[HEADER_SIZE:]
    assert signed[8:HEADER_SIZE] == hmac.digest(key, body, "sha256")
    assert Encoder("json", signing_keys=[key]).decode(signed).id == "x"
