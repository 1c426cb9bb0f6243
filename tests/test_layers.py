"""The house of `dcat`: one numbered notebook per module, and imports only point down.

`nbs/NN_name.ipynb` exports `dcat/<module>.py` (its `#| default_exp` cell); NN is the module's
rank. A module may import only modules of a lower rank (config at the bottom, cli at the top), so
there are no cycles. Private names (`_x`) stay inside their module. Plotting (matplotlib, seaborn)
lives in dcat.plots only, argparse in dcat.cli only, and nothing but the tests imports dcat.cli.
dcat.plots draws numbers that other rooms computed: it computes no metric from labels and scores.
dcat.stats imports without torch. Every check is static (AST), except the `dcat.stats` import.

DCAT_LAYERS_ROOT points the checks at another tree (used to test this file on fake trees).
"""
import ast, json, os, re, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(os.environ.get("DCAT_LAYERS_ROOT") or Path(__file__).resolve().parent.parent)
PLOTTING, SKIP = {"matplotlib", "seaborn"}, {"__init__", "_modidx"}

# Violations to tolerate, written as reported but without line numbers ("dcat/x.py: ...").
# It must stay empty: fix the code instead.
KNOWN_VIOLATIONS: list = []

def check(violations, rule: str):
    "Fail with one line per violation not in KNOWN_VIOLATIONS (compared with ':<line>' removed)."
    if left := [v for v in violations if re.sub(r":\d+\b", "", v) not in KNOWN_VIOLATIONS]:
        pytest.fail(f"{rule}:\n  " + "\n  ".join(left), pytrace=False)

def rel(p: Path) -> str: return p.relative_to(ROOT).as_posix()

MODULES = {p.stem: p for p in sorted((ROOT / "dcat").glob("*.py")) if p.stem not in SKIP}

def cells(nb: Path) -> list:
    "(index, cell_type, source) of the notebook `nb`."
    return [(i, c["cell_type"], "".join(c["source"]) if isinstance(c["source"], list) else c["source"])
            for i, c in enumerate(json.loads(nb.read_text(encoding="utf-8"))["cells"])]

def notebooks() -> list:
    "(number, notebook, default_exp or None) for every numbered notebook nbs/NN_*.ipynb."
    out = []
    for nb in sorted((ROOT / "nbs").glob("*.ipynb")):
        if m := re.match(r"(\d+)_", nb.name):
            exps = [e.group(1) for _, _, src in cells(nb) if (e := re.match(r"#\s*\|\s*default_exp\s+(\S+)", src))]
            out.append((int(m.group(1)), nb, exps[0] if exps else None))
    return out

RANK = {exp: n for n, _, exp in notebooks() if exp}

def units(*patterns) -> list:
    "(label, tree, own module or None) per .py file, and per parsable code cell of a notebook."
    out = []
    for pat in patterns:
        for p in sorted(ROOT.glob(pat)):
            if p.suffix == ".py":
                own = p.stem if p.parent == ROOT / "dcat" else None
                out.append((rel(p), ast.parse(p.read_text(encoding="utf-8"), str(p)), own))
                continue
            for i, kind, src in cells(p):
                if kind != "code": continue
                src = "\n".join("" if l.lstrip().startswith(("%", "!")) else l for l in src.splitlines())
                try: out.append((f"{rel(p)} cell {i}", ast.parse(src), None))
                except SyntaxError: pass  # not Python: nothing to report
    return out

def tree_imports(tree, package=None) -> list:
    "(lineno, module, names) for every import anywhere in `tree`; relative ones resolved in `package`."
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:
                if node.level > 1 or package is None: continue
                mod = f"{package}.{mod}" if mod else package
            out.append((node.lineno, mod, [a.name for a in node.names]))
    return out

def module_imports(path) -> list:
    "(lineno, module, names) for every import in the Python file `path` (a dcat/ file resolves `.x`)."
    tree = ast.parse(Path(path).read_text(encoding="utf-8"), str(path))
    return tree_imports(tree, "dcat" if Path(path).parent.name == "dcat" else None)

