"""The results as Markdown tables, written into docs/BENCHMARKS.md between two markers so the
method and the reasoning around them (written by hand) stay put."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tabulate import tabulate

from bench.events import role_of

DOC = Path(__file__).resolve().parent.parent / "docs" / "BENCHMARKS.md"
BEGIN = "<!-- bench:begin (written by `make bench`; edit bench/report.py instead) -->"
END = "<!-- bench:end -->"

# The fewest calls the AWS API allows for each function's job on each event; the reasoning is
# in docs/BENCHMARKS.md ("The fewest calls the API allows").
FEWEST: dict[tuple[str, str], int] = {
    ("no-ssm", "enforce"): 2,
    ("no-ssm", "publish"): 3,
    ("ssm-on", "enforce"): 5,
    ("ssm-on", "publish"): 5,
    ("production", "enforce"): 7,
    ("production", "publish"): 3,
}
FEWEST_DUPLICATE = 1
# A revert whose role holds the session policy also decides whether to release it: which role
# (DescribeModel), does it hold the policy (ListAttachedRolePolicies), and at best one Search
# page showing another SSM endpoint on it (plus the configs read until one does).
FEWEST_RELEASE = 3
SWEEP_TARGET_CALLS = 1.1
SWEEP_TARGET_TIME = 0.5
COLD_START_TARGET = 1.3
FUNCTION_LIMIT = 1_000_000


def _table(rows: list[list[Any]], headers: list[str]) -> str:
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def _ops(calls: dict[str, int]) -> str:
    return ", ".join(
        f"{op.split(':', 1)[1]}×{n}" if n > 1 else op.split(":", 1)[1] for op, n in calls.items()
    )


def _met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "**missed**")


def environment(meta: dict[str, Any]) -> str:
    rows = [[k, str(v)] for k, v in meta.items()]
    return _table(rows, ["", ""])


def paging(results: dict[str, Any]) -> str:
    checks = [r.get("paging") for r in results.get("sweep", {}).get("runs", []) if r.get("paging")]
    if not checks:
        return "_Paging was not checked in this run._"
    check = checks[-1]
    rows = []
    for call, limit, rejects in (
        ("Search", 100, "rejects_over_100"),
        ("ListEndpoints", 100, "rejects_over_100"),
        ("DescribeLogStreams", 50, "rejects_over_50"),
    ):
        found = check[call]
        rows.append(
            [
                call,
                f"≤{limit}",
                str(found["page_size"]),
                "yes" if found["has_next_token"] else "no",
                "yes" if found[rejects] else "**no**",
                "like AWS" if found["pages_like_aws"] else "**not like AWS**",
            ]
        )
    head = ["call", "AWS page", "first page here", "next token", "refuses a larger page", ""]
    return f"On {check['endpoints']:,} endpoints:\n\n" + _table(rows, head)


def per_event(results: dict[str, Any]) -> str:
    events = results.get("events", {})
    if "scenarios" not in events:
        return f"_Not measured: {events.get('skipped') or events.get('error', 'no result')}_"
    rows = []
    for scenario in events["scenarios"]:
        first = scenario["in_process"]["first"]
        again = {row["function"]: row for row in scenario["in_process"]["duplicate"]}
        for row in first:
            fewest = FEWEST.get((scenario["key"], role_of(row["function"])))
            dup = again.get(row["function"], {})
            rows.append(
                [
                    scenario["title"],
                    row["function"],
                    row["decision"] or row["error"] or "",
                    str(row["calls"]),
                    "—" if fewest is None else str(fewest),
                    str(dup.get("calls", "")),
                    str(FEWEST_DUPLICATE),
                    _ops(row["calls_by_operation"]),
                ]
            )
    head = [
        "event",
        "function",
        "decision",
        "calls",
        "fewest",
        "duplicate",
        "fewest",
        "operations (first delivery)",
    ]
    return _table(rows, head)


def end_to_end(results: dict[str, Any]) -> str:
    events = results.get("events", {})
    if "scenarios" not in events:
        return ""
    rows = []
    for scenario in events["scenarios"]:
        first, dup = scenario["end_to_end"]["first"], scenario["end_to_end"]["duplicate"]
        invoked = ", ".join(
            f"{i['function']} ({i['decision'] or i['error'] or 'ok'})" for i in first["invocations"]
        )
        fewest = sum(
            FEWEST.get((scenario["key"], role_of(f)), 0) for f in scenario["functions_reached"]
        )
        rows.append(
            [scenario["title"], invoked, str(first["calls"]), str(fewest), str(dup["calls"])]
        )
    head = ["event", "invocations (cold, each in a fresh interpreter)", "calls", "fewest", "dup."]
    return _table(rows, head)


def _label(run: dict[str, Any]) -> str:
    label = f"{run['endpoints']:,}"
    if run["fixture"]["shape"]["endpoints_per_config"] == 1:
        label += " (a config each)"
    return label


def sweep(results: dict[str, Any]) -> str:
    runs = results.get("sweep", {}).get("runs", [])
    if not runs:
        found = results.get("sweep", {})
        return f"_Not measured: {found.get('skipped') or found.get('error', 'no result')}_"
    rows = []
    for run in runs:
        if "first" not in run:
            rows.append([_label(run), run.get("skipped", run.get("error", ""))] + [""] * 7)
            continue
        first, steady = run["first"], run["steady"]
        c7n = run.get("custodian", {})
        ratio = run.get("ours_over_custodian", {})
        measured = "calls" in c7n
        rows.append(
            [
                _label(run),
                f"{first['calls_per_endpoint']:.3f} / {first['seconds']:.2f}",
                f"{steady['calls_per_endpoint']:.3f}",
                f"{steady['seconds']:.2f} / {steady['process_seconds']:.2f}",
                f"{c7n['calls'] / run['endpoints']:.3f}" if measured else "—",
                f"{c7n['policy_seconds']:.2f} / {c7n['wall_seconds']:.2f}" if measured else "—",
                str(ratio.get("calls", "—")),
                f"{ratio.get('time_work', '—')} / {ratio.get('time_process', '—')}",
                f"{run['fixture']['seconds']:.0f}",
            ]
        )
    head = [
        "endpoints",
        "first sweep: calls/endpoint / s",
        "steady sweep: calls/endpoint",
        "steady: s work / s process",
        "Custodian: calls/endpoint",
        "Custodian: s policy / s process",
        "calls ours/theirs",
        "time ours/theirs (work / process)",
        "build s",
    ]
    return _table(rows, head)


def revert_scaling(results: dict[str, Any]) -> str:
    runs = [r for r in results.get("sweep", {}).get("runs", []) if "revert_event" in r]
    if not runs:
        return ""
    rows = []
    for run in runs:
        found = run["revert_event"]
        calls: dict[str, int] = {}
        for row in found["functions"]:
            calls.update(row["calls_by_operation"])
        label = _label(run)
        decisions = ", ".join(str(row["decision"] or row["error"]) for row in found["functions"])
        rows.append(
            [
                label,
                decisions,
                str(found["calls"]),
                f"{found['seconds']:.2f}",
                f"{FEWEST[('production', 'enforce')] + FEWEST_RELEASE}+",
                _ops(calls),
            ]
        )
    head = ["endpoints in the account", "decision", "calls", "s", "fewest", "operations"]
    return _table(rows, head)


def sweep_operations(results: dict[str, Any]) -> str:
    runs = [r for r in results.get("sweep", {}).get("runs", []) if "first" in r]
    if not runs:
        return ""
    rows = []
    for run in runs:
        label = _label(run)
        rows.append([label, "first", _ops(run["first"]["calls_by_operation"])])
        rows.append([label, "steady", _ops(run["steady"]["calls_by_operation"])])
        if "custodian" in run and "calls_by_operation" in run["custodian"]:
            rows.append([label, "Custodian", _ops(run["custodian"]["calls_by_operation"])])
    return _table(rows, ["endpoints", "run", "operations"])


def cold_start(results: dict[str, Any]) -> str:
    found = results.get("coldstart", {})
    if "functions" not in found:
        return f"_Not measured: {found.get('error', 'no result')}_"
    rows = [["bare boto3 SageMaker client", f"{found['baseline_seconds']:.3f}", "1.00", "", "", ""]]
    for name, f in found["functions"].items():
        costs = ", ".join(f"{c['package']} {c['self_ms']:.0f}" for c in f["import_costs"][:5])
        rows.append(
            [
                name,
                f"{f['init_seconds']:.3f}",
                f"{f['ratio']:.2f}",
                _met(f["meets_target"]),
                ", ".join(f["heavy_modules_loaded"]) or "none",
                costs,
            ]
        )
    head = ["", "s (median)", "ratio", "≤1.3×", "heavy modules loaded", "import ms by package"]
    return (
        f"Python {found['python']}, median of {found['runs']} fresh interpreters each.\n\n"
        + _table(rows, head)
    )


def sizes(results: dict[str, Any]) -> str:
    found = results.get("sizes", {})
    if "packages" not in found:
        return f"_Not measured: {found.get('skipped') or found.get('error', 'no result')}_"
    rows = []
    for name, p in found["packages"].items():
        rows.append(
            [
                name,
                p["kind"],
                str(p["files"]),
                f"{p['bytes']:,}",
                f"{p['zip_bytes']:,}",
                _met(p.get("under_1_mb")) if p["kind"] == "function" else "",
            ]
        )
    table = _table(rows, ["package", "kind", "files", "bytes", "zipped bytes", "< 1 MB"])
    layers = [(n, p) for n, p in found["packages"].items() if p.get("parts")]
    for name, layer in layers:
        parts = ", ".join(f"{k} {v:,}" for k, v in layer["parts"].items())
        table += f"\n\n{name}, zipped bytes by folder: {parts}."
    return table


def targets(results: dict[str, Any]) -> str:
    rows: list[list[str]] = []
    runs = [r for r in results.get("sweep", {}).get("runs", []) if "first" in r]
    at_1000 = [
        r
        for r in runs
        if r["endpoints"] == 1000 and r["fixture"]["shape"]["endpoints_per_config"] > 1
    ]
    if at_1000:
        run = at_1000[0]
        per = run["steady"]["calls_per_endpoint"]
        rows.append(
            [
                "sweep calls per endpoint at 1,000 (steady)",
                f"≤ {SWEEP_TARGET_CALLS}",
                f"{per:.3f}",
                _met(per <= SWEEP_TARGET_CALLS),
            ]
        )
        per = run["first"]["calls_per_endpoint"]
        rows.append(
            [
                "sweep calls per endpoint at 1,000 (first, acting)",
                f"≤ {SWEEP_TARGET_CALLS}",
                f"{per:.3f}",
                _met(per <= SWEEP_TARGET_CALLS),
            ]
        )
        ratio = run.get("ours_over_custodian", {})
        for key, label in (
            ("time_work", "steady sweep time / Custodian's (work)"),
            ("time_process", "steady sweep time / Custodian's (whole process)"),
        ):
            if ratio.get(key) is not None:
                rows.append(
                    [
                        label + " at 1,000",
                        f"≤ {SWEEP_TARGET_TIME}",
                        f"{ratio[key]:.2f}",
                        _met(ratio[key] <= SWEEP_TARGET_TIME),
                    ]
                )
    solo = [
        r
        for r in runs
        if r["endpoints"] == 1000 and r["fixture"]["shape"]["endpoints_per_config"] == 1
    ]
    for run in solo:
        ratio = run.get("ours_over_custodian", {})
        for key, label in (
            ("time_work", "steady sweep time / Custodian's (work)"),
            ("time_process", "steady sweep time / Custodian's (whole process)"),
        ):
            if ratio.get(key) is not None:
                rows.append(
                    [
                        label + " at 1,000, a config each",
                        f"≤ {SWEEP_TARGET_TIME}",
                        f"{ratio[key]:.2f}",
                        _met(ratio[key] <= SWEEP_TARGET_TIME),
                    ]
                )
    found = results.get("coldstart", {}).get("functions", {})
    for name, f in found.items():
        rows.append(
            [
                f"cold start {name}",
                f"≤ {COLD_START_TARGET}×",
                f"{f['ratio']:.2f}×",
                _met(f["meets_target"]),
            ]
        )
    for name, p in results.get("sizes", {}).get("packages", {}).items():
        if p["kind"] == "function":
            rows.append(
                [f"package {name}", "< 1 MB", f"{p['zip_bytes']:,} B", _met(p["under_1_mb"])]
            )
    for scenario in results.get("events", {}).get("scenarios", []):
        for row in scenario["in_process"]["first"]:
            fewest = FEWEST.get((scenario["key"], role_of(row["function"])))
            if fewest is not None:
                rows.append(
                    [
                        f"{scenario['key']}: {row['function']}",
                        f"{fewest} calls",
                        str(row["calls"]),
                        _met(row["calls"] <= fewest)
                        + ("" if row["calls"] <= fewest else " (see Findings)"),
                    ]
                )
    return _table(rows, ["target", "wanted", "measured", ""])


def render(results: dict[str, Any]) -> str:
    parts = [
        "### Run",
        environment(results["meta"]),
        "### Targets at a glance",
        targets(results),
        "### Does the local AWS page like AWS?",
        paging(results),
        "### AWS calls per event (in process, botocore hook)",
        per_event(results),
        "### The same events end to end (server-side count, until the account settles)",
        end_to_end(results),
        "### The sweep, and Cloud Custodian on the same account",
        sweep(results),
        "Operations:",
        sweep_operations(results),
        "### One production revert event, by the size of the account",
        revert_scaling(results),
        "### Cold start",
        cold_start(results),
        "### Package sizes after `sam build`",
        sizes(results),
    ]
    return "\n\n".join(p for p in parts if p)


def write(results: dict[str, Any], doc: Path = DOC) -> None:
    """Replace what lies between the markers; the rest of the document is kept as written."""
    text = doc.read_text() if doc.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        text += f"\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(f"{head}{BEGIN}\n\n{render(results)}\n\n{END}{tail}")
