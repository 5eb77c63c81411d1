"""Mutation score of the modules that decide correctness (a bench, not part of CI).

mutmut (the `mutation` extra) copies the package to mutants/, makes one small change at a time
(a flipped comparison, an off-by-one constant, a dropped argument, ...) in the modules listed
under [tool.mutmut] only_mutate in pyproject.toml, and runs the fast in-process tests that
reached the changed function. A mutant no test notices "survived". This script runs mutmut
niced with at most 2 workers, then prints per module: mutants, killed, survived, the score
(caught / (all - equivalent)), and the diff of every survivor, with the reason beside the
survivors listed as equivalent in bench/mutation_equivalent.toml.

    .venv/bin/pip install -e '.[test,mutation]'
    .venv/bin/python bench/mutation.py                       # every module (about an hour on 2 cores)
    .venv/bin/python bench/mutation.py 'tatara_build.packets*' 'tatara_build.check.*'
    .venv/bin/python bench/mutation.py --report-only         # re-print the last results
    .venv/bin/python bench/mutation.py --quiet-survivors     # scores only
    .venv/bin/python bench/mutation.py --sample 80           # 80 mutants per module, drawn the same way each run
    .venv/bin/python bench/mutation.py --sample 80 --rerun   # again after adding tests: re-test the sample

A full run of every module takes hours on two shared cores; `--sample N` runs N mutants per
module (a seeded draw, so runs compare), which bounds the score's error to a few points.

The pattern is mutmut's mutant name glob: module path, then `.x_<function>` or
`.xǁ<Class>ǁ<method>`. Results are kept in mutants/ (ignored by git); a later run with a
pattern re-tests the mutants it names, including survivors, after you add tests.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tomllib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EQUIVALENT = REPO / "bench" / "mutation_equivalent.toml"
TARGET = 85.0

# mutmut's exit codes per mutant (mutmut/stats.py): 1 and 3 are a failing test run, 0 a passing one
KILLED = {1, 3}
TIMEOUT = {24, -24, 36, 152, 255}
NO_TESTS = {5, 33}
SKIPPED = {34, 37}


@dataclass
class Equivalent:
    function: str  # mutmut's mangled function name, without the __mutmut_N suffix
    mutated: str  # the mutated line as mutmut prints it (stripped), which pins the mutant beyond its number
    reason: str


@dataclass
class ModuleScore:
    module: str
    killed: int = 0
    timeout: int = 0
    survived: list[str] = field(default_factory=list)
    no_tests: list[str] = field(default_factory=list)
    equivalent: list[tuple[str, str]] = field(default_factory=list)
    unchecked: int = 0

    @property
    def total(self) -> int:
        return self.killed + self.timeout + len(self.survived) + len(self.no_tests) + len(self.equivalent)

    @property
    def score(self) -> float:
        judged = self.total - len(self.equivalent)
        return 100.0 if judged == 0 else 100.0 * (self.killed + self.timeout) / judged


def load_equivalents() -> list[Equivalent]:
    if not EQUIVALENT.exists():
        return []
    data = tomllib.loads(EQUIVALENT.read_text())
    return [Equivalent(**entry) for entry in data.get("mutant", [])]


def mutant_diff(name: str, source: Path) -> str:
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    return get_diff_for_mutant(name, path=str(source.relative_to(REPO)))


def added_lines(diff: str) -> list[str]:
    return [line[1:].strip() for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]


def function_of(name: str) -> str:
    return name.rsplit("__mutmut_", 1)[0]


def matching_equivalent(name: str, diff: str, equivalents: list[Equivalent]) -> Equivalent | None:
    lines = added_lines(diff)
    for eq in equivalents:
        if eq.function == function_of(name) and eq.mutated.strip() in lines:
            return eq
    return None


def all_results(patterns: list[str]) -> dict[Path, dict[str, int | None]]:
    """mutmut's verdict per mutant name (None: not run yet), per source file."""
    from fnmatch import fnmatch

    out = {}
    for meta in sorted((REPO / "mutants" / "tatara_build").rglob("*.py.meta")):
        source = REPO / meta.relative_to(REPO / "mutants").with_suffix("")
        if not source.exists():
            continue  # a module renamed or removed since mutants/ was made
        codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
        if patterns:
            codes = {k: v for k, v in codes.items() if any(fnmatch(k, p) for p in patterns)}
        if codes:
            out[source] = codes
    return out


