"""The README and docs/: the README stays short and starts with the two commands, every relative link
leads somewhere, and docs/performance.md is exactly what bench/report.py renders from bench/results.json,
so no benchmark figure is typed by hand."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

from helpers import REPOSITORY

ROOT = REPOSITORY
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def report_module():
    spec = importlib.util.spec_from_file_location("bench_report", ROOT / "bench" / "report.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def prose(text: str) -> str:
    """The text without code blocks and code spans, where brackets are not links."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation gone, spaces as hyphens,
    a repeated heading numbered from -1."""
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text())):
        slug = re.sub(r"[^\w\- ]", "", heading.replace("`", "").lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def relative_links(page: Path) -> list[str]:
    return [target for target in LINK.findall(prose(page.read_text())) if not re.match(r"^[a-z][a-z0-9+.-]*:", target)]


def test_the_readme_is_short_and_starts_with_the_two_commands():
    lines = README.read_text().splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; move detail to docs/"
    assert lines[0].startswith("# ")
    commands = [line for line in lines[1:] if line.strip() and not line.startswith(("```", "~~~"))][:2]
    assert commands[0].startswith("make demo") and commands[1].startswith("make test"), commands


def test_the_readme_links_every_page_in_docs():
    linked = {(README.parent / target.partition("#")[0]).resolve() for target in relative_links(README)}
    assert not [page.name for page in DOCS.glob("*.md") if page.resolve() not in linked]


def test_every_relative_link_leads_to_a_file_and_heading_that_exist():
    broken = []
    for page in PAGES:
        for target in relative_links(page):
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def test_the_link_checks_would_notice_a_broken_link(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# A page\n\n## Two words, `code`\n\n[ok](#two-words-code) [gone](missing.md) `[not](a-link.md)`\n")
    assert relative_links(page) == ["#two-words-code", "missing.md"]
    assert anchors(page) == {"a-page", "two-words-code"}


def test_the_performance_page_is_what_the_report_renders_from_the_results():
    report = report_module()
    page = DOCS / "performance.md"
    assert page.read_text() == report.render(report.read_results()), "docs/performance.md is generated: run `make perf-doc`"


def test_the_report_shows_a_figure_missing_from_the_results_as_not_measured():
    report = report_module()
    page = report.render({"machine": {"cores": 2, "python": "3.11"}, "pipeline_vs_floor": 0.81})
    assert "| pipeline / JSON floor (contracts on) | 0.81 | ≥ 0.8 | yes |" in page
    assert "| artefact with connector 5.x unpacked (MB) | not measured | ≤ 100 | not measured |" in page
    assert "not measured" in report.render(None)


def test_no_benchmark_figure_is_copied_into_the_readme_or_docs():
    """The results' precise figures (three significant digits or more) appear on the generated page only."""
    results = report_module().read_results() or {}

    def figures(value):
        if isinstance(value, dict):
            for item in value.values():
                yield from figures(item)
        elif isinstance(value, float) and len(re.sub(r"\D", "", repr(value)).strip("0")) >= 3:
            yield repr(value)

    # Versions that read like figures: glibc's (2.26, 2.28) and Python's (3.11, 3.12).
    versions = {"2.26", "2.28", "3.11", "3.12"}
    wanted = set(figures(results)) - versions
    copied = {
        f"{page.relative_to(ROOT)}: {figure}"
        for page in PAGES
        if page.name != "performance.md"
        for figure in wanted
        if re.search(rf"(?<![\d.]){re.escape(figure)}(?!\.?\d)", page.read_text())
    }
    assert not copied, f"figures from bench/results.json typed by hand (link docs/performance.md instead): {sorted(copied)}"


def costs_module():
    spec = importlib.util.spec_from_file_location("bench_costs", ROOT / "bench" / "costs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_credits_estimate_reads_the_warehouse_and_template_it_describes_and_bills_as_snowflake_does():
    costs = costs_module()
    assert costs.auto_suspend_seconds() == 60  # sql/setup.sql's warehouse
    assert costs.template_default("BatchSize") == 10 and costs.template_default("MaximumBatchingWindowInSeconds") == 0
    # a file a minute, each invocation busy 1 s: the warehouse never idles 60 s, so it bills all day, resumed once
    assert costs.trickle(0, 10, 1.0, 2.0, 60) == {
        "files_per_invocation": 1,
        "resumes_per_day": 1,
        "credits_per_day": 24.0,
        "added_wait_max_s": 0,
    }
    # a 300 s window gathers five files: a resume every five minutes, each billed its busy time and the 60 s of idling
    assert costs.trickle(300, 10, 1.0, 2.0, 60) == {
        "files_per_invocation": 5,
        "resumes_per_day": 288,
        "credits_per_day": round(288 * 62 / 3600, 2),
        "added_wait_max_s": 240,
    }
    # a resume bills 60 s at least, however short the burst
    assert costs.burst(10, 5, 0.1, 0)["credits"] == round(60 / 3600, 3)
    assert costs.estimate({}) == {}  # nothing measured, nothing estimated
