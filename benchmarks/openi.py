"""OpenI as published: parse coverage of the real XML reports, MeSH coverage per observation and
the agreement of the labeler's (text-mined) subcategories with the human MeSH ones, over the
whole collection (3,955 reports).

    python benchmarks/openi.py [--reports PATH/NLMCXR_reports.tgz] [--json out.json]

Without --reports the archive shipped in torchxrayvision's wheel is used (pip install
torchxrayvision). What is measured, fixed before running it:

(a) parse coverage: XML files read, reports parsed, failures (must be 0), image ids, reports
    without images, reports with FINDINGS and/or IMPRESSION;
(b) MeSH coverage per observation: reports whose manual MeSH annotation names the observation
    (a heading of ``data/mesh/headings.csv``), and of those, how many carry a Table 1 severity
    modifier on one side (atypical / typical) or on both (mixed, no subcategory);
(c) agreement per observation over the (report, observation) pairs with a MeSH subcategory:
    coverage = share the labeler calls positive or uncertain (status 1 / -1, the cases that get a
    text-mined subcategory), agreement = share of covered pairs whose subcategories match, and
    Cohen's kappa; pooled over observations as well (the same definition as row (b) of
    benchmarks/labeler.py, there on the development half only).

Prints no report text.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from collections import Counter
from pathlib import Path

from finegrain.data.mesh import load_mesh_map, mesh_findings
from finegrain.data.openi_reports import read_reports
from finegrain.evaluate import subcategory_agreement
from finegrain.reports import label_report


def default_archive() -> Path | None:
    spec = importlib.util.find_spec("torchxrayvision")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "NLMCXR_reports.tgz"


def measure(archive: Path) -> dict:
    t0 = time.perf_counter()
    reports, failures = read_reports(archive)
    seconds = time.perf_counter() - t0
    sections = Counter()
    for r in reports:
        sections["findings"] += bool(r.sections.get("FINDINGS"))
        sections["impression"] += bool(r.sections.get("IMPRESSION"))
        sections["either"] += bool(r.sections.get("FINDINGS") or r.sections.get("IMPRESSION"))
    parse = {
        "reports": len(reports),
        "failures": len(failures),
        "images": sum(len(r.images) for r in reports),
        "reports_without_images": sum(not r.images for r in reports),
        "with_findings": sections["findings"],
        "with_impression": sections["impression"],
        "with_findings_or_impression": sections["either"],
        "seconds": round(seconds, 2),
    }
    mesh_map = load_mesh_map()
    coverage = {o: Counter() for o in mesh_map.observations}
    pairs = {o: ([], []) for o in mesh_map.observations}  # (text, mesh) per covered pair
    for report in reports:
        findings = mesh_findings(report.mesh, mesh_map)
        if not findings:
            continue
        labels = label_report(report.text)
        for obs, finding in findings.items():
            c = coverage[obs]
            c["annotated"] += 1
            if finding.mixed:
                c["mixed"] += 1
            elif finding.subcategory:
                c[finding.subcategory] += 1
                lab = labels[obs]
                if lab.status in (1, -1):
                    c["covered"] += 1
                    pairs[obs][0].append(lab.subcategory)
                    pairs[obs][1].append(finding.subcategory)
    per_obs, all_text, all_mesh = {}, [], []
    for obs in mesh_map.observations:
        text, mesh = pairs[obs]
        all_text += text
        all_mesh += mesh
        graded = coverage[obs]["atypical"] + coverage[obs]["typical"]
        agreement = subcategory_agreement(text, mesh)
        per_obs[obs] = {
            **{k: coverage[obs][k] for k in ("annotated", "atypical", "typical", "mixed")},
            "graded": graded,
            "covered": coverage[obs]["covered"],
            "coverage": coverage[obs]["covered"] / graded if graded else None,
            "agree": agreement["agree"],
            "agreement": agreement["proportion"],
            "kappa": agreement["kappa"],
            "table": agreement["table"],
        }
    pooled = subcategory_agreement(all_text, all_mesh)
    graded = sum(v["graded"] for v in per_obs.values())
    return {
        "archive": str(archive),
        "parse": parse,
        "mesh": per_obs,
        "pooled": {
            "graded": graded,
            "covered": pooled["n"],
            "coverage": pooled["n"] / graded if graded else None,
            "agree": pooled["agree"],
            "agreement": pooled["proportion"],
            "kappa": pooled["kappa"],
            "table": pooled["table"],
        },
    }


def _fmt(x, digits=3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", type=Path, default=None, help="NLMCXR_reports.tgz or folder")
    parser.add_argument("--json", type=Path, help="also write the numbers as JSON")
    args = parser.parse_args(argv)
    archive = args.reports or default_archive()
    if archive is None or not archive.exists():
        parser.error("no OpenI reports: pass --reports or pip install torchxrayvision")
    result = measure(archive)
    p = result["parse"]
    print(
        f"parse: {p['reports']} reports, {p['failures']} failures, {p['images']} image ids, "
        f"{p['reports_without_images']} reports without images, {p['with_findings']} with "
        f"FINDINGS, {p['with_impression']} with IMPRESSION, {p['with_findings_or_impression']} "
        f"with either ({p['seconds']} s)"
    )
    print(
        "\n| observation | MeSH-annotated reports | atypical | typical | mixed | "
        "labeler positive/uncertain (coverage) | agreement | Cohen's κ |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for obs, m in result["mesh"].items():
        print(
            f"| {obs} | {m['annotated']} | {m['atypical']} | {m['typical']} | {m['mixed']} | "
            f"{m['covered']} of {m['graded']} ({_fmt(m['coverage'], 2)}) | "
            f"{_fmt(m['agreement'])} ({m['agree']}/{m['covered']}) | {_fmt(m['kappa'], 2)} |"
        )
    q = result["pooled"]
    print(
        f"| **pooled** | | | | | {q['covered']} of {q['graded']} ({_fmt(q['coverage'], 2)}) | "
        f"**{_fmt(q['agreement'])}** ({q['agree']}/{q['covered']}) | {_fmt(q['kappa'], 2)} |"
    )
    print(f"\nconfusion (text-mined -> MeSH), pooled: {q['table']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