def targets(mod, names) -> list:
    "The dcat modules an import reaches: `dcat.x`, `dcat.x.y`, or `from dcat import x`."
    if mod == "dcat": return [n for n in names if n in MODULES]
    return [mod.split(".")[1]] if mod.startswith("dcat.") else []

def imports_of(unit) -> list:
    "tree_imports of a unit from units(); relative imports count in dcat/ only."
    return tree_imports(unit[1], "dcat" if unit[2] else None)

def graph() -> dict:
    "{module: {imported dcat module: first lineno}}, self-imports dropped."
    g = {m: {} for m in MODULES}
    for m, path in MODULES.items():
        for line, mod, names in module_imports(path):
            for t in targets(mod, names):
                if t != m: g[m].setdefault(t, line)
    return g

def test_one_notebook_per_module():
    bad, nbs = [], notebooks()
    for n in sorted({n for n, _, _ in nbs}):
        if len(same := [rel(nb) for k, nb, _ in nbs if k == n]) > 1: bad.append(f"notebook number {n:02d} is used by {same}")
    for n, nb, exp in nbs:
        if exp is None: bad.append(f"{rel(nb)}: no '#| default_exp' cell")
        elif exp not in MODULES: bad.append(f"{rel(nb)}: exports dcat.{exp}, but dcat/{exp}.py does not exist")
    for m, p in MODULES.items():
        if len(by := [rel(nb) for _, nb, exp in nbs if exp == m]) != 1:
            bad.append(f"{rel(p)}: exported by {len(by)} numbered notebooks {by}, not exactly one")
    check(bad, "notebooks and modules do not pair up")

def test_no_import_cycles():
    g, state, stack, cycles = graph(), {}, [], {}
    def visit(m):
        state[m] = "open"; stack.append(m)
        for t in sorted(g.get(m, {})):
            if t not in g: continue
            if state.get(t) == "open":
                cyc = stack[stack.index(t):] + [t]
                key = min(tuple(cyc[i:-1] + cyc[:i]) for i in range(len(cyc) - 1))
                cycles.setdefault(key, " -> ".join(f"{a} (dcat/{a}.py:{g[a][b]})" for a, b in zip(cyc, cyc[1:])) + f" -> {t}")
            elif t not in state: visit(t)
        state[m] = "done"; stack.pop()
    for m in sorted(g):
        if m not in state: visit(m)
    check([f"import cycle: {c}" for c in cycles.values()], "dcat modules import each other in a cycle")

def test_imports_go_to_earlier_notebooks():
    bad = []
    for m, deps in graph().items():
        if m not in RANK: continue  # reported by test_one_notebook_per_module
        for t, line in sorted(deps.items()):
            if t not in RANK: bad.append(f"dcat/{m}.py:{line}: imports dcat.{t}, which no numbered notebook exports")
            elif RANK[t] >= RANK[m]:
                bad.append(f"dcat/{m}.py:{line}: dcat.{m} (notebook {RANK[m]:02d}) imports dcat.{t} (notebook {RANK[t]:02d}), not an earlier one")
    check(bad, "imports must go to earlier notebooks")

def private(name) -> bool: return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))

def test_no_private_imports_across_modules():
    bad = []
    for unit in units("dcat/*.py", "nbs/studies/*.ipynb", "bench/*.py", "tests/*.py"):
        label, tree, own = unit
        for line, mod, names in imports_of(unit):
            src = mod.split(".")[1] if mod.startswith("dcat.") else mod
            if (mod == "dcat" or mod.startswith("dcat.")) and src != own and (ps := [n for n in names if private(n)]):
                bad.append(f"{label}:{line}: imports private {', '.join(ps)} from {mod}")
        alias = {}  # local name -> dcat module, for `import dcat.x as a` and `from dcat import x [as a]`
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                alias.update({a.asname: a.name.split(".")[1] for a in node.names if a.asname and a.name.startswith("dcat.")})
            elif isinstance(node, ast.ImportFrom) and (node.module == "dcat" or (own and node.level == 1 and not node.module)):
                alias.update({a.asname or a.name: a.name for a in node.names if a.name in MODULES})
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Attribute) and private(node.attr)): continue
            v = node.value
            src = (alias.get(v.id) if isinstance(v, ast.Name) else
                   v.attr if isinstance(v, ast.Attribute) and isinstance(v.value, ast.Name) and v.value.id == "dcat" else None)
            if src and src != own: bad.append(f"{label}:{node.lineno}: uses private dcat.{src}.{node.attr}")
    check(bad, "private names used outside their module")

