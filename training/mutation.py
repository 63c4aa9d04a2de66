"""Mutation testing (issue 13): how many deliberate small breakages of a module its tests notice.

    make mutation                                          # service/auth.py and service/store.py
    make mutation MODULES="corpora/text.py corpora/dedup.py"
    make mutation MODULES=models/urgency.py TESTS="tests/test_urgency.py -k reason"
    .venv/bin/python -m training.mutation service/auth.py --jobs 1 --workdir /tmp/suqiu-mutation
    make mutation MODULES=models/hotspots.py MUTATION_ARGS="--sample 200 --seed 1"   # an estimate

Runs mutmut (pinned in requirements-mutation.txt) on one module at a time, each in its own
scratch copy of the repository under ``--workdir`` (default ``$TMPDIR/suqiu-mutation``): mutmut
writes its mutated sources to a ``mutants/`` folder beside the configuration, and those must
never land in the work tree. The copy is the files git knows (tracked and untracked, less the
ignored ones), with a ``setup.cfg`` holding mutmut's configuration written into it; the work tree
itself is only read.

Each module is mutated with only the fast tests that exercise it selected (``MODULE_TESTS``; a
module not listed there takes ``tests/test_<name>.py``, or ``--tests``), plus the module's own
doctests. mutmut first runs the selection once, recording which tests call which function, then
runs, for each mutant, only the selected tests that called the mutated function, stopping at
the first failure. A test run in a subprocess (the CLI tests, the multi-worker servers) is not
seen by that recording, which is why those tests are not selected.

Each mutant ends as one of:
  killed     a selected test failed: the breakage is noticed;
  timeout    the tests ran past mutmut's limit (an endless loop, say): counted as noticed;
  survived   every test that calls the function passed: a test is missing;
  no tests   no selected test calls the function at all: a test is missing too;
  other      mutmut's 'suspicious' / 'segfault' / 'skipped' (reported, not scored).
score = (killed + timeout) / (killed + timeout + survived + no tests).

mutmut mutates the bodies of functions and methods; module-level constants (``auth.PERMISSIONS``)
and class attributes are not mutated, nor is a decorated function (``store._driver_insert``).

Database tests run on SQLite; when ``SUQIU_TEST_POSTGRES_URL`` is set (``bash .ci/postgres.sh``
prints one) the PostgreSQL cases run too, as in CI, and mutants on PostgreSQL-only paths
(``store._pipeline``, the ``%s`` placeholders) can be killed. The summary, every surviving mutant
as a diff with its file and line, and mutmut's own log are left under ``--workdir``.
Not part of CI: a run takes minutes per module on two cores.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("corpora", "models", "service", "training")
DEFAULT_MODULES = ("service/auth.py", "service/store.py")
TIMEOUT_CONSTANT = 10  # seconds; see setup_cfg
NO_MUTANT = "suqiu.sample.none"  # matches no mutant's name (see run_module)

# The fast tests that exercise each module (pytest arguments, as on a command line). Left out on
# purpose: tests/test_cli.py and tests/test_durability.py (their code runs in subprocesses, which
# mutmut's per-test recording cannot see), tests/test_quality_shared.py (minutes, real data),
# tests/test_api_fuzz.py (schemathesis: minutes per run).
MODULE_TESTS = {
    "service/auth.py": "tests/test_auth.py tests/test_api.py tests/test_api_behaviour.py tests/test_hostile.py",
    "service/store.py": "tests/test_store.py tests/test_api.py tests/test_api_behaviour.py",
    "corpora/text.py": "tests/test_text.py tests/test_pii.py tests/test_records.py",
    "corpora/dedup.py": "tests/test_dedup.py tests/test_split.py",
    "corpora/records.py": "tests/test_records.py tests/test_pii.py",
    "corpora/rules.py": "tests/test_rules.py",
    "corpora/holidays.py": "tests/test_holidays.py tests/test_trends_behaviour.py",
    "corpora/places.py": "tests/test_places.py tests/test_hotspots.py",
    "corpora/simulate.py": "tests/test_simulate.py tests/test_simulate_units.py tests/test_trends_behaviour.py",
    "corpora/topics.py": "tests/test_topics.py tests/test_trends_behaviour.py",  # not test_trends.py: minutes a survivor
    "models/category.py": "tests/test_category.py tests/test_category_behaviour.py",
    "models/charngrams.py": "tests/test_charngrams.py",
    "models/doc.py": "tests/test_doc.py tests/test_features.py tests/test_charngrams.py",
    "models/encoder.py": "tests/test_encoder.py tests/test_encoder_units.py",
    "models/features.py": "tests/test_features.py tests/test_charngrams.py",
    "models/hotspots.py": "tests/test_hotspots.py tests/test_hotspots_units.py",
    "models/neural.py": "tests/test_encoder.py tests/test_neural_units.py",
    "models/registry.py": "tests/test_registry.py",
    "models/review.py": "tests/test_review.py",
    "models/tagger.py": "tests/test_tagger.py tests/test_registry.py",
    "models/trends.py": "tests/test_trends_units.py tests/test_trends_edges.py tests/test_trends_behaviour.py",  # not test_trends.py: slow
    "models/urgency.py": "tests/test_urgency.py tests/test_urgency_behaviour.py",
}

# mutmut's verdicts (mutmut.stats.status_by_exit_code) folded into the columns reported here.
COLUMN = {"killed": "killed", "timeout": "timeout", "survived": "survived", "no tests": "no_tests",
          "suspicious": "other", "segfault": "other", "skipped": "other", "caught by type check": "other",
          "check was interrupted by user": "other", "not checked": "not_checked"}


@dataclass
class Outcome:
    module: str
    tests: list[str]
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    survivors: list[dict] = field(default_factory=list)  # survived and no-tests mutants
    log: str = ""
    error: str = ""

    @property
    def applicable(self) -> int:
        return sum(self.counts.get(k, 0) for k in ("killed", "timeout", "survived", "no_tests"))

    @property
    def score(self) -> float | None:
        return score(self.counts)


def score(counts: dict[str, int]) -> float | None:
    """Share of the applicable mutants noticed: (killed + timeout) / (those + survived + no tests).

    >>> score({"killed": 45, "timeout": 1, "survived": 3, "no_tests": 1, "other": 2})
    0.92
    >>> score({"other": 2}) is None
    True
    """
    noticed = counts.get("killed", 0) + counts.get("timeout", 0)
    applicable = noticed + counts.get("survived", 0) + counts.get("no_tests", 0)
    return round(noticed / applicable, 4) if applicable else None


def project_files(root: Path) -> list[str]:
    """The files to copy: git's tracked and untracked-not-ignored files, else a walk of the tree."""
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=root,
                             capture_output=True, check=True).stdout.decode()
        return [f for f in out.split("\0") if f and (root / f).is_file()]
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".venv", "var", "mutants", "__pycache__", ".pytest_cache", ".hypothesis", "registry"}
        return [str(p.relative_to(root)) for p in root.rglob("*")
                if p.is_file() and not skip & set(p.relative_to(root).parts)]