def sample_of(codes: dict[str, int | None], size: int, source: Path) -> dict[str, int | None]:
    """The same `size` mutants of a module on every run (seeded by the module's path)."""
    if not size or len(codes) <= size:
        return codes
    names = random.Random(str(source.relative_to(REPO))).sample(sorted(codes), size)
    return {name: codes[name] for name in names}


def collect(equivalents: list[Equivalent], patterns: list[str], size: int) -> tuple[list[ModuleScore], dict[str, str]]:
    scores: list[ModuleScore] = []
    diffs: dict[str, str] = {}
    for source, codes in all_results(patterns).items():
        module = ".".join(source.relative_to(REPO).with_suffix("").parts)
        codes = sample_of(codes, size, source)
        score = ModuleScore(module)
        for name, code in sorted(codes.items(), key=lambda kv: (function_of(kv[0]), int(kv[0].rsplit("_", 1)[1]))):
            if code is None:
                score.unchecked += 1
            elif code in KILLED:
                score.killed += 1
            elif code in TIMEOUT:
                score.timeout += 1
            elif code in SKIPPED:
                continue
            else:
                diff = mutant_diff(name, source)
                eq = matching_equivalent(name, diff, equivalents)
                if eq is not None:
                    score.equivalent.append((name, eq.reason))
                elif code in NO_TESTS:
                    score.no_tests.append(name)
                else:  # survived, or "suspicious" (a crash mutmut could not classify) counts as not caught
                    score.survived.append(name)
                diffs[name] = diff
        scores.append(score)
    return scores, diffs


def report(scores: list[ModuleScore], diffs: dict[str, str], show_survivors: bool) -> bool:
    if show_survivors:
        for s in scores:
            for name in s.survived + s.no_tests:
                kind = "no test reaches it" if name in s.no_tests else "survived"
                print(f"\n## {name} ({kind})\n{diffs[name]}")
            for name, reason in s.equivalent:
                print(f"\n## {name} (equivalent: {reason})\n{diffs[name]}")
    print()
    header = f"{'module':40} {'mutants':>7} {'killed':>6} {'survived':>8} {'no test':>7} {'equiv':>5} {'score':>7}"
    print(header)
    print("-" * len(header))
    ok = True
    for s in scores:
        flag = "" if s.score >= TARGET else "  < target"
        ok = ok and s.score >= TARGET and s.unchecked == 0
        unchecked = f"  ({s.unchecked} not run yet)" if s.unchecked else ""
        print(f"{s.module:40} {s.total:7} {s.killed + s.timeout:6} {len(s.survived):8} {len(s.no_tests):7} "
              f"{len(s.equivalent):5} {s.score:6.1f}%{flag}{unchecked}")
    return ok


def mutmut(names: list[str], max_children: int = 2) -> bool:
    log = REPO / "mutants" / "mutmut-run.log"
    log.parent.mkdir(exist_ok=True)
    command = ["nice", "-n", "19", sys.executable, "-m", "mutmut", "run", "--max-children", str(min(max_children, 2)),
               *names]
    shown = command if len(names) < 8 else [*command[:-len(names)], f"<{len(names)} mutants>"]
    print("$", " ".join(shown), f"(log: {log.relative_to(REPO)})", flush=True)
    with log.open("w") as sink:
        ran = subprocess.run(command, stdout=sink, stderr=subprocess.STDOUT)
    if ran.returncode != 0:
        print(log.read_text()[-4000:])
        print(f"mutmut failed (exit {ran.returncode})", file=sys.stderr)
    return ran.returncode == 0


GENERATE = """
import os, sys
from mutmut.__main__ import copy_also_copy_files, copy_src_dir, create_mutants, set_mutant_under_test, setup_source_paths
set_mutant_under_test("mutant_generation")
os.makedirs("mutants", exist_ok=True)
copy_src_dir(); copy_also_copy_files(); setup_source_paths(); create_mutants(2)
"""


