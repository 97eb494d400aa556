"""The domain map holds: services/ imports run one way, lower layers first, with no circle between domains.

access, catalog, members → loyalty → payments → orders → marketing → live, content → analytics. A lower domain
that needs a higher one's behaviour offers a registry (pricing steps, settlement hooks, member pricing) instead
of importing it. Shared modules (`services.errors`, `services.rate_limit`) and `infra/` import no domain.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ROOT / "services"

LAYER = {
    "access": 0,
    "catalog": 0,
    "members": 0,
    "loyalty": 1,
    "payments": 2,
    "orders": 3,
    "marketing": 4,
    "live": 5,
    "content": 5,
    "analytics": 6,
}


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, dotted module) of every import in the file, including imports inside functions but not the ones
    guarded by `if TYPE_CHECKING:` (annotations only, no runtime dependency)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            guarded.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if id(node) in guarded:
            continue
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "services":
                found.extend((node.lineno, f"services.{alias.name}") for alias in node.names)
            else:
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and ast.unparse(node.func).endswith("import_module"):
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                found.append((node.lineno, node.args[0].value))
    return found


def _domain_of(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) >= 2 and parts[0] == "services" and parts[1] in LAYER:
        return parts[1]
    return None


def _domain_edges() -> dict[tuple[str, str], list[str]]:
    edges: dict[tuple[str, str], list[str]] = {}
    for path in sorted(SERVICES.rglob("*.py")):
        source = _domain_of("services." + ".".join(path.relative_to(SERVICES).with_suffix("").parts))
        if source is None:
            continue
        for line, module in _imported_modules(path):
            target = _domain_of(module)
            if target is not None and target != source:
                edges.setdefault((source, target), []).append(f"{path.relative_to(ROOT)}:{line} {module}")
    return edges


def test_every_domain_package_exists_and_says_what_it_owns() -> None:
    for domain in LAYER:
        init = SERVICES / domain / "__init__.py"
        assert init.is_file(), f"services/{domain}/ is missing"
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and "import" in doc, f"services/{domain}/__init__.py must say what it owns and may import"


def test_no_domain_imports_a_higher_one() -> None:
    wrong = [
        f"{source} → {target}: {where}"
        for (source, target), places in _domain_edges().items()
        if LAYER[target] > LAYER[source]
        for where in places
    ]
    assert not wrong, "imports against the domain order:\n" + "\n".join(wrong)


def test_no_circle_between_domains() -> None:
    graph: dict[str, set[str]] = {d: set() for d in LAYER}
    for source, target in _domain_edges():
        graph[source].add(target)
    circles: list[str] = []

    def visit(node: str, trail: list[str]) -> None:
        for nxt in sorted(graph[node]):
            if nxt in trail:
                circles.append(" → ".join([*trail[trail.index(nxt) :], nxt]))
            elif len(trail) < len(LAYER):
                visit(nxt, [*trail, nxt])

    for domain in LAYER:
        visit(domain, [domain])
    assert not circles, "circles between domain packages:\n" + "\n".join(sorted(set(circles)))


def test_shared_code_imports_no_domain() -> None:
    shared = [SERVICES / "errors.py", SERVICES / "rate_limit.py", *sorted((ROOT / "infra").rglob("*.py"))]
    wrong = [
        f"{path.relative_to(ROOT)}:{line} {module}"
        for path in shared
        for line, module in _imported_modules(path)
        if _domain_of(module) is not None
    ]
    assert not wrong, "shared modules must not import a domain:\n" + "\n".join(wrong)


def test_the_rules_see_real_imports() -> None:
    # Guards the walker itself: a known import must be found, or every test above passes for nothing.
    edges = _domain_edges()
    assert ("orders", "catalog") in edges
    assert ("loyalty", "members") in edges or ("loyalty", "catalog") in edges
