"""The structure: no import cycles, no import up the layers, one file per extension.

Layers, from the bottom (a module imports only its own layer and those below it):

    base     vocabulary, layout, registry, io, recipe, defences (pure, no torch)
    library  the domain: data, models, masks, pruning, training, scoring, confidences,
             attacks, metrics, summaries, tables, figures, report, ...
    jobs     lottery_mia.jobs: one entry point per rule (what the scripts call)
    config   lottery_mia.config: the typed config (reads the registries)
    plan     lottery_mia.plan: the grid planned from the config (what the rules ask)

Every import statement counts, also inside functions (a lazy import is still an arrow), but
not those under ``if TYPE_CHECKING:``. A package's ``__init__`` counts as importing every
module it loads through its registry. Checked from the source with ``ast``; run this file to
see the findings: ``.venv/bin/python -m pytest tests/test_structure.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PKG = ROOT / "src" / "lottery_mia"
LAYERS = {
    "base": {"vocabulary", "layout", "registry", "io", "recipe", "defences", "__init__"},
    "jobs": {"jobs"},
    "config": {"config"},
    "plan": {"plan"},
}
ORDER = ["base", "library", "jobs", "config", "plan"]


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def layer_of(module: str) -> str:
    top = module.split(".")[1] if "." in module else "__init__"
    for layer, names in LAYERS.items():
        if top in names:
            return layer
    return "library"


def _type_checking_lines(tree) -> set[int]:
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                for sub in ast.walk(child):
                    if hasattr(sub, "lineno"):
                        lines.add(sub.lineno)
    return lines


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The lottery_mia modules ``path`` imports (resolved; a name imported from a package
    that is a module of it counts as that module)."""
    tree = ast.parse(path.read_text())
    skip = _type_checking_lines(tree)
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            names = [mod] + [f"{mod}.{a.name}" for a in node.names]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "load" and path.name == "__init__.py"):
            names = [m for m in modules if m.startswith(me + ".") and m.count(".") ==
                     me.count(".") + 1]  # a registry loading every module of its package
            skipped = [ast.literal_eval(k.value) for k in node.keywords if k.arg == "skip"]
            names = [m for m in names if not skipped or m.rsplit(".", 1)[1] not in skipped[0]]
        else:
            continue
        for n in names:
            if n in modules and n != me:
                out.add(n)
    return out


def graph() -> dict[str, set[str]]:
    files = sorted(PKG.rglob("*.py"))
    modules = {module_name(p) for p in files}
    return {module_name(p): imports_of(p, modules) for p in files}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_no_module_imports_one_that_imports_it_back():
    found = cycles(graph())
    assert not found, found


def test_no_module_imports_a_higher_layer():
    g = graph()
    up = [(m, n) for m, deps in g.items() for n in deps
          if ORDER.index(layer_of(n)) > ORDER.index(layer_of(m))]
    assert not up, up


def test_the_base_layer_and_the_dag_side_stay_torch_free():
    """What the Snakefile imports (config, plan, layout, the registries) never imports
    torch at module level."""
    import subprocess
    import sys

    code = ("import sys; sys.path.insert(0, %r)\n"
            "import lottery_mia.plan, lottery_mia.figures, lottery_mia.jobs\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n"
            "assert 'matplotlib' not in sys.modules, 'matplotlib imported'\n" % str(PKG.parent))
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_scripts_call_the_jobs_layer_only():
    for script in (ROOT / "workflow" / "scripts").glob("*.py"):
        if script.name == "_checkout.py":
            continue
        mods = [n.module for n in ast.walk(ast.parse(script.read_text()))
                if isinstance(n, ast.ImportFrom) and n.module]
        assert all(m == "lottery_mia.jobs" or m.startswith("lottery_mia.jobs.") for m in mods), \
            (script.name, mods)


# Modules that read or compute from data (a membership split, samples, images): the config
# validates values and reads none of them (the plan checks what the data allows).
DATA_MODULES = {"lottery_mia.membership", "lottery_mia.attack_samples", "lottery_mia.data",
                "lottery_mia.plan.limits"}