def generate() -> bool:
    """mutmut's own first steps without its stats pass: copy the sources and tests to mutants/
    and write the mutants of every module changed since (verdicts of unchanged functions are
    kept). A fresh checkout gets mutants/ this way in minutes, not an hour, and edited tests
    reach mutants/ before --direct runs them."""
    import fcntl

    (REPO / "mutants").mkdir(exist_ok=True)
    with open(REPO / "mutants" / ".generate.lock", "w") as lock:  # two at once would write the same files
        fcntl.flock(lock, fcntl.LOCK_EX)
        ran = subprocess.run(["nice", "-n", "19", sys.executable, "-c", GENERATE], cwd=REPO, capture_output=True,
                             text=True)
    if ran.returncode != 0:
        print(ran.stdout[-2000:], ran.stderr[-4000:], sep="\n")
        print(f"making mutants/ failed (exit {ran.returncode})", file=sys.stderr)
    return ran.returncode == 0


SELECTION = ["-m", "not vm and not slow", "-p", "no:cacheprovider", "-p", "no:randomly", "-q", "--no-header",
             "-o", "addopts=", "-W", "ignore"]


def _metas() -> tuple[dict[Path, dict], dict[str, Path]]:
    metas = {meta: json.loads(meta.read_text()) for meta in (REPO / "mutants" / "tatara_build").rglob("*.py.meta")}
    return metas, {name: meta for meta, data in metas.items() for name in data["exit_code_by_key"]}


