"""Mutation testing of the core modules (``make mutate``): does a wrong line make a test fail?

For each module of ``mutation.toml``, mutmut (3.x) writes many small variants ("mutants": ``<`` for ``<=``, a constant
changed, an argument dropped …) and runs, for each, the module's mapped tests that call the mutated function. A mutant
that a test notices is *killed*; one that every test passes *survived*. Each module runs in a staging copy of the
tree (``.mutation/<module>/``, kept so that ``mutmut show NAME`` there prints a survivor's diff and a rerun skips the
mutants already judged), never in the working tree, so other work and test runs are undisturbed.

The report, ``docs/mutation.md``, gives per module: mutants, killed (a test failed or ran past its time limit),
survived, marked equivalent (no behaviour change; listed with the reason in ``mutation.toml``), and the score
killed / (mutants − equivalent − untested-by-design); then every survivor that is not marked equivalent.

    python scripts/mutate.py                          # every module of mutation.toml
    python scripts/mutate.py bertkit/training/loop.py # one (the report keeps the other modules' last results)
    python scripts/mutate.py bertkit/training/loop.py --survivors  # only its last survivors, against today's tests
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
PLAN = ROOT / "mutation.toml"
STAGE = ROOT / ".mutation"
REPORT = ROOT / "docs" / "mutation.md"
RESULTS = ROOT / "docs" / "mutation.json"
PYTEST_ARGS = ["-q", "-x", "--tb=no", "-p", "no:cacheprovider"]  # a failing mutant's traceback costs seconds


def load_plan() -> dict:
    """The modules, their tests, the skipped lines and the mutants marked equivalent."""
    plan = tomllib.loads(PLAN.read_text(encoding="utf-8"))
    for module in plan["modules"]:
        if not (ROOT / module).is_file():
            raise SystemExit(f"{PLAN.name}: {module} does not exist")
    return plan


def staged(module: str) -> Path:
    """The staging folder of a module."""
    return STAGE / module.replace("/", "_").removesuffix(".py")


def stage(module: str, tests: list[str], skip: list[str], fresh: bool = True) -> Path:
    """A copy of the package and the tests, with mutmut's settings for this one module (``fresh``: no verdict of an
    earlier run kept)."""
    folder = staged(module)
    if fresh:  # mutmut keeps a verdict until the function changes: a survivor would not meet a test added since
        shutil.rmtree(folder / "mutants", ignore_errors=True)
    for name in ("bertkit", "tests"):
        if (folder / name).exists():
            shutil.rmtree(folder / name)
        shutil.copytree(ROOT / name, folder / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    settings = {"source_paths": ["bertkit"], "only_mutate": [module], "pytest_add_cli_args_test_selection": tests,
                "pytest_add_cli_args": PYTEST_ARGS, "do_not_mutate_patterns": skip,
                "process_isolation": "forkserver"}  # torch's threads do not survive a plain fork
    lines = ["[tool.mutmut]"] + [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    (folder / "pyproject.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def survivors(module: str, equivalent: dict[str, str]) -> list[str]:
    """The last run's survivors of ``module`` not marked equivalent (mutmut reruns the mutants it is named)."""
    return [name for name, status in statuses(staged(module)).items()
            if status == "survived" and name not in equivalent]


