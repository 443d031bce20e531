"""The import contract: the layers of ``sergeant``, bottom to top, and what may import what.

Read from the source with ``ast`` (nothing is imported). Every import counts: at
module level, inside a function, and under ``if typing.TYPE_CHECKING:`` (a type is a
dependency too; the heartbeat drives a protocol rather than importing the consumer).
The rules:

- no upward import: a module imports only from its own layer or the ones below;
- no cycle between modules;
- a private module (a ``_name`` part) is imported only from its home: a package's
  ``pkg._x`` from inside ``pkg``, a top-level ``sergeant._x`` from its own layer;
- the broker is the only door: above it, no import of ``sergeant.connector`` or
  ``sergeant.encoder`` and no ``broker.connector`` / ``broker.encoder``;
- the packages in ``INDEPENDENT`` (two sides of one layer) do not import each other.

A crossing let through goes in ``ALLOWED`` with why; an entry that no longer matches
fails the test, so the list only shrinks (it is empty). ``docs/concepts/architecture.md``
draws these layers.
"""

from __future__ import annotations

import ast
import dataclasses
import pathlib

# The source tree, not the imported package: a broken import must not hide the report.
PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "sergeant"

#: Bottom to top: one package per layer (the core is the top-level modules). A name
#: stands for the module and everything under it (except the root ``sergeant``, which
#: is only the flat public API in ``__init__``).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # Leaves every layer may use: errors, records, settings, how a task ends, the log
    # handlers and throttles, and the Prometheus counters.
    (
        "core",
        (
            "sergeant.errors",
            "sergeant.objects",
            "sergeant.config",
            "sergeant._config_checks",
            "sergeant._config_url",
            "sergeant._config_flow",
            "sergeant.control",
            "sergeant.logging",
            "sergeant.metrics",
            "sergeant.workflow",
            "sergeant.ticks",
        ),
    ),
    # Bytes only: the connector contract and its engines.
    ("connector", ("sergeant.connector",)),
    # Tasks to bytes and back.
    ("encoder", ("sergeant.encoder",)),
    # Tasks over a connector: push, lease, ack, dead letters, kill notes, stored
    # results, the running-task file. The only door to a connector or an encoder.
    ("broker", ("sergeant.broker",)),
    # Running tasks: the consumer (leases in, acknowledgements out), the executors
    # and the killers. ``INDEPENDENT`` keeps the two sides apart.
    ("run", ("sergeant.consume", "sergeant.executor", "sergeant.killer")),
    # The user's class and its loop, and loading it by name.
    ("worker", ("sergeant.worker",)),
    # What an operator reads: queue stats and the metrics endpoint.
    ("ops", ("sergeant.ops",)),
    # Processes: the worker process, the supervisor and its protocol; the 0.27 paths.
    ("process", ("sergeant.process", "sergeant.supervisor", "sergeant.slave")),
    ("cli", ("sergeant.cli",)),
    ("api", ("sergeant",)),
)

#: Packages of one layer that must not import each other.
INDEPENDENT: tuple[tuple[str, str], ...] = (
    ("sergeant.consume", "sergeant.executor"),
    ("sergeant.consume", "sergeant.killer"),
)

#: Layers above the broker, which must reach connectors and encoders through it.
ABOVE_THE_BROKER = ("run", "worker", "ops", "process", "cli")

#: (importer, imported) pairs the contract lets through, each with why.
ALLOWED: dict[tuple[str, str], str] = {}

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
    edge = Edge("sergeant.connector.base", "sergeant.cli", "x.py:1")
    assert list(breaches([edge])) == [("sergeant.connector.base", "sergeant.cli")]
    assert cycles([edge, Edge("sergeant.cli", "sergeant.connector.base", "y.py:1")])


def independent_breaches(edges: list[Edge]) -> list[str]:
    def inside(module: str, package: str) -> bool:
        return module == package or module.startswith(package + ".")

    return [
        f"{edge.where}: {edge.importer} imports {edge.imported}, which must stay apart"
        for edge in edges
        for one, other in INDEPENDENT
        if (inside(edge.importer, one) and inside(edge.imported, other))
        or (inside(edge.importer, other) and inside(edge.imported, one))
    ]


def door_breaches(edges: list[Edge]) -> list[str]:
    """Imports of a connector or an encoder, and uses of ``broker.connector`` or
    ``broker.encoder``, in the layers above the broker."""
    found = [
        f"{edge.where}: {edge.importer} imports {edge.imported} past the broker"
        for edge in edges
        if layer_name(edge.importer) in ABOVE_THE_BROKER
        and edge.imported.split(".")[:2] in (["sergeant", "connector"], ["sergeant", "encoder"])
    ]
    for name, path in all_modules().items():
        if layer_name(name) not in ABOVE_THE_BROKER:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in ("connector", "encoder")
                and isinstance(node.value, (ast.Name, ast.Attribute))
                and getattr(node.value, "attr", getattr(node.value, "id", "")) == "broker"
            ):
                where = f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
                found.append(f"{where}: {name} reaches broker.{node.attr}")
    return found


def test_independent_packages_do_not_import_each_other() -> None:
    found = independent_breaches(import_graph())
    assert not found, "\n".join(found)


def test_the_broker_is_the_only_door() -> None:
    # Above the broker, nothing touches a connector or an encoder: the records they
    # share are re-exported by ``sergeant.broker``.
    found = door_breaches(import_graph())
    assert not found, "past the broker:\n" + "\n".join(found)


def test_the_door_check_catches_a_connector_import() -> None:
    edge = Edge("sergeant.consume", "sergeant.connector.base", "x.py:1")
    assert door_breaches([edge]) == [
        "x.py:1: sergeant.consume imports sergeant.connector.base past the broker"
    ]