def test_the_config_computes_nothing_from_data():
    g = graph()
    config = [m for m in g if m == "lottery_mia.config" or m.startswith("lottery_mia.config.")]
    assert config
    reads = {(m, n) for m in config for n in g[m] if n in DATA_MODULES}
    assert not reads, reads


def test_no_module_is_over_500_lines():
    long = {str(p.relative_to(PKG)): n for p in PKG.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 500}
    assert not long, long


def test_every_module_has_its_test_file():
    """``pkg/name.py`` is tested in ``tests/test_name.py``, or, for the modules of a package
    (plug-ins, the jobs, the audit), in the package's ``tests/test_<package>.py``. Private
    modules (``_name.py``) are tested through the module that uses them."""
    tests = {p.stem for p in (ROOT / "tests").glob("test_*.py")}
    missing = []
    for path in sorted(PKG.rglob("*.py")):
        if path.name.startswith("_"):
            continue
        names = {f"test_{path.stem}", f"test_{path.parent.name}"}
        if not names & tests:
            missing.append(str(path.relative_to(PKG)))
    assert not missing, f"modules without a test file named after them: {missing}"


def _job_modules(code: str, cwd) -> set[str]:
    """The modules a fresh interpreter holds after running ``code`` (job calls)."""
    import json
    import os
    import subprocess
    import sys

    out = cwd / "modules.json"
    code += f"\nimport json, sys\njson.dump(sorted(sys.modules), open({str(out)!r}, 'w'))\n"
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return set(json.loads(out.read_text()))


ARCHS = ("resnet18", "resnet50", "resnet20", "vgg16_bn")


def test_jobs_import_no_torchvision_models_and_no_dynamo(tmp_path):
    """Start-up is most of a small job's life: ``torchvision.models`` costs a job about 1 s
    and pulls in ``torch._dynamo`` (another second). No training, pruning or scoring job of
    an architecture the project defines itself imports ``torchvision.models`` (DenseNet-121
    is torchvision's own and may) or ``torch._dynamo`` (PyTorch's optimizers import it on
    their first use; the CPU training jobs' SGD, runtime.ForeachSGD, does not)."""
    train = _job_modules(f"""
from lottery_mia.jobs.split import build_membership_split
from lottery_mia.data import DataSpec
from lottery_mia.jobs.train import train_dense
build_membership_split("digits", None, key="k", download=False, members=100, nonmembers=100,
                       scored_members=None, seed=0, output="m.parquet")
data = DataSpec("digits", "digits", None, "m.parquet")
for arch in {ARCHS!r}:
    train_dense(data=data, arch=arch, recipe=dict(width=4, epochs=1, batch_size=50, lr=0.05,
                num_workers=0), seed=0, rewind_epoch=0, device="cpu", out_model=arch + ".pt",
                out_init=arch + "-init.pt", out_rewind=arch + "-rewind.pt",
                out_metrics=arch + ".json", threads=1)
""", tmp_path)
    score = _job_modules(f"""
from lottery_mia.data import DataSpec
from lottery_mia.jobs.prune import prune_mask
from lottery_mia.jobs.score import extract_confidences
data = DataSpec("digits", "digits", None, "m.parquet")
for arch in {ARCHS!r}:
    prune_mask(method="oneshot", settings=None, score_model=arch + ".pt",
               out_mask=arch + "-mask.pt", out_report=arch + "-mask.json", sparsity=0.5)
    extract_confidences(data=data, model_path=arch + ".pt", dataset="digits", arch=arch,
                        sparsity=0.0, device="cpu", batch_size=200, output=arch + ".parquet",
                        threads=1, num_workers=0)
""", tmp_path)
    assert "lottery_mia.networks._resnet_modules" in train & score
    for name, modules, banned in (
            ("training", train, ("torchvision.models", "torchvision.ops", "torch._dynamo",
                                 "sympy", "matplotlib")),
            ("pruning or scoring", score, ("torchvision.models", "torchvision.ops",
                                           "torch._dynamo", "sympy", "matplotlib"))):
        heavy = sorted(m for m in modules if m in banned)
        assert not heavy, f"a {name} job imports {heavy}"