# Appended to the scratch copy's tests/conftest.py. mutmut keeps each mutant as a copy of its
# function (``x_name__mutmut_3``) with the function's docstring, and ``--doctest-modules`` would
# collect each copy's examples as a test: thousands for a module with doctests (~525 s a
# survivor for corpora/simulate.py). The module's own doctests still run.
MUTANT_DOCTESTS = """

def pytest_collection_modifyitems(config, items):  # written by training.mutation (scratch copy only)
    items[:] = [item for item in items if "__mutmut_" not in item.name]
"""


def setup_cfg(module: str, tests: list[str]) -> str:
    """mutmut's configuration for one module: every package is copied into mutants/ (so imports
    resolve to the copy), only ``module`` is mutated, and ``tests`` plus its doctests are run."""
    def lines(items):
        return "".join(f"\n    {i}" for i in items)
    return ("[mutmut]\n"
            f"source_paths ={lines(PACKAGES)}\n"
            f"only_mutate = {module}\n"
            f"pytest_add_cli_args_test_selection ={lines([*tests, module])}\n"
            f"pytest_add_cli_args ={lines(['-p', 'no:cacheprovider'])}\n"
            # mutmut's wall-clock limit is (the tests' own time + timeout_constant) x timeout_multiplier,
            # and the tests' own time leaves out fixtures: training the demo bundle (~7 s) and building
            # an app per test (~1 s) would otherwise turn slow survivors into false timeouts.
            f"timeout_constant = {TIMEOUT_CONSTANT}\n"
            # Each mutant's tests run in a process forked from a server that has only collected
            # the tests, not from the one that ran them all once: state cached at module level by
            # that run (corpora.text's tokenizer, loaded once) would hide mutants of the code
            # that fills it.
            "process_isolation = forkserver\n"
            "use_git_change_detection = false\n")


