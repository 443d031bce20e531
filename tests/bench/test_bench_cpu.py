"""CPU per task and steady-state rates: the drivers' sampling helpers, the runner's parsing,
the arithmetic, the report's tables and the batched task counts (no benchmark is run)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench import cli, markdown_cpu, runner
from bench.cpu import CpuCell, RunCpu, of_result, summarize
from bench.drivers import _common
from bench.libraries import Sizes, all_libraries
from bench.report import Cell
from bench.runner import Brokers


class FakeRedis:
    """Answers ``INFO cpu`` like redis-py, with what the test set."""

    def __init__(self, info: dict[str, float]) -> None:
        self.info_dict = info

    def info(self, section: str) -> dict[str, float]:
        assert section == "cpu"
        return self.info_dict


def test_redis_cpu_keeps_the_server_and_main_thread_fields() -> None:
    info = {
        "used_cpu_user": 1.5,
        "used_cpu_sys": 0.5,
        "used_cpu_user_main_thread": 1.25,
        "used_cpu_sys_main_thread": 0.25,
        "used_cpu_user_children": 9.0,
    }
    assert _common.redis_cpu(FakeRedis(info)) == {
        "redis_user": 1.5,
        "redis_sys": 0.5,
        "redis_user_main_thread": 1.25,
        "redis_sys_main_thread": 0.25,
    }
    # Redis before 7 has no main-thread fields: the others still count.
    assert _common.redis_cpu(FakeRedis({"used_cpu_user": 1.0, "used_cpu_sys": 2.0})) == {
        "redis_user": 1.0,
        "redis_sys": 2.0,
    }


def test_cpu_sample_and_delta_count_this_process_and_redis() -> None:
    start = _common.cpu_sample(FakeRedis({"used_cpu_user": 1.0, "used_cpu_sys": 2.0}))
    sum(i * i for i in range(200_000))  # some CPU of our own
    end = _common.cpu_sample(FakeRedis({"used_cpu_user": 1.25, "used_cpu_sys": 2.5}))
    delta = _common.cpu_delta(start, end)
    assert delta["redis_user"] == 0.25
    assert delta["redis_sys"] == 0.5
    assert delta["worker_user"] + delta["worker_sys"] >= 0.0
    assert set(_common.cpu_sample(None)) == {"worker_user", "worker_sys"}


def test_steady_is_only_reported_when_both_stamps_were_taken() -> None:
    assert _common.steady(10.0, 12.5) == {"steady_seconds": 2.5}
    assert _common.steady(0.0, 0.0) == {}


def test_cpu_per_task_is_worker_plus_redis_in_microseconds() -> None:
    extra = {
        "cpu": {
            "worker_user": 0.002,
            "worker_sys": 0.001,
            "redis_user": 0.0006,
            "redis_sys": 0.0004,
        },
        "steady_seconds": 0.5,
    }
    figures = of_result(1000, 0.8, extra)
    assert figures.worker_us == pytest.approx(3.0)
    assert figures.redis_us == pytest.approx(1.0)
    assert figures.total_us == pytest.approx(4.0)
    assert figures.steady_rate == pytest.approx(2000.0)
    # No spawn time reported: the timed interval is the spawn-to-last one.
    assert figures.spawn_rate == pytest.approx(1250.0)
    assert of_result(1000, 0.8, {**extra, "spawn_seconds": 2.0}).spawn_rate == pytest.approx(500.0)


def test_without_redis_figures_only_the_worker_is_known() -> None:
    figures = of_result(100, 1.0, {"cpu": {"worker_user": 0.001, "worker_sys": 0.0}})
    assert figures.worker_us == pytest.approx(10.0)
    assert figures.redis_us is None
    assert figures.total_us is None
    assert figures.steady_rate is None
    assert of_result(100, 1.0, {}).worker_us is None


def test_cells_take_each_figure_s_median_and_skip_runs_without_cpu() -> None:
    runs = [RunCpu(w, 1.0, w + 1.0, None, 10.0) for w in (1.0, 3.0, 2.0)]
    cell = summarize(runs)
    assert cell == CpuCell(2.0, 1.0, 3.0, None, 10.0)
    assert summarize([RunCpu(None, None, None, None, 10.0)]) is None


def test_measure_keeps_the_driver_s_cpu_and_the_whole_run_redis_figure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    readings = iter(
        [{"used_cpu_user": 1.0, "used_cpu_sys": 1.0}, {"used_cpu_user": 3.0, "used_cpu_sys": 1.5}]
    )
    monkeypatch.setattr(runner, "redis_cpu_now", lambda port: next(readings))
    result = {
        "seconds": 0.5,
        "n": 1000,
        "distinct": 1000,
        "pid": 1,
        "cpu": {"worker_user": 0.003, "worker_sys": 0.001, "redis_user": 0.001, "redis_sys": 0.0},
    }
    monkeypatch.setattr(runner, "run_driver", lambda library, args: dict(result))
    library = next(lib for lib in all_libraries(Path(sys.executable)) if lib.name == "sergeant")
    run = runner.measure(library, "push_bulk", 1000, Brokers(6379), 1)
    assert run.ok
    assert run.rate == 2000.0
    assert run.extra["redis_cpu_whole_run"] == {"used_cpu_user": 2.0, "used_cpu_sys": 0.5}
    assert run.cpu_per_task().total_us == pytest.approx(5.0)


def _cell(rate: float, total_us: float | None, n: int = 1000) -> Cell:
    cell = Cell(n, rate, rate, rate, 1, 1)
    if total_us is not None:
        cell.cpu = CpuCell(total_us / 2, total_us / 2, total_us, rate * 1.1, rate / 2)
    return cell


def test_cpu_table_shows_each_library_and_both_ratios_against_0_27() -> None:
    cells: dict[str, dict[str, Cell]] = {
        "sergeant": {"consume_batched_amo": _cell(300.0, 2.0), "push_bulk": _cell(10.0, None)},
        "sergeant-0.27": {"consume_batched": _cell(200.0, 4.0)},
        "celery": {"consume_batched": _cell(20.0, 40.0, n=5000)},
    }
    table = markdown_cpu.cpu_table(cells)
    assert table[0].startswith("| workload | library | n | worker µs/task | Redis µs/task |")
    rows = table[2:]
    assert rows[0].startswith("| consume batched (ours: at-least-once, defaults) | sergeant-0.27 |")
    assert rows[0].endswith("| 4.00 |  |  |")
    assert rows[1].endswith("| 5,000 | 20.00 | 20.00 | 40.00 | 10.00x | 0.10x |")
    # Ours at-most-once is compared with 0.27's plain batched consume.
    assert rows[2].endswith("| sergeant | 1,000 | 1.00 | 1.00 | 2.00 | 0.50x | 1.50x |")
    assert len(rows) == 3  # push_bulk reported no CPU
    steady = markdown_cpu.steady_table(cells)
    assert steady[2].endswith("| sergeant-0.27 | 200 | 220 | 100 |")
    assert markdown_cpu.section(cells)[0] == "## CPU per task on Redis"
    assert markdown_cpu.section({"sergeant": {"push_bulk": _cell(1.0, None)}}) == []


def test_batched_consumes_of_the_fast_libraries_default_to_a_million_tasks() -> None:
    sizes = cli.sizes_from(cli.parse_args([]))
    assert sizes.batched_n == 1_000_000
    assert sizes.n == Sizes.n
    by_name = {lib.name: lib for lib in all_libraries(Path(sys.executable))}
    for name in ("sergeant", "sergeant-0.27", "redis-py", "sergeant-cluster-sharded"):
        assert by_name[name].size("consume_batched", sizes) == 1_000_000
    assert by_name["sergeant"].size("consume_procs_2", sizes) == 1_000_000
    assert by_name["sergeant"].size("consume_one", sizes) == Sizes.n
    assert by_name["celery"].size("consume_batched", sizes) == Sizes.peer_consume_n
    assert by_name["sergeant-cluster"].size("consume_one", sizes) == Sizes.n
    assert by_name["sergeant-sqlite"].size("consume_batched", sizes) == Sizes.sqlite_n
    # A run that sets --n (a quick look) sizes its batched runs with it.
    quick = cli.sizes_from(cli.parse_args(["--n", "20000"]))
    assert by_name["sergeant"].size("consume_batched", quick) == 20_000
    explicit = cli.sizes_from(cli.parse_args(["--n", "20000", "--batched-n", "50000"]))
    assert by_name["redis-py"].size("consume_batched", explicit) == 50_000


def test_a_cluster_s_redis_cpu_is_summed_over_its_primaries_with_each_one_s_share() -> None:
    primaries = [
        FakeRedis({"used_cpu_user": 1.0, "used_cpu_sys": 1.0}),
        FakeRedis({"used_cpu_user": 3.0, "used_cpu_sys": 1.0}),
    ]
    sample = _common.redis_cpu(primaries)
    assert sample["redis_user"] == 4.0
    assert sample["redis_sys"] == 2.0
    assert (sample["redis_p0_user"], sample["redis_p1_user"]) == (1.0, 3.0)
    later = _common.redis_cpu([FakeRedis({"used_cpu_user": 2.0, "used_cpu_sys": 1.0})] * 2)
    cpu = _common.cpu_delta(sample, later)
    figures = of_result(1000, 1.0, {"cpu": {**cpu, "worker_user": 0.001, "worker_sys": 0.0}})
    assert figures.redis_shares == pytest.approx((1.0, 0.0))  # the second primary went back
    shares = of_result(
        1000,
        1.0,
        {"cpu": {"redis_p0_user": 1, "redis_p0_sys": 0, "redis_p1_user": 3, "redis_p1_sys": 0}},
    )
    assert shares.redis_shares == pytest.approx((0.25, 0.75))
    cell = summarize([shares, shares])
    assert cell is None  # no worker figure: nothing measured
    measured = RunCpu(1.0, 1.0, 2.0, None, None, (0.25, 0.75))
    summary = summarize([measured, RunCpu(1.0, 1.0, 2.0, None, None, (0.75, 0.25))])
    assert summary is not None
    assert summary.redis_shares == [0.75, 0.25]  # largest first in each run
    cells = {"sergeant-cluster-sharded": {"push_bulk": _cell(10.0, 2.0)}}
    cpu_cell = cells["sergeant-cluster-sharded"]["push_bulk"].cpu
    assert cpu_cell is not None
    cpu_cell.redis_shares = [0.34, 0.33, 0.33]
    assert "34% · 33% · 33%" in "\n".join(markdown_cpu.section(cells))


def test_the_sharded_cluster_library_runs_three_shards() -> None:
    where = Brokers(6379, cluster_url="redis+cluster://127.0.0.1:7000,127.0.0.1:7001")
    assert where.connector("redis-cluster-sharded", "x")["params"]["shards"] == 3
    assert "shards" not in where.connector("redis-cluster", "x")["params"]
    clients = _common.primary_clients("redis+cluster://127.0.0.1:7000,127.0.0.1:7001?shards=3")
    assert [c.connection_pool.connection_kwargs["port"] for c in clients] == [7000, 7001]