def mutmut(folder: Path, *args: str) -> str:
    """Run the venv's mutmut in ``folder``; its output."""
    command = [str(Path(sys.executable).parent / "mutmut"), *args]
    # the staged copy, not the editable install; one thread per mutant: --max-children of them share the cores
    environment = {**os.environ, "PYTHONPATH": str(folder), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=folder, env=environment, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"mutmut {' '.join(args)} failed in {folder}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def statuses(folder: Path) -> dict[str, str]:
    """Each mutant's verdict from ``mutmut results --all true`` (lines ``name: status``)."""
    found = {}
    for line in mutmut(folder, "results", "--all", "true").splitlines():
        name, _, status = line.strip().rpartition(": ")
        if name.startswith("bertkit."):
            found[name] = status
    return found


def summarize(verdicts: dict[str, str], equivalent: dict[str, str]) -> dict:
    """Counts and the score of one module."""
    killed = [n for n, s in verdicts.items() if s in ("killed", "timeout")]
    survived = sorted(n for n, s in verdicts.items() if s == "survived" and n not in equivalent)
    marked = [n for n in verdicts if n in equivalent]
    untested = [n for n, s in verdicts.items() if s == "no tests"]
    pending = [n for n, s in verdicts.items() if s == "not checked" and n not in equivalent]  # a run stopped early
    other = sorted(f"{n}: {s}" for n, s in verdicts.items()
                   if s not in ("killed", "timeout", "survived", "no tests", "not checked") and n not in equivalent)
    judged = len(killed) + len(survived)
    return {"mutants": len(verdicts), "killed": len(killed), "survived": survived, "equivalent": len(marked),
            "untested": untested, "pending": pending, "other": other, "score": len(killed) / judged if judged else 1.0}


def write_report(results: dict[str, dict], equivalent: dict[str, str]) -> None:
    """docs/mutation.md: the table, then the survivors and the mutants no mapped test reaches."""
    rows = ["| module | mutants | killed | survived | equivalent | no test reaches | not run yet | score |",
            "|---|---|---|---|---|---|---|---|"]
    totals = [0, 0, 0, 0, 0, 0]
    for module, r in sorted(results.items()):
        counts = [r["mutants"], r["killed"], len(r["survived"]), r["equivalent"], len(r["untested"]),
                  len(r.get("pending", []))]
        totals = [a + b for a, b in zip(totals, counts, strict=True)]
        rows.append(f"| {module} | " + " | ".join(map(str, counts)) + f" | {r['score']:.1%} |")
    judged = totals[1] + totals[2]
    rows.append("| **all** | " + " | ".join(map(str, totals)) + f" | **{totals[1] / max(judged, 1):.1%}** |")
    text = ["# Mutation testing of the core", "",
            "Made by `make mutate` (`scripts/mutate.py`, mutmut 3, the modules and their tests in `mutation.toml`).",
            "Score = killed / (killed + survived): a mutant is killed when a mapped test fails or runs past its time",
            "limit; mutants marked equivalent (no behaviour change, reasons in `mutation.toml`) and those no mapped",
            "test reaches are left out of it and counted apart. Messages and logging lines are not mutated.",
            "Not run yet: mutants of a run stopped before their turn (`--reuse` continues it); the score is over",
            "the judged ones only.", "",
            *rows, ""]
    survivors = [(m, n) for m, r in sorted(results.items()) for n in r["survived"] + r["other"]]
    if survivors:
        text += ["## Survivors", "", "`mutmut show NAME` in `.mutation/<module>/` prints each one's diff.", ""]
        text += [f"- `{name}` ({module})" for module, name in survivors] + [""]
    if equivalent:
        text += ["## Marked equivalent", ""] + [f"- `{n}`: {why}" for n, why in sorted(equivalent.items())] + [""]
    REPORT.write_text("\n".join(text), encoding="utf-8")


def main() -> None:
    """Run the modules asked for (all by default), then rewrite the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="modules of mutation.toml (default: all)")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 1, help="mutants run at once")
    parser.add_argument("--report", action="store_true",
                        help="no run: recount the last run (finished or stopped) of each staged module against "
                             "mutation.toml's equivalents")
    parser.add_argument("--reuse", action="store_true",
                        help="keep mutmut's verdicts from the last run (only right when no test changed since)")
    parser.add_argument("--survivors", action="store_true",
                        help="rerun only the last run's survivors (after adding tests; the killed stay killed)")
    args = parser.parse_args()
    plan = load_plan()
    unknown = [m for m in args.modules if m not in plan["modules"]]
    if unknown:
        raise SystemExit(f"not in {PLAN.name}: {', '.join(unknown)}; it lists {', '.join(plan['modules'])}")
    equivalent = plan.get("equivalent", {})
    results = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.is_file() else {}
    if args.report:
        for module in args.modules or [m for m in plan["modules"] if (staged(m) / "mutants").is_dir()]:
            results[module] = summarize(statuses(staged(module)), equivalent)
        RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        write_report(results, equivalent)
        return
    for module in args.modules or list(plan["modules"]):
        again = survivors(module, equivalent) if args.survivors else []
        if args.survivors and not again:
            print(f"{module}: no survivor to rerun", flush=True)
            continue
        folder = stage(module, plan["modules"][module], plan.get("skip", {}).get("lines", []),
                       not (args.reuse or args.survivors))
        print(f"{module}: mutating …" if not again else f"{module}: rerunning {len(again)} survivors …", flush=True)
        mutmut(folder, "run", "--max-children", str(args.max_children), *again)
        results[module] = summarize(statuses(folder), equivalent)
        r = results[module]
        print(f"{module}: {r['killed']} killed, {len(r['survived'])} survived, {r['equivalent']} equivalent, "
              f"{len(r['untested'])} unreached — {r['score']:.1%}", flush=True)
        RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        write_report(results, equivalent)


if __name__ == "__main__":
    main()