def _function_spans(path: Path) -> dict[str, tuple[int, int]]:
    """'func' / 'Class.method' → (first line, last line) of its source."""
    spans = {}
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        inner = [(f"{node.name}.", n) for n in node.body] if isinstance(node, ast.ClassDef) else [("", node)]
        for prefix, n in inner:
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                spans[prefix + n.name] = (min([n.lineno, *(d.lineno for d in n.decorator_list)]), n.end_lineno)
    return spans


def _function_of(key: str) -> str:
    """'service.store.xǁ_DriverInsertǁ__init____mutmut_3' → '_DriverInsert.__init__'."""
    name = re.sub(r"__mutmut_\d+$", "", key.rsplit(".", 1)[-1])
    if name.startswith("xǁ"):
        _, cls, meth = name.split("ǁ", 2)
        return f"{cls}.{meth}"
    return name[2:] if name.startswith("x_") else name


def _locate(diff: str, lines: list[str], span: tuple[int, int] | None) -> int | None:
    """The line of the source (``lines``) that a mutant's diff changes. The diff counts lines
    from the function's first line; the changed line's text, looked up within the function,
    settles where that is."""
    m = re.search(r"^@@ -(\d+)", diff, re.M)
    if not m or span is None:
        return None
    hunk = diff[m.end():].splitlines()[1:]
    kept = [l for l in hunk if not l.startswith("+")]
    i = next((k for k, l in enumerate(kept) if l.startswith("-")), None)
    if i is None:  # only added lines: the line before the first one added
        i = max(next(k for k, l in enumerate(hunk) if l.startswith("+")) - 1, 0)
    guess = span[0] + int(m.group(1)) - 1 + i
    target = kept[i][1:].strip() if i < len(kept) else ""
    same = [n for n in range(span[0], span[1] + 1) if lines[n - 1].strip() == target]
    return min(same, key=lambda n: abs(n - guess)) if same else guess


def _compact(diff: str) -> str:
    """The changed lines of a unified diff, '-'/'+' kept, headers dropped."""
    return "\n".join(l for l in diff.splitlines()
                     if l[:1] in "-+" and not l.startswith(("---", "+++")))


def brief(change: str) -> str:
    r"""One line for a mutant: the part of the line that changed, with a little context.

    >>> brief('-    raw = "sq_" + token(32)\n+    raw = "sq_" + token(33)')
    'raw = "sq_" + token([32 → 33])'
    >>> brief('-    if key is None:\n+    if key is not None:')
    'if key is [ → not ]None:'
    """
    old = [l[1:].strip() for l in change.splitlines() if l.startswith("-")]
    new = [l[1:].strip() for l in change.splitlines() if l.startswith("+")]
    if len(old) != 1 or len(new) != 1:
        return " / ".join(old) + " → " + " / ".join(new)
    a, b = old[0], new[0]
    i = 0
    while i < min(len(a), len(b)) and a[i] == b[i]:
        i += 1
    j = 0
    while j < min(len(a), len(b)) - i and a[len(a) - 1 - j] == b[len(b) - 1 - j]:
        j += 1
    def word(text, k):
        return 0 <= k < len(text) and (text[k].isalnum() or text[k] == "_")
    while i > 0 and word(a, i - 1) and (word(a, i) or word(b, i)):  # whole words, not '3' → '2'
        i -= 1
    while j > 0 and word(a, len(a) - j) and (word(a, len(a) - j - 1) or word(b, len(b) - j - 1)):
        j -= 1
    head, tail = a[:i], a[len(a) - j:]
    head = head if len(head) <= 40 else "…" + head[-39:]
    tail = tail if len(tail) <= 30 else tail[:29] + "…"
    mid_a, mid_b = a[i:len(a) - j], b[i:len(b) - j]
    return f"{head}[{mid_a} → {mid_b}]{tail}"


