"""The import contract: the layers of ``sergeant``, bottom to top, and what may import what.

Read from the source with ``ast`` (nothing is imported). Every import counts: at
module level, inside a function, and under ``if typing.TYPE_CHECKING:`` (a type is a
dependency too; the heartbeat drives a protocol rather than importing the consumer).
Three rules:

- no upward import: a module imports only from its own layer or the ones below;
- no cycle between modules;
- a private module (a ``_name`` part) is imported only from its home: a package's
  ``pkg._x`` from inside ``pkg``, a top-level ``sergeant._x`` from its own layer.

What the tree still breaks is in ``ALLOWED``, each entry with why; the restructuring
of the package tree removes them, and an entry that no longer matches fails the test
so the list only shrinks. ``docs/concepts/architecture.md`` draws these layers.
"""

from __future__ import annotations

import ast
import dataclasses
import pathlib

# The source tree, not the imported package: a broken import must not hide the report.
PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "sergeant"

#: Bottom to top. A name stands for the module and everything under it (except the
#: root ``sergeant``, which is only the flat public API in ``__init__``).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # Leaves every layer may use: errors, records, settings, how a task ends, the log
    # handlers, and the Prometheus counters (no sergeant import of their own).
    (
        "core",
        (
            "sergeant.errors",
            "sergeant.objects",
            "sergeant.config",
            "sergeant._config_checks",
            "sergeant._config_url",
            "sergeant.control",
            "sergeant.logging",
            "sergeant.metrics",
        ),
    ),
    # Bytes only: the connector contract and its engines; ``_full`` throttles the
    # "broker is full" log lines the engines write.
    ("connector", ("sergeant.connector", "sergeant._full")),
    # Tasks to bytes and back.
    ("encoder", ("sergeant.encoder",)),
    # Tasks over a connector: push, lease, ack, dead letters; stored results.
    (
        "broker",
        (
            "sergeant.broker",
            "sergeant._broker_admin",
            "sergeant.kill_note",
            "sergeant._rejects",
            "sergeant.results",
        ),
    ),
    # Running tasks: the consumer and its helpers, the executors, the killers.
    (
        "run",
        (
            "sergeant.consumer",
            "sergeant._consumer_state",
            "sergeant._at_most_once",
            "sergeant._lease_book",
            "sergeant._at_least_once",
            "sergeant._backoff",
            "sergeant._heartbeat",
            "sergeant._prefetch",
            "sergeant._presence",
            "sergeant._running",
            "sergeant.executor",
            "sergeant.killer",
        ),
    ),
    # The user's class and its loop, and loading it by name.
    (
        "worker",
        (
            "sergeant.worker",
            "sergeant._worker_admin",
            "sergeant._worker_loop",
            "sergeant._worker_produce",
            "sergeant._gc",
            "sergeant._tracked",
            "sergeant.loader",
        ),
    ),
    # What an operator reads: queue stats and the metrics endpoint.
    ("ops", ("sergeant._stats", "sergeant.metrics_server")),
    # Processes: the worker process entry, the supervisor and its protocol.
    (
        "process",
        (
            "sergeant.slave",
            "sergeant._parent",
            "sergeant.supervisor",
            "sergeant.supervisor_leases",
            "sergeant.supervisor_policy",
            "sergeant.supervisor_slots",
        ),
    ),
    ("cli", ("sergeant.cli",)),
    ("api", ("sergeant",)),
)

#: (importer, imported) pairs the contract lets through for now, each with why.
ALLOWED: dict[tuple[str, str], str] = {
    # ``Throttle`` lives with ``Refusals`` in the connector layer's ``_full``; the
    # broker's reject log, the backoff and the consumer's presence log reuse it.
    ("sergeant._rejects", "sergeant._full"): "shared log throttle, owned by the connector layer",
    ("sergeant._backoff", "sergeant._full"): "shared log throttle, owned by the connector layer",
    ("sergeant.consumer", "sergeant._full"): "shared log throttle, owned by the connector layer",
    # The running-task file is written by the consumer and read by the worker process
    # and the supervisor: a process protocol that should be public in the process layer.
    ("sergeant.slave", "sergeant._running"): "running-task file, written by the consumer",
    ("sergeant.supervisor", "sergeant._running"): "running-task file, written by the consumer",
    (
        "sergeant.supervisor_leases",
        "sergeant._running",
    ): "running-task file, written by the consumer",
    # Stats read the workers' heartbeats; the CLI prints the stats.
    ("sergeant._stats", "sergeant._presence"): "heartbeat format, owned by the consumer",
    ("sergeant.cli.queues", "sergeant._stats"): "queue stats, owned by the ops layer",
}