def only_in(tops: set, allowed: str, *patterns) -> list:
    "Imports of the top-level packages `tops` in `patterns`, except in module `allowed`."
    return [f"{label}:{line}: imports {mod}" for label, tree, own in units(*patterns) if own != allowed
            for line, mod, _ in tree_imports(tree) if mod.split(".")[0] in tops]

def test_plotting_only_in_plots():  # tests and bench may plot (tests only set the backend)
    check(only_in(PLOTTING, "plots", "dcat/*.py", "nbs/studies/*.ipynb"),
          "matplotlib/seaborn belong in dcat/plots.py (templates call dcat.plots)")

# What computes a metric from labels and scores: these libraries, and every function of the rooms that turn
# predictions into numbers (dcat.stats: metrics, curves, intervals; dcat.uncertainty: scores, reports). dcat.plots may
# take only their classes and UPPER_CASE constants (e.g. `stats.Curve`), never a function: what it draws is computed
# by the caller. (dcat.shift stays open: plots shows its corruptions of an image, which are pictures, not metrics.)
METRIC_LIBS, NUMBER_ROOMS = ("sklearn.metrics", "scipy.stats", "torchmetrics", "monai.metrics"), ("stats", "uncertainty")

def room_types(room: str) -> set:
    "The classes and UPPER_CASE constants that dcat/<room>.py defines at top level."
    out = set()
    for node in ast.parse(MODULES[room].read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ClassDef): out.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            out |= {t.id for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
                    if isinstance(t, ast.Name) and t.id.isupper()}
    return out