def collect(work: Path, module: str) -> tuple[dict[str, int], list[dict]]:
    """Counts per column and the survivors (with diffs) from mutmut's files under ``work``."""
    meta = json.loads((work / "mutants" / f"{module}.meta").read_text())
    cwd = os.getcwd()  # mutmut reads its configuration and files relative to the working directory
    os.chdir(work)
    try:
        from mutmut.configuration import reset_config
        from mutmut.mutation.diff_apply import get_diff_for_mutant
        from mutmut.stats import status_by_exit_code
        reset_config()
        counts = {c: 0 for c in ("killed", "timeout", "survived", "no_tests", "other", "not_checked")}
        survivors = []
        spans = _function_spans(work / module)
        lines = (work / module).read_text(encoding="utf-8").splitlines()
        for key, code in sorted(meta["exit_code_by_key"].items(), key=lambda kv: _natural(kv[0])):
            status = status_by_exit_code[code]
            counts[COLUMN.get(status, "other")] += 1
            if status in ("survived", "no tests"):
                diff = get_diff_for_mutant(key, path=module)
                function = _function_of(key)
                survivors.append({"mutant": key, "status": status, "function": function,
                                  "line": _locate(diff, lines, spans.get(function)),
                                  "change": _compact(diff), "diff": diff})
        return counts, survivors
    finally:
        os.chdir(cwd)