#: Import cycles let through for now, each with why.
ALLOWED_CYCLES: dict[frozenset[str], str] = {
    # ``tokens`` names ``Node`` in annotations only (under TYPE_CHECKING) while
    # ``nodes`` builds a ``Tokens`` per node: no import-order hazard, but the two
    # modules are one unit until the token cache takes a protocol.
    frozenset(
        {"sergeant.connector.redis.nodes", "sergeant.connector.redis.tokens"}
    ): "type-only back-reference from the token cache to its node",
}


@dataclasses.dataclass(frozen=True)
class Edge:
    importer: str
    imported: str
    where: str  # path:line, for the message


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, pathlib.Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: pathlib.Path, modules: set[str]) -> list[Edge]:
    """Every ``sergeant`` module ``name`` imports, wherever the statement is."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    edges = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        where = f"{path.relative_to(PACKAGE.parent)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # ``from pkg import sub`` imports the module ``pkg.sub``.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        else:
            continue
        edges += [Edge(name, target, where) for target in targets if target in modules]
    return edges


def import_graph() -> list[Edge]:
    modules = all_modules()
    return [
        edge
        for name, path in modules.items()
        for edge in imports_of(name, path, set(modules))
        if edge.imported != name
    ]


def layer_of(module: str) -> int:
    best, index = "", -1
    for position, (_, members) in enumerate(LAYERS):
        for member in members:
            inside = module == member or (member != "sergeant" and module.startswith(member + "."))
            if inside and len(member) > len(best):
                best, index = member, position
    return index


def private_home(module: str) -> str | None:
    """The package a private module belongs to, or None for a public module."""
    parts = module.split(".")
    for index, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:index])
    return None


def layer_name(module: str) -> str:
    return LAYERS[layer_of(module)][0]


def breaches(edges: list[Edge]) -> dict[tuple[str, str], list[str]]:
    """Upward and private-module imports, by (importer, imported), with the reason."""
    found: dict[tuple[str, str], list[str]] = {}
    for edge in edges:
        low, high = layer_of(edge.importer), layer_of(edge.imported)
        reason = None
        if high > low:
            reason = (
                f"{edge.where}: upward import: {edge.importer} ({layer_name(edge.importer)}) "
                f"imports {edge.imported} ({layer_name(edge.imported)})"
            )
        home = private_home(edge.imported)
        if home == "sergeant" and high != low:
            reason = (
                f"{edge.where}: private module {edge.imported} ({layer_name(edge.imported)}) "
                f"imported from outside its layer by {edge.importer} "
                f"({layer_name(edge.importer)})"
            )
        elif home not in (None, "sergeant") and not (
            edge.importer == home or edge.importer.startswith(f"{home}.")
        ):
            reason = (
                f"{edge.where}: private module {edge.imported} imported from outside "
                f"{home} by {edge.importer}"
            )
        if reason is not None:
            found.setdefault((edge.importer, edge.imported), []).append(reason)
    return found


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in graph.get(todo.pop(), set()) - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def cycles(edges: list[Edge]) -> list[list[str]]:
    """Each set of modules that import each other, directly or through others."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.importer, set()).add(edge.imported)
    reach = {node: reachable(graph, node) for node in graph}
    found = {
        frozenset(other for other in reach[node] if node in reach.get(other, set()))
        for node in reach
        if node in reach[node]
    }
    return sorted(sorted(cycle) for cycle in found)


def test_every_module_has_a_layer() -> None:
    missing = [name for name in all_modules() if layer_of(name) < 0]
    assert not missing, f"modules in no layer (add them to LAYERS): {missing}"


def test_no_upward_or_private_import() -> None:
    found = breaches(import_graph())
    unexpected = [
        line for key, lines in sorted(found.items()) if key not in ALLOWED for line in lines
    ]
    assert not unexpected, "import contract broken:\n" + "\n".join(unexpected)


def test_allowed_entries_are_still_needed() -> None:
    stale = sorted(set(ALLOWED) - set(breaches(import_graph())))
    assert not stale, f"no longer needed, remove from ALLOWED: {stale}"


def test_no_import_cycle() -> None:
    found = {frozenset(cycle): cycle for cycle in cycles(import_graph())}
    unexpected = [cycle for key, cycle in found.items() if key not in ALLOWED_CYCLES]
    assert not unexpected, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in unexpected)
    stale = [sorted(key) for key in ALLOWED_CYCLES if key not in found]
    assert not stale, f"no longer a cycle, remove from ALLOWED_CYCLES: {stale}"


def test_the_contract_catches_an_upward_import() -> None:
    # The checker itself: a connector importing the CLI is reported.
    edge = Edge("sergeant.connector._connector", "sergeant.cli", "x.py:1")
    assert list(breaches([edge])) == [("sergeant.connector._connector", "sergeant.cli")]
    assert cycles([edge, Edge("sergeant.cli", "sergeant.connector._connector", "y.py:1")])
