"""A finished run stays finished: reuse is keyed on what decides the weights (the run's settings, the data and the
training fingerprint: the code that trains, package versions, threads, kernels), not on the git commit. In a copy of
the project with its own git history: a tiny run finishes; a commit that changes only prose (a lesson's words, a
docstring and a comment in the fit loop's module) re-renders the report from the checkpoint and never retrains; a
commit that changes the fit loop's code makes the run stale."""
import json, os, shutil, subprocess, sys

from conftest import ROOT, tool

ARGS = ["study", "synthetic", "--quiet", "-p", "epochs=1", "-p", "mc_samples=2", "-p", "backbone_a=efficientnet_b0",
        "-p", "backbone_b=resnet18", "-p", "fusion_dim=16", "-p", "image_size=16", "-p", "batch_size=32",
        "-p", "ood_set=", "-p", "bootstrap_resamples=50", "-p", "embedding=none"]

def git(proj, *args):
    subprocess.run(["git", *args], cwd=proj, check=True, capture_output=True, text=True)

def commit(proj, message):
    git(proj, "add", "-A")
    git(proj, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", message)

def edit(path, old, new):
    text = path.read_text()
    assert text.count(old) == 1, f"{path}: {old!r} found {text.count(old)} times"
    path.write_text(text.replace(old, new))

def test_prose_commit_rerenders_code_commit_retrains(tmp_path):
    proj = tmp_path / "proj"
    for d in ("dcat", "nbs/studies"): shutil.copytree(ROOT / d, proj / d, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "settings.ini", proj / "settings.ini")
    (proj / "nbs" / "lesson.md").write_text("What a lesson says.\n")
    git(proj, "init", "-q")
    commit(proj, "the project")
    env = {**os.environ, "PYTHONPATH": str(proj), "DCAT_CHECKPOINTS_DIR": str(tmp_path / "ckpt")}
    for k in ("DCAT_SETTINGS", "DCAT_REPORTS_DIR"): env.pop(k, None)
    def dcat(*extra):
        r = subprocess.run([tool("dcat"), *ARGS, "--reports-dir", str(tmp_path / "reports"), *extra], cwd=proj,
                           capture_output=True, text=True, timeout=900, env=env)
        assert r.returncode == 0, r.stderr[-4000:]
        return r.stdout + r.stderr
    run = tmp_path / "reports/synthetic_16px/dcat/seed-0"

    assert "report in" in dcat()                                          # trained
    first = json.loads((run / "metrics.json").read_text())
    trained = first["training"]["trained_by"]
    assert len(trained) == 1 and trained[0]["git_commit"] == first["provenance"]["git_commit"]

    edit(proj / "nbs" / "lesson.md", "What a lesson says.", "What a lesson says, in other words.")
    edit(proj / "dcat" / "train.py", '"A per-step `LambdaLR` following `warmup_cosine`."',
         '"A per-step `LambdaLR` that follows `warmup_cosine` (reworded)."  # and a comment')
    commit(proj, "prose only")
    assert "finished, re-render" in dcat("--status")
    out = dcat()
    assert "rendered again, not retrained" in out, out
    again = json.loads((run / "metrics.json").read_text())
    assert again["training"]["trained_by"] == trained                     # the same training, not a new one
    assert again["provenance"]["git_commit"] != first["provenance"]["git_commit"]   # rendered by the new commit
    assert again["metrics"] == first["metrics"] and again["training"]["history"] == first["training"]["history"]
    assert "reused" in dcat()                                             # current now: nothing to do

    import numpy as np                                                    # evaluation-only settings: scored, not trained
    noise = tmp_path / "noise.npz"
    rng = np.random.default_rng(0)
    np.savez(noise, **{f"{s}_{k}": rng.integers(0, 256, (30, 28, 28), dtype=np.uint8) if k == "images" else np.zeros((30, 1), int)
                       for s in ("train", "val", "test") for k in ("images", "labels")})
    out = dcat("-p", f"ood_set={noise}", "-p", "mc_samples=3")
    assert "rendered again, not retrained" in out, out
    scored = json.loads((run / "metrics.json").read_text())
    assert scored["training"]["trained_by"] == trained and scored["run"]["hash"] == first["run"]["hash"]
    assert scored["ood"]["n_out"] == 30 and scored["uncertainty"]["T"] == 3 and "features" in scored["ood"]["methods"]

    edit(proj / "dcat" / "train.py", "loss_sum, n = loss_sum + lv * len(y), n + len(y)", "loss_sum, n = loss_sum + len(y) * lv, n + len(y)")   # the fit loop's code
    commit(proj, "the fit loop changes")
    assert dcat("--status").startswith("finished, stale")

    # the change cannot move the weights (a product's operands swapped): declared equivalent, with the evidence of a
    # second run of the same settings trained by the new code, the finished run is this code's again
    shutil.copytree(ROOT / "tools", proj / "tools", ignore=shutil.ignore_patterns("__pycache__"))
    old_commit = subprocess.run(["git", "rev-parse", "HEAD~1"], cwd=proj, capture_output=True, text=True, check=True).stdout.strip()
    declare = lambda *runs: subprocess.run([sys.executable, "tools/declare_equivalent.py", old_commit, "--runs", *map(str, runs),
                                            "--why", "operands of a product swapped"], cwd=proj, capture_output=True, text=True, env=env)
    refused = declare(run, run)                                           # no evidence: the same run twice
    assert refused.returncode != 0 and "not trained by the code now" in refused.stderr, refused.stderr
    again_dir = tmp_path / "reports-again"
    r = subprocess.run([tool("dcat"), *ARGS, "--reports-dir", str(again_dir)], cwd=proj, capture_output=True, text=True, timeout=900, env=env)
    assert r.returncode == 0, r.stderr[-4000:]
    ok = declare(run, again_dir / "synthetic_16px/dcat/seed-0")
    assert ok.returncode == 0, ok.stderr
    table = json.loads((proj / "dcat" / "equivalent_code.json").read_text())
    (now, olds), = table.items()                                          # the project's own declarations carried through
    assert [e for e in olds.values() if e["commit"] == old_commit and "identical" in e["evidence"]], olds
    assert dcat("--status").startswith("finished, re-render")            # not stale: no retraining
    edit(proj / "dcat" / "train.py", "loss_sum, n = loss_sum + len(y) * lv, n + len(y)", "loss_sum, n = loss_sum + len(y) * lv * 1.0, n + len(y)")
    commit(proj, "the fit loop changes again")
    assert dcat("--status").startswith("finished, stale")                 # the declaration lapsed with the code it was made for

def test_declarations_scoped_and_carried(monkeypatch):
    "A declaration holds for the models it names; what the older code was declared equivalent to is carried through it."
    import importlib.util
    import dcat.study as study
    spec = importlib.util.spec_from_file_location("declare_equivalent", ROOT / "tools" / "declare_equivalent.py")
    tool_mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(tool_mod)
    ev = lambda s: {"commit": s, "why": "", "evidence": f"pair {s}"}
    table = {"B": {"A": ev("a"), "C": {**ev("c"), "models": ["dcat", "effnet_only"]}}}   # declared while B was the code
    carried = tool_mod.declared(table, "X", "B", ev("b"))
    assert set(carried) == {"X"} and set(carried["X"]) == {"A", "B", "C"}                  # B's declarations lapse, carried on
    assert carried["X"]["C"]["models"] == ["dcat", "effnet_only"] and "through B" in carried["X"]["C"]["evidence"]
    assert "models" not in carried["X"]["A"] and carried["X"]["B"] == ev("b")
    narrow = tool_mod.declared(table, "X", "B", {**ev("b"), "models": ["dca"]})             # disjoint scopes: C is not carried
    assert set(narrow["X"]) == {"A", "B"} and narrow["X"]["A"]["models"] == ["dca"]

    monkeypatch.setattr(study, "equivalent_code", lambda: {"0" * 16: {"models": ["effnet_only"]}, "1" * 16: {}})
    run = {**study.load_settings("synthetic"), "seed": 0, "torch_threads": 1}
    fp = lambda cfg, c: study.training_fingerprint(cfg, code=c)["fingerprint"]
    assert study.accepted_fingerprints({**run, "model": "effnet_only"}) == {fp(run, None), fp(run, "0" * 16), fp(run, "1" * 16)}
    assert study.accepted_fingerprints({**run, "model": "dca"}) == {fp(run, None), fp(run, "1" * 16)}
