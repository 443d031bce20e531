"""Task ids: unique within a process (from any thread) and across a fork."""

from __future__ import annotations

import os
import threading

from sergeant.objects import new_task_id, new_task_ids


def test_ids_made_by_threads_at_once_are_all_different() -> None:
    made: list[list[str]] = []

    def make() -> None:
        mine: list[str] = []
        for _ in range(200):
            mine += new_task_ids(7)
            mine.append(new_task_id())
        made.append(mine)

    threads = [threading.Thread(target=make) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [task_id for mine in made for task_id in mine]
    assert len(every) == 8 * 200 * 8
    assert len(set(every)) == len(every)


def test_a_batch_of_ids_counts_on_from_the_last_one() -> None:
    first = new_task_id()
    batch = new_task_ids(3)
    prefix, number = first.rsplit("-", 1)
    assert batch == [f"{prefix}-{int(number) + n}" for n in (1, 2, 3)]


def test_a_forked_child_makes_other_ids() -> None:
    parent = new_task_ids(5)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.write(write, " ".join(new_task_ids(5)).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 1000).decode().split()
    assert len(child) == 5
    assert not set(child) & set(parent)
