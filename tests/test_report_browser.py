"""report.html in a real browser: Debian's chromium, headless, offline. The DOM after the page's
script ran has the table, both charts and the sort and filter controls, and sorting and
filtering (driven by the URL fragment) give the right rows; a screenshot is drawn.

Skipped, saying so, only when no chromium is installed (`.ci/run` installs Debian's)."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from runner import report
from runner.journal import Journal
from tests.report_support import make_run

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NO_BROWSER = (
    "no chromium on this machine (Debian: apt-get install chromium; .ci/run installs it): "
    "report.html was not checked in a browser"
)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


class Dom(HTMLParser):
    """What the tests look at in a dumped DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.charts: list[str] = []
        self.headers: list[tuple[str, str]] = []
        self.body: dict[str, str | None] = {}
        self.controls_hidden: bool | None = None
        self.ids: set[str] = set()
        self._tbody = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("id"):
            self.ids.add(str(found["id"]))
        if tag == "body":
            self.body = found
        elif tag == "svg" and found.get("data-chart"):
            self.charts.append(str(found["data-chart"]))
        elif tag == "div" and found.get("id") == "controls":
            self.controls_hidden = "hidden" in found
        elif tag == "th":
            self.headers.append((str(found.get("data-column")), str(found.get("aria-sort"))))
        elif tag == "tbody":
            self._tbody = True
        elif tag == "tr" and self._tbody:
            self.rows.append([])
        elif tag == "td" and self._tbody:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._tbody = False
        elif tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """report.html of the synthetic run (every kind of outcome, 429s, a pause)."""
    if CHROMIUM is None:
        pytest.skip(NO_BROWSER)
    root = tmp_path_factory.mktemp("browser")
    run_dir = make_run(root)
    with Journal.open(run_dir) as journal:
        report.write_all(run_dir, journal, formats=["html"], now=dt.datetime.now(dt.UTC))
    return run_dir / "report.html"


def _chromium(page: Path, profile: Path, *args: str, fragment: str = "") -> str:
    assert CHROMIUM is not None
    done = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args, page.as_uri() + fragment],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _dom(page: Path, tmp_path: Path, fragment: str = "") -> Dom:
    dom = Dom()
    dom.feed(_chromium(page, tmp_path / "profile", "--dump-dom", fragment=fragment))
    return dom


def test_the_page_shows_its_table_charts_and_controls(page: Path, tmp_path: Path) -> None:
    """After the script ran: 12 rows in plan order, both charts, controls, sortable columns."""
    dom = _dom(page, tmp_path)
    assert dom.body.get("data-rendered") == "12"
    assert [row[0] for row in dom.rows] == [str(n) for n in range(1, 13)]
    assert dom.rows[3][1:5] == [
        "alex.wilber@contoso.com",
        "Alex Wilber",
        "reset_password",
        "failed",
    ]
    assert dom.charts == ["outcomes", "timeline"]
    assert dom.controls_hidden is False
    assert {"filter-text", "filter-status", "filter-action", "page-prev", "page-next"} <= dom.ids
    assert dom.headers[0] == ("item", "ascending")
    assert len(dom.headers) == 15 and all(sort == "none" for _, sort in dom.headers[1:])


def test_sorting_and_filtering_give_the_right_rows(page: Path, tmp_path: Path) -> None:
    """`needs attention` sorted by UPN, descending; then a search for one request id."""
    dom = _dom(page, tmp_path, "#status=attention&sort=upn&dir=desc")
    assert [row[0] for row in dom.rows] == ["7", "9", "10", "11", "12", "4", "6", "3"]
    assert ("upn", "descending") in dom.headers
    searched = _dom(page, tmp_path, "#q=REQ-5")
    assert [(row[0], row[4]) for row in searched.rows] == [("5", "verified")]


def test_a_screenshot_is_drawn(page: Path, tmp_path: Path) -> None:
    """Chromium paints the page into a PNG (charts and table are drawn, not just parsed)."""
    shot = tmp_path / "report.png"
    _chromium(page, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,1800")
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 50_000