def _natural(key: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", key)]


def run_module(module: str, tests: list[str], workdir: Path, jobs: int, sample: int | None = None,
               seed: int = 0) -> Outcome:
    """mutmut on ``module`` in a fresh scratch copy: every mutant, or a seeded random ``sample``
    of them (the others counted ``not_checked``)."""
    out = Outcome(module=module, tests=tests)
    work = workdir / module.replace("/", "_").removesuffix(".py")
    if work.exists():
        shutil.rmtree(work)
    for rel in project_files(ROOT):
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, work / rel)
    (work / "setup.cfg").write_text(setup_cfg(module, tests))
    with open(work / "tests" / "conftest.py", "a", encoding="utf-8") as fh:
        fh.write(MUTANT_DOCTESTS)
    out.log = str(workdir / f"{work.name}.log")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPATH", None)  # nothing but mutants/ may provide the project's packages
    start = time.monotonic()
    meta = work / "mutants" / f"{module}.meta"

    def mutmut_run(*names: str):
        with open(out.log, "a") as log:
            # `mutmut run` as its console script would, without relying on the script's path
            return subprocess.run([sys.executable, "-c", "import sys; from mutmut.__main__ import cli; sys.exit(cli())",
                                   "run", "--max-children", str(jobs), *names],
                                  cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    open(out.log, "w").close()
    names: list[str] = []
    if sample:
        # a name no mutant has: mutmut writes the mutants and maps tests to functions, then stops
        mutmut_run(NO_MUTANT)
        if not meta.exists():
            out.error = f"mutmut wrote no mutants; see {out.log}"
            return out
        keys = sorted(json.loads(meta.read_text())["exit_code_by_key"], key=_natural)
        names = random.Random(seed).sample(keys, min(sample, len(keys)))
    proc = mutmut_run(*names)
    out.seconds = time.monotonic() - start
    if proc.returncode != 0 or not meta.exists():
        out.error = f"mutmut exited {proc.returncode}; see {out.log}"
        return out
    out.counts, out.survivors = collect(work, module)
    return out


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def table(outcomes: list[Outcome]) -> str:
    cols = ("killed", "survived", "timeout", "no_tests", "other", "not_checked")
    head = f"{'module':<22}" + "".join(f"{c.replace('_', ' '):>12}" for c in cols) + f"{'total':>8}{'score':>9}{'time':>8}"
    rows = [head, "-" * len(head)]
    for o in outcomes:
        if o.error:
            rows.append(f"{o.module:<22}  {o.error}")
            continue
        total = sum(o.counts.values())
        rows.append(f"{o.module:<22}" + "".join(f"{o.counts.get(c, 0):>12}" for c in cols)
                    + f"{total:>8}{_pct(o.score):>9}{o.seconds / 60:>7.1f}m")
    done = [o for o in outcomes if not o.error]
    if len(done) > 1:
        sums = {c: sum(o.counts.get(c, 0) for o in done) for c in cols}
        rows.append(f"{'all':<22}" + "".join(f"{sums[c]:>12}" for c in cols)
                    + f"{sum(sums.values()):>8}{_pct(score(sums)):>9}{sum(o.seconds for o in done) / 60:>7.1f}m")
    return "\n".join(rows)


def report(outcomes: list[Outcome]) -> str:
    parts = ["# Mutation testing (mutmut)", "", "```", table(outcomes), "```", "",
             "score = (killed + timeout) / (killed + timeout + survived + no tests)", ""]
    for o in outcomes:
        parts += [f"## {o.module}", "", f"tests: `{' '.join(o.tests)}` (+ the module's doctests); "
                  f"{o.seconds / 60:.1f} min; mutmut's log: {o.log}", ""]
        for s in o.survivors:
            parts += [f"- {o.module}:{s['line']} `{s['function']}` ({s['status']}): {brief(s['change'])} "
                      f"(`{s['mutant']}`)", "",
                      "  ```diff", *("  " + l for l in s["change"].splitlines()), "  ```"]
        parts.append("")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.mutation", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("modules", nargs="*", default=list(DEFAULT_MODULES),
                   help=f"files to mutate, relative to the repository (default: {' '.join(DEFAULT_MODULES)})")
    p.add_argument("--tests", help="pytest arguments selecting the tests, for every module given "
                                   "(default: MODULE_TESTS, else tests/test_<name>.py)")
    p.add_argument("--jobs", type=int, default=int(os.environ.get("MUTATION_JOBS", 2)),
                   help="mutants tested at once (default 2, or $MUTATION_JOBS)")
    p.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "suqiu-mutation",
                   help="where the copies, logs and report go (default: %(default)s); never inside the repository")
    p.add_argument("--fail-under", type=float, help="exit 1 when a module's score (percent) is below this")
    p.add_argument("--sample", type=int, metavar="N",
                   help="run a seeded random sample of N mutants of each module (the rest: not checked); "
                        "an estimate for the modules whose full run takes hours")
    p.add_argument("--seed", type=int, default=0, help="the sample's seed (default 0)")
    args = p.parse_args(argv)

    try:
        import mutmut  # noqa: F401
    except ImportError:
        p.error("mutmut is not installed here: pip install -r requirements-mutation.txt -c constraints.txt")
    workdir = args.workdir.resolve()
    if workdir == ROOT or ROOT in workdir.parents:
        p.error(f"--workdir {workdir} is inside the repository; mutated files must stay out of it")
    plan = []
    for module in args.modules:
        module = Path(module).as_posix().removeprefix("./")
        if not (ROOT / module).is_file() or not module.endswith(".py") or module.split("/")[0] not in PACKAGES:
            p.error(f"{module}: not a .py file of {', '.join(PACKAGES)}")
        guess = f"tests/test_{Path(module).stem}.py"
        tests = args.tests or MODULE_TESTS.get(module) or (guess if (ROOT / guess).exists() else None)
        if not tests:
            p.error(f"{module}: no tests known for it; name them with --tests (TESTS=... with make)")
        args_ = shlex.split(tests)
        gone = [a for a in args_ if a.endswith(".py") and not (ROOT / a.split("::")[0]).exists()]
        if gone:  # a test file renamed or not written yet: run without it rather than fail
            print(f"{module}: no {', '.join(gone)} here; running without", file=sys.stderr)
        plan.append((module, [a for a in args_ if a not in gone]))
    workdir.mkdir(parents=True, exist_ok=True)

    outcomes = []
    for module, tests in plan:
        print(f"== {module}: mutmut with {' '.join(tests)} (log: {workdir / module.replace('/', '_')[:-3]}.log)",
              flush=True)
        o = run_module(module, tests, workdir, args.jobs, sample=args.sample, seed=args.seed)
        outcomes.append(o)
        print(o.error or f"   {o.counts} in {o.seconds / 60:.1f} min, score {_pct(o.score)}", flush=True)
    text = report(outcomes)
    (workdir / "report.md").write_text(text)
    (workdir / "results.json").write_text(json.dumps(
        [{"module": o.module, "tests": o.tests, "seconds": round(o.seconds, 1), "counts": o.counts,
          "score": o.score, "error": o.error, "survivors": o.survivors} for o in outcomes],
        ensure_ascii=False, indent=1))
    print()
    print(table(outcomes))
    print()
    for o in outcomes:
        if o.survivors:
            print(f"{o.module}: {len(o.survivors)} surviving mutants")
            for s in o.survivors:
                print(f"  {o.module}:{s['line']} {s['function']} [{s['status']}] {brief(s['change'])}")
    print(f"\nreport: {workdir / 'report.md'} (diffs), {workdir / 'results.json'}")
    failed = any(o.error for o in outcomes)
    low = args.fail_under is not None and any(o.score is not None and 100 * o.score < args.fail_under
                                              for o in outcomes)
    return 1 if failed or low else 0


if __name__ == "__main__":
    sys.exit(main())
