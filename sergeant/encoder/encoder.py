"""``Encoder``: a task <-> bytes, as a serializer followed by an optional compressor.

A task travels as a five-item envelope ``(id, kwargs, trace_id, date, run_count)``:
cheaper to build and parse than a dict, and the same shape for every serializer.
Written as a tuple, which pickle reads about a fifth faster than a list (msgpack
and JSON write both as the same array); a list, as earlier versions wrote it,
reads the same.
"""

from __future__ import annotations

import itertools
import threading
import typing

from sergeant.encoder.compressor import COMPRESSORS, Compressor
from sergeant.encoder.serializer import SERIALIZERS, Serializer
from sergeant.encoder.signing import HEADER_SIZE, MAGIC, BadSignature, Signer
from sergeant.encoder.task_id import peek_task_id
from sergeant.encoder.unencodable import explain
from sergeant.errors import ConfigError, DecodeError, EncodingError
from sergeant.objects import Task

__all__ = ["Encoder"]

_new_task = object.__new__


class Encoder:
    """Encodes tasks for the broker and decodes them back.

    Args:
        serializer: a name from ``SERIALIZERS`` (``'pickle'``, ``'msgpack'``, ``'json'``).
        compressor: a name from ``COMPRESSORS``, or None for no compression.
        signing_keys: keys to sign payloads with (the first) and to verify them with
            (any); empty = unsigned payloads, and signed ones read unchecked.
    """

    def __init__(
        self,
        serializer: str = "pickle",
        compressor: str | None = None,
        signing_keys: typing.Sequence[bytes] = (),
    ) -> None:
        if serializer not in SERIALIZERS:
            raise ConfigError(
                f"Encoder.serializer is {serializer!r}; use one of "
                f"{', '.join(map(repr, SERIALIZERS))}"
            )
        if compressor is not None and compressor not in COMPRESSORS:
            raise ConfigError(
                f"Encoder.compressor is {compressor!r}; use None or one of "
                f"{', '.join(map(repr, COMPRESSORS))}"
            )
        self.serializer: Serializer = SERIALIZERS[serializer]()
        self.compressor: Compressor | None = COMPRESSORS[compressor]() if compressor else None
        self.signer: Signer | None = Signer(signing_keys) if signing_keys else None
        #: Workflow steps decoded so far: a batch that left it unchanged has none, so
        #: the broker looks for steps only in the batches that hold some.
        self.steps_decoded = 0
        self._steps_lock = threading.Lock()

    def encode(self, task: Task) -> bytes:
        """The bytes for one task.

        Raises:
            EncodingError: the kwargs cannot be serialized with this serializer.
        """
        return self.encode_many([task])[0]

    def encode_many(self, tasks: typing.Iterable[Task]) -> list[bytes]:
        """The bytes for many tasks, in order (one call, no per-task overhead beyond codecs).

        A workflow step keeps its place in the workflow, and a scheduled task its tick
        (under ``'s'``): their envelope has a sixth item, a dict.
        """
        return self._encode(
            [
                (t.id, t.kwargs, t.trace_id, t.date, t.run_count)
                if t._flow is None and t.scheduled_for is None
                else (t.id, t.kwargs, t.trace_id, t.date, t.run_count, _extras(t))
                for t in tasks
            ]
        )

    def encode_steps(
        self,
        ids: typing.Sequence[str],
        kwargs_list: typing.Sequence[dict[str, typing.Any]],
        flows: typing.Sequence[dict[str, typing.Any]],
        trace_id: str | None,
        date: float,
    ) -> list[bytes]:
        """The bytes for new workflow steps: ``encode_new`` plus each step's place."""
        return self._encode(
            [
                (task_id, kwargs, trace_id, date, 0, flow)
                for task_id, kwargs, flow in zip(ids, kwargs_list, flows, strict=True)
            ]
        )

    def encode_new(
        self,
        ids: typing.Sequence[str],
        kwargs_list: typing.Sequence[dict[str, typing.Any]],
        trace_id: str | None,
        date: float,
    ) -> list[bytes]:
        """The bytes for new tasks (run_count 0) without building ``Task`` objects.

        The producer's fast path: one creation date and trace id for the whole batch.
        """
        if self.compressor is None and self.signer is None:
            dumps = self.serializer.dumps
            try:  # the usual case, in one loop: no list of envelopes in between
                return [
                    dumps((task_id, kwargs, trace_id, date, 0))
                    for task_id, kwargs in zip(ids, kwargs_list, strict=True)
                ]
            except Exception:  # _encode, below, names what could not be encoded
                pass
        return self._encode(
            [
                (task_id, kwargs, trace_id, date, 0)
                for task_id, kwargs in zip(ids, kwargs_list, strict=True)
            ]
        )

    def _encode(self, envelopes: list[tuple[typing.Any, ...]]) -> list[bytes]:
        dumps = self.serializer.dumps
        try:
            encoded = [dumps(envelope) for envelope in envelopes]
        except Exception as exc:
            message = explain(dumps, self.serializer.name, [e[1] for e in envelopes], exc)
            raise EncodingError(message) from exc
        if self.compressor is not None:
            compress = self.compressor.compress
            encoded = [compress(data) for data in encoded]
        if self.signer is not None:
            sign = self.signer.sign
            encoded = [sign(data) for data in encoded]
        return encoded

    def peek_id(self, data: bytes) -> str | None:
        """The task id in ``data``, read without decoding the task (a pickle is parsed,
        never run); None when no id is found. With keys, only a validly signed
        payload gives its id (a forged dead letter cannot fail another task)."""
        if self.signer is not None:
            try:
                data = self.signer.verify(data)
            except BadSignature:
                return None
        elif data.startswith(MAGIC):
            data = data[HEADER_SIZE:]
        if self.compressor is not None:
            try:
                data = self.compressor.decompress(data)
            except Exception:
                return None
        return peek_task_id(self.serializer.name, data)

    def decode(self, data: bytes) -> Task:
        """The task for some bytes from the broker.

        Raises:
            DecodeError: the bytes are not a task encoded with this encoder; carries
                the codec name and the raw bytes.
            BadSignature: this encoder has keys and the bytes are not signed by one
                of them (checked before anything is decoded).
        """
        raw = data
        if self.signer is not None:
            data = self.signer.verify(data)
        try:  # _loads, inlined: decode runs once per task
            if self.compressor is not None:
                try:
                    data = self.compressor.decompress(data)
                except Exception as exc:
                    raise DecodeError(
                        self.compressor.name, raw, f"{type(exc).__name__}: {exc}"
                    ) from exc
            try:
                envelope = self.serializer.loads(data)
            except Exception as exc:
                raise DecodeError(
                    self.serializer.name, raw, f"{type(exc).__name__}: {exc}"
                ) from exc
        except DecodeError:
            # Signed, but this worker has no key: read unchecked. Looked for only once
            # the bytes failed to decode (no codec reads the signature header), so
            # unsigned tasks pay nothing for it.
            if self.signer is not None or not raw.startswith(MAGIC):
                raise
            envelope = self._loads(raw[HEADER_SIZE:], raw)
        try:
            task_id, kwargs, trace_id, date, run_count = envelope
        except (TypeError, ValueError):
            return self._decode_step(envelope, raw)
        if type(kwargs) is not dict or type(envelope) not in (tuple, list):
            raise DecodeError(self.serializer.name, raw, f"not a task envelope: {envelope!r:.100}")
        # Hot path: fill the slots directly, about half the cost of Task.__init__.
        task = _new_task(Task)
        task.kwargs, task.trace_id, task.date = kwargs, trace_id, date
        task.run_count, task.id, task.deliveries = run_count, task_id, 0
        return task

    def decode_many(
        self, payloads: typing.Sequence[bytes], deliveries: typing.Sequence[int] | None = None
    ) -> list[Task]:
        """``[decode(data) for data in payloads]``, in one loop: a batch pays for the
        codec and one slot fill per task, not for a method call each. Signed or
        compressed payloads, workflow steps and anything unusual take :meth:`decode`.
        ``deliveries``: each task's ``Task.deliveries`` (else 0).

        Raises:
            DecodeError, BadSignature: as :meth:`decode`, for the first bad payload.
        """
        counts = itertools.repeat(0) if deliveries is None else deliveries
        decode = self.decode
        if self.signer is not None or self.compressor is not None:
            tasks = [decode(data) for data in payloads]
            for task, count in zip(tasks, counts, strict=False):  # counts may be endless
                task.deliveries = count
            return tasks
        loads, new, task_class = self.serializer.loads, _new_task, Task
        tasks = []
        append = tasks.append
        for data, count in zip(payloads, counts, strict=False):
            try:
                envelope = loads(data)
                task_id, kwargs, trace_id, date, run_count = envelope
            except Exception:
                task = decode(data)  # a step, a signed payload, or a DecodeError
                task.deliveries = count
                append(task)
                continue
            if type(kwargs) is not dict or type(envelope) not in (tuple, list):
                task = decode(data)
                task.deliveries = count
                append(task)
                continue
            task = new(task_class)
            task.kwargs, task.trace_id, task.date = kwargs, trace_id, date
            task.run_count, task.id, task.deliveries = run_count, task_id, count
            append(task)
        return tasks

    def _decode_step(self, envelope: typing.Any, raw: bytes) -> Task:
        """A workflow step's six-item envelope (off the hot path: plain tasks have five)."""
        try:
            task_id, kwargs, trace_id, date, run_count, flow = envelope
        except (TypeError, ValueError):
            kwargs = flow = None
        if type(kwargs) is not dict or type(flow) is not dict:
            raise DecodeError(self.serializer.name, raw, f"not a task envelope: {envelope!r:.100}")
        scheduled_for = flow.get("s")
        if scheduled_for is not None:
            flow = {key: value for key, value in flow.items() if key != "s"}
        if flow:
            with self._steps_lock:
                self.steps_decoded += 1
        step = flow or None
        return Task(
            kwargs, trace_id, date, run_count, task_id, 0, None, flow.get("f"), step, scheduled_for
        )

    def _loads(self, data: bytes, raw: bytes) -> typing.Any:
        """Decompress and deserialize ``data`` (``raw``: the bytes as received)."""
        if self.compressor is not None:
            try:
                data = self.compressor.decompress(data)
            except Exception as exc:
                raise DecodeError(
                    self.compressor.name, raw, f"{type(exc).__name__}: {exc}"
                ) from exc
        try:
            return self.serializer.loads(data)
        except Exception as exc:
            raise DecodeError(self.serializer.name, raw, f"{type(exc).__name__}: {exc}") from exc


def _extras(task: Task) -> dict[str, typing.Any]:
    """The sixth item of an envelope: the step's place, and ``'s'``, the tick."""
    if task.scheduled_for is None:
        assert task._flow is not None
        return task._flow
    return {**(task._flow or {}), "s": task.scheduled_for}