def direct_loop(names: list[str], tests: list[str], timeout: float) -> bool:
    """--direct: every mutant in one niced pytest process (bench/mutation_loop.py), which
    collects the tests once and runs them per mutant, stopping at the first failure. Starting
    pytest costs more than the tests that kill most mutants, so this is several times faster
    than a process per mutant (--isolated). False when the unmutated code fails the tests or
    a mutant left state behind that failed the final unmutated pass."""
    import tempfile
    import time

    if not names:
        return True
    with tempfile.TemporaryDirectory(prefix="tatara-mutation-") as tmp:
        listing, out = Path(tmp) / "names.json", Path(tmp) / "verdicts.jsonl"
        listing.write_text(json.dumps(names))
        out.touch()
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1",
                   PYTHONPATH=os.pathsep.join(filter(None, [str(REPO / "bench"), os.environ.get("PYTHONPATH")])))
        command = ["nice", "-n", "19", sys.executable, "-m", "pytest", "-p", "mutation_loop", *SELECTION,
                   "--mutants-file", str(listing), "--mutants-out", str(out), "--mutant-timeout", str(timeout), *tests]
        proc = subprocess.Popen(command, cwd=REPO / "mutants", env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        seen = 0
        verdicts: list[dict] = []
        while True:
            finished = proc.poll() is not None
            lines = out.read_text().splitlines()
            for line in lines[seen:]:
                v = json.loads(line)
                verdicts.append(v)
                label = v["name"] or "(unmutated)"
                verdict = {0: "survived", 1: f"killed by {v['test']}", 36: "timeout", 34: "not in the imported module",
                           -1: "mutants/ changed during the run"}.get(v["exit"], f"exit {v['exit']}")
                print(f"[{len(verdicts)}/{len(names) + 2}] {label}: {verdict} ({v['seconds']} s)", flush=True)
            seen = len(lines)
            if finished:
                break
            time.sleep(2)
        tail = proc.stdout.read()[-3000:] if proc.stdout else ""
    metas, owner = _metas()
    stale = [v["name"] for v in verdicts if v["name"] and v["name"] not in owner]
    if stale:  # its module was mutated afresh during the run (a rebase changed it): numbers moved
        print(f"{len(stale)} mutants are gone from mutants/ (their module changed during the run): not stored",
              file=sys.stderr)
    verdicts = [v for v in verdicts if v["name"] not in stale]
    for v in verdicts:
        if v["name"]:
            metas[owner[v["name"]]]["exit_code_by_key"][v["name"]] = v["exit"]
    clean = [v for v in verdicts if not v["name"]]
    if any(v["exit"] == -1 for v in verdicts):
        print("mutants/ changed during the run (run one --direct at a time, or rebase between runs): "
              "verdicts not stored", file=sys.stderr)
        return False
    if len(clean) != 2 or any(v["exit"] for v in clean):
        print(tail)
        print("the unmutated code failed the given tests (first or final pass): verdicts not stored", file=sys.stderr)
        return False
    for meta in {owner[v["name"]] for v in verdicts if v["name"]}:
        meta.write_text(json.dumps(metas[meta]))
    return True


def direct(names: list[str], tests: list[str], timeout: float) -> None:
    """Without mutmut's stats pass (the whole suite under tracing: an hour on
    loaded shared cores): each mutant against the given in-process test paths,
    niced, one at a time, stopping at the first failure. The verdict goes
    into mutmut's .meta files, so the report reads it like mutmut's own. A
    test outside `tests` cannot kill here, so the score is a lower bound."""
    import time

    metas: dict[Path, dict] = {}
    for meta in (REPO / "mutants" / "tatara_build").rglob("*.py.meta"):
        metas[meta] = json.loads(meta.read_text())
    owner = {name: meta for meta, data in metas.items() for name in data["exit_code_by_key"]}
    selection = ["-m", "not vm and not slow", "-p", "no:cacheprovider", "-p", "no:randomly", "-x", "-q",
                 "--no-header", "-o", "addopts=", "-W", "ignore"]
    for i, name in enumerate(names, 1):
        env = dict(os.environ, MUTANT_UNDER_TEST=name, PYTHONDONTWRITEBYTECODE="1")
        started = time.monotonic()
        try:
            ran = subprocess.run(["nice", "-n", "19", sys.executable, "-m", "pytest", *selection, *tests],
                                 cwd=REPO / "mutants", env=env, capture_output=True, text=True, timeout=timeout)
            code = ran.returncode
        except subprocess.TimeoutExpired:
            code = 36  # mutmut's timeout verdict: counted as caught (a mutant that hangs is noticed)
        verdict = {0: "survived", 1: "killed", 5: "no tests"}.get(code, f"exit {code}")
        print(f"[{i}/{len(names)}] {name}: {verdict} ({time.monotonic() - started:.1f} s)", flush=True)
        meta = owner[name]
        metas[meta]["exit_code_by_key"][name] = code
        meta.write_text(json.dumps(metas[meta]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("patterns", nargs="*", help="mutmut mutant-name globs (default: every configured module)")
    parser.add_argument("--max-children", type=int, default=2, help="parallel mutant workers (at most 2 here)")
    parser.add_argument("--report-only", action="store_true", help="print the last results without running")
    parser.add_argument("--quiet-survivors", action="store_true", help="print the score table only")
    parser.add_argument("--sample", type=int, default=0, metavar="N", help="N mutants per module (0: all)")
    parser.add_argument("--rerun", action="store_true",
                        help="with --sample: re-test the whole sample, not only its mutants without a verdict")
    parser.add_argument("--direct", metavar="'PYTEST ARGS'",
                        help="skip mutmut's stats pass: run each sampled mutant against these pytest arguments "
                             "(one string; mutants/ is made or brought up to date first; see direct())")
    parser.add_argument("--timeout", type=float, default=600, help="--direct: seconds per mutant")
    parser.add_argument("--isolated", action="store_true",
                        help="--direct: a pytest process per mutant (slower; no state shared between mutants)")
    args = parser.parse_args()
    os.chdir(REPO)
    if args.direct:
        if not generate():
            return 3
        names = [name for source, codes in all_results(args.patterns).items()
                 for name, code in sample_of(codes, args.sample, source).items() if args.rerun or code is None]
        import shlex

        if args.isolated:
            direct(names, shlex.split(args.direct), args.timeout)
        elif not direct_loop(names, shlex.split(args.direct), args.timeout):
            return 3
    elif not args.report_only:
        names = list(args.patterns)
        if args.sample:
            # a first, small run (the four manifest mutants: mutmut refuses a pattern that matches
            # nothing) brings mutants/ up to date with the sources and tests, so the sample is
            # drawn from the mutants of the code as it is now
            if not mutmut(["tatara_build.compile.manifest.*"], args.max_children):
                return 3
            names = [name for source, codes in all_results(args.patterns).items()
                     for name, code in sample_of(codes, args.sample, source).items() if args.rerun or code is None]
        if names or not args.sample:
            if not mutmut(names, args.max_children):
                return 3
    scores, diffs = collect(load_equivalents(), args.patterns, args.sample)
    if not scores:
        print("no mutation results: run without --report-only first", file=sys.stderr)
        return 2
    if args.sample:
        print(f"(a seeded sample of at most {args.sample} mutants per module)")
    return 0 if report(scores, diffs, not args.quiet_survivors) else 1


if __name__ == "__main__":
    sys.exit(main())