def metric_uses(source: str, label: str = "dcat/plots.py") -> list:
    "Where `source` (a module of dcat/) imports or uses a metric library, or a function of a room of numbers."
    allowed = {f"dcat.{r}": room_types(r) for r in NUMBER_ROOMS}
    def verdict(full: str):                     # why a dotted name (module, or module.name) is out of bounds, or None
        if any(full == lib or full.startswith(lib + ".") for lib in METRIC_LIBS): return "a metric library"
        room, _, name = full.partition(".")[2].partition(".") if full.startswith("dcat.") else ("", "", "")
        if f"dcat.{room}" in allowed and name and name.split(".")[0] not in allowed[f"dcat.{room}"]:
            return f"a function of dcat.{room}: the caller computes, plots is given the numbers"
    bad, alias, inner = [], {}, set()           # alias: local name -> the dotted module it stands for
    tree = ast.parse(source, label)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if why := verdict(a.name): bad.append(f"{label}:{node.lineno}: imports {a.name} ({why})")
                alias[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            mod = ("dcat" + ("." + node.module if node.module else "")) if node.level == 1 else node.module or ""
            for a in node.names:
                if why := verdict(f"{mod}.{a.name}"): bad.append(f"{label}:{node.lineno}: imports {mod}.{a.name} ({why})")
                alias[a.asname or a.name] = f"{mod}.{a.name}"
    for node in ast.walk(tree):                 # module.function, through any alias (outermost attribute only)
        if not isinstance(node, ast.Attribute) or id(node) in inner: continue
        parts, v = [node.attr], node.value
        while isinstance(v, ast.Attribute): inner.add(id(v)); parts.insert(0, v.attr); v = v.value
        if isinstance(v, ast.Name) and v.id in alias:
            full = ".".join([alias[v.id], *parts])
            if why := verdict(full): bad.append(f"{label}:{node.lineno}: uses {full} ({why})")
    return sorted(bad, key=lambda v: int(v.split(":")[1]))

def test_plots_compute_no_metric():
    check(metric_uses((ROOT / "dcat" / "plots.py").read_text(encoding="utf-8")),
          "dcat.plots draws what dcat.stats computed: no metric from labels and scores in dcat/plots.py")

def test_the_metric_rule_can_fail():
    # what dcat/plots.py did before the curves moved to dcat.stats, in every spelling the rule must see
    src = ("import sklearn, dcat.stats\nfrom sklearn import metrics as skm\nfrom .stats import Curve, METRIC_LABELS, auc\n"
           "from . import uncertainty as u\nfrom sklearn.preprocessing import label_binarize\n"
           "def f(y, p): return skm.roc_curve(y, p), sklearn.metrics.auc(y, p), u.uncertainty_scores(p), dcat.stats.auc(y, p)\n")
    found = [re.sub(r" \(.*", "", v) for v in metric_uses(src, "x.py")]
    assert found == ["x.py:2: imports sklearn.metrics", "x.py:3: imports dcat.stats.auc",
                     "x.py:6: uses sklearn.metrics.roc_curve", "x.py:6: uses sklearn.metrics.auc",
                     "x.py:6: uses dcat.uncertainty.uncertainty_scores", "x.py:6: uses dcat.stats.auc"], found

def test_argparse_only_in_cli():
    check(only_in({"argparse"}, "cli", "dcat/*.py"), "argparse belongs in dcat/cli.py")

def test_nothing_imports_cli():
    bad = [f"{unit[0]}:{line}: imports {'cli from dcat' if mod == 'dcat' else mod}" for unit in units("dcat/*.py", "nbs/studies/*.ipynb", "bench/*.py")
           if unit[2] != "cli" for line, mod, names in imports_of(unit)
           if "cli" in targets(mod, names) or (mod == "dcat" and "cli" in names)]
    check(bad, "dcat.cli is the top of the house; only tests may import it")

def patched(fn) -> bool:
    "A fastcore @patch / @patch_to method: it belongs to a class, not to the module's namespace."
    return any(re.search(r"\bpatch(_to)?\b", ast.unparse(d)) for d in fn.decorator_list)

def definitions(body):
    "(lineno, name) for the names a module body defines, looking into if/try/with blocks."
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if isinstance(node, ast.ClassDef) or not patched(node): yield node.lineno, node.name
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and (not isinstance(node, ast.AnnAssign) or node.value):
            for t in node.targets if isinstance(node, ast.Assign) else [node.target]:
                for n in ast.walk(t):
                    if isinstance(n, ast.Name): yield node.lineno, n.id
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            for part in (node.body, getattr(node, "orelse", []), getattr(node, "finalbody", []),
                         *[h.body for h in getattr(node, "handlers", [])]):
                yield from definitions(part)

def test_one_definition_per_public_name():
    where = {}
    for label, tree, own in units("dcat/*.py"):
        if own not in MODULES: continue
        for line, name in definitions(tree.body):
            if name != "__all__" and not name.startswith("_"): where.setdefault(name, {}).setdefault(label, line)
    bad = [f"{name} is defined in " + ", ".join(f"{f}:{l}" for f, l in files.items())
           for name, files in sorted(where.items()) if len(files) > 1]
    check(bad, "public names defined in more than one module")

def test_stats_without_torch():
    # cwd comes first on sys.path, so this imports ROOT's dcat; hence it runs on a DCAT_LAYERS_ROOT tree too
    # (not skipped there): the fake trees carry a dcat/stats.py and a pyproject.toml of their own.
    code = ("import sys, dcat.stats; print('torch' in sys.modules); "
            "print(dcat.stats.__file__, sorted(m for m in sys.modules if m.startswith('dcat.')))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"`import dcat.stats` failed under {sys.executable} in {ROOT}:\n{r.stderr[-2000:]}"
    torch, loaded = r.stdout.splitlines()[-2:]
    assert torch == "False", f"`import dcat.stats` imports torch ({loaded})"

def test_pyproject_entry_point():
    import tomllib
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8")).get("project", {}).get("scripts", {})
    assert scripts.get("dcat") == "dcat.cli:main", f"pyproject.toml: [project.scripts] dcat = {scripts.get('dcat')!r}, expected 'dcat.cli:main'"
