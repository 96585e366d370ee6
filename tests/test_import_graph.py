"""The package's module-level import graph has no cycles (lazy imports inside functions are the allowed way to reach
back), so any module can be imported first and a newcomer can read the layers bottom-up."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def module_graph(package: str = "hf_iis") -> dict[str, set[str]]:
    """{module: modules of `package` it imports at module level}."""
    modules = {}
    for path in (ROOT / package).rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        parent = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom):
                base = parent.split(".")[: len(parent.split(".")) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                for alias in node.names:
                    hit = f"{target}.{alias.name}" if f"{target}.{alias.name}" in modules else target
                    if hit in modules and hit != name:
                        graph[name].add(hit)
            elif isinstance(node, ast.Import):
                graph[name].update(a.name for a in node.names if a.name in modules and a.name != name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if not state.get(nxt) and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if not state.get(node) and (cycle := visit(node)):
            return cycle
    return None


def test_the_checker_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_hf_iis_has_no_module_level_import_cycle():
    graph = module_graph()
    assert len(graph) > 20  # the walk saw the package
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


# ------------------------------------------------------------------ layers: lower layers never import upper ones
# Each rule: a package folder, and the folders (or modules) its code may not import, lazily or not.
LAYER_RULES = {
    "hf_iis.backbones": ("hf_iis.models", "hf_iis.inference", "hf_iis.training", "hf_iis.evaluation",
                         "hf_iis.distillation", "hf_iis.space", "hf_iis.cli", "hf_iis.hub_export"),
    "hf_iis.scaling": ("hf_iis.models", "hf_iis.inference", "hf_iis.training", "hf_iis.evaluation",
                       "hf_iis.distillation", "hf_iis.space", "hf_iis.cli", "hf_iis.hub_export"),
    "hf_iis.utils": ("hf_iis.backbones", "hf_iis.scaling", "hf_iis.models", "hf_iis.inference", "hf_iis.training",
                     "hf_iis.evaluation", "hf_iis.distillation", "hf_iis.space", "hf_iis.cli",
                     "hf_iis.hub_export"),
    "hf_iis.models": ("hf_iis.inference", "hf_iis.training", "hf_iis.evaluation", "hf_iis.distillation",
                      "hf_iis.space", "hf_iis.cli", "hf_iis.hub_export"),
    "hf_iis.inference": ("hf_iis.training", "hf_iis.evaluation", "hf_iis.distillation", "hf_iis.space",
                         "hf_iis.cli"),
}


def all_imports(package: str = "hf_iis") -> dict[str, set[str]]:
    """{module: modules of `package` it imports anywhere in its code (function-level imports included)}."""
    modules = {}
    for path in (ROOT / package).rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        parent = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = parent.split(".")[: len(parent.split(".")) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                for alias in node.names:
                    hit = f"{target}.{alias.name}" if f"{target}.{alias.name}" in modules else target
                    if hit in modules and hit != name:
                        graph[name].add(hit)
            elif isinstance(node, ast.Import):
                graph[name].update(a.name for a in node.names if a.name in modules and a.name != name)
    return graph


def _inside(module: str, folder: str) -> bool:
    return module == folder or module.startswith(f"{folder}.")


def forbidden_edges(graph: dict[str, set[str]], rules=LAYER_RULES) -> list[str]:
    edges = []
    for source, targets in sorted(graph.items()):
        for layer, banned in rules.items():
            if _inside(source, layer):
                edges += [f"{source} -> {t}" for t in sorted(targets) if any(_inside(t, b) for b in banned)]
    return edges


def test_the_layer_check_finds_a_planted_edge():
    graph = all_imports()
    assert "hf_iis.scaling.tta" in graph or "hf_iis.scaling.tta" in {t for ts in graph.values() for t in ts}
    planted = {**graph, "hf_iis.scaling.tta": graph.get("hf_iis.scaling.tta", set()) | {"hf_iis.inference.predictor"}}
    assert forbidden_edges(planted) == ["hf_iis.scaling.tta -> hf_iis.inference.predictor"]
    planted = {**graph, "hf_iis.models.student.feature_triangulation": {"hf_iis.evaluation.metrics"}}
    assert forbidden_edges(planted) == ["hf_iis.models.student.feature_triangulation -> hf_iis.evaluation.metrics"]


def test_lower_layers_never_import_upper_ones():
    graph = all_imports()
    assert any(_inside(m, "hf_iis.models") for m in graph) and any(_inside(m, "hf_iis.inference") for m in graph)
    assert forbidden_edges(graph) == []


def test_no_import_circle_even_through_lazy_imports_between_the_predictors():
    """predictor.py and predictors.py once imported each other (lazily); the model-kind check now lives below both."""
    graph = all_imports()
    cycle = find_cycle({k: {t for t in v if _inside(t, "hf_iis.inference")} for k, v in graph.items()
                        if _inside(k, "hf_iis.inference")})
    assert cycle is None, " -> ".join(cycle)
    assert "hf_iis.models.kinds" in graph["hf_iis.inference.predictor"]
