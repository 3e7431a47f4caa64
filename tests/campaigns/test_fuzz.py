"""Fuzzing (reliability.md P3 and Z1) with hypothesis: the plan loaders (`parse_yaml`,
`parse_csv`), the `$batch` answer correlation (`correlate`, over arbitrary envelopes) and
`parse_retry_after`. Allowed outcomes: a result, or `PlanFileError` for a plan file; any
other exception is a finding. The seed corpus is the bad-input fixtures, mutated. CI runs a
few thousand examples; ENTRA_BULK_FULL=1 runs 25 times more. Atheris (coverage-guided) runs
from `bench/campaigns.py --atheris` where it installs."""

from __future__ import annotations

import datetime as dt
import math
import time
from collections import Counter
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.graph.client import correlate
from runner.graph.facts import RETRY_AFTER_CEILING_S, GraphResponse, parse_retry_after
from runner.planfile import CsvDialect, parse_csv, parse_yaml
from runner.problem import PlanFileError
from tests.campaigns.campaign_support import FULL, table
from tests.campaigns.conftest import Figures

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "plans"
SEEDS = [
    path.read_bytes()
    for path in sorted(FIXTURES.iterdir())
    if path.is_file() and path.stat().st_size < 64 * 1024
]
SCALE = 25 if FULL else 1
SLOWEST_ALLOWED_S = 1.0
TALLY: Counter[str] = Counter()
SLOWEST: dict[str, float] = {}
UNEXPECTED: list[str] = []


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A fixture with bytes flipped, cut, repeated or inserted."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 6))):
        if not data:
            break
        where = draw(st.integers(0, len(data) - 1))
        match draw(st.sampled_from(["flip", "cut", "insert", "repeat"])):
            case "flip":
                data[where] = draw(st.integers(0, 255))
            case "cut":
                del data[where : where + draw(st.integers(1, 64))]
            case "insert":
                data[where:where] = draw(st.binary(min_size=1, max_size=16))
            case "repeat":
                data[where:where] = data[where : where + draw(st.integers(1, 32))] * 3
    return bytes(data)


PLAN_BYTES = st.one_of(
    mutated(),
    st.binary(max_size=512),
    st.text(max_size=512).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.text(alphabet=":-[]{}&*!|>'\"#%@`,?\t\n ab1", max_size=256).map(str.encode),
)


def _timed(name: str, call: Any) -> None:
    started = time.perf_counter()
    try:
        call()
    except PlanFileError:
        TALLY[f"{name}: refused (PlanFileError)"] += 1
    except Exception as exc:
        UNEXPECTED.append(f"{name}: {type(exc).__name__}: {exc}"[:200])
        raise
    else:
        TALLY[f"{name}: read"] += 1
    spent = time.perf_counter() - started
    SLOWEST[name] = max(SLOWEST.get(name, 0.0), spent)
    TALLY[name] += 1
    assert spent < SLOWEST_ALLOWED_S, f"{name} took {spent:.2f} s"


@settings(max_examples=1000 * SCALE, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=PLAN_BYTES)
def test_yaml_loader_reads_or_refuses_any_bytes(data: bytes) -> None:
    """Any bytes given to the YAML loader give a plan or a PlanFileError, within a second."""
    _timed("parse_yaml", lambda: parse_yaml(data, path="fuzz.yaml"))


@settings(max_examples=1000 * SCALE, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    data=PLAN_BYTES,
    encoding=st.sampled_from([None, "cp1252", "utf-16", "latin-1", "base64", "nope"]),
    delimiter=st.sampled_from([None, ",", ";", "\t"]),  # what --delimiter can give
)
def test_csv_loader_reads_or_refuses_any_bytes(
    data: bytes, encoding: str | None, delimiter: str | None
) -> None:
    """Any bytes, encoding and delimiter given to the CSV loader give targets or a
    PlanFileError, within a second."""
    dialect = CsvDialect(encoding=encoding, delimiter=delimiter)
    _timed("parse_csv", lambda: parse_csv(data, path="fuzz.csv", dialect=dialect))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
ITEM = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.sampled_from(["1", "2", "3", "A", "a"]), st.text(max_size=4), JSON),
        "status": st.one_of(st.sampled_from([200, 204, 400, 404, 429, 500, 503]), JSON),
        "headers": st.one_of(
            st.dictionaries(
                st.sampled_from(
                    [
                        "Retry-After",
                        "retry-after",
                        "request-id",
                        "x-ms-throttle-limit-percentage",
                        "Location",
                    ]
                ),
                st.text(max_size=30),
            ),
            JSON,
        ),
        "body": JSON,
    },
)
ENVELOPE_BODY = st.one_of(
    st.fixed_dictionaries({"responses": st.lists(st.one_of(ITEM, JSON), max_size=8)}),
    JSON,
)


@settings(max_examples=2000 * SCALE, deadline=None)
@given(
    status=st.sampled_from([200, 200, 200, 424, 429, 500, 503]),
    body=ENVELOPE_BODY,
    ids=st.lists(st.sampled_from(["1", "2", "3", "4", "A"]), unique=True, max_size=5),
)
def test_batch_correlation_never_misattributes(status: int, body: Any, ids: list[str]) -> None:
    """Any `$batch` envelope: each request id gets at most its own answer (never another's,
    never one given twice), every id is answered or missing, and nothing raises."""
    envelope = GraphResponse(status=status, body=body, server_date=dt.datetime.now(dt.UTC))
    try:
        result = correlate(envelope, ids)
    except Exception as exc:
        UNEXPECTED.append(f"correlate: {type(exc).__name__}: {exc}"[:200])
        raise
    TALLY["correlate"] += 1
    assert set(result.items) <= set(ids)
    assert set(result.items) | set(result.missing) == set(ids)
    assert not set(result.items) & set(result.missing)
    answers = body.get("responses") if isinstance(body, dict) else None
    if status != 200 or not isinstance(answers, list):
        assert not result.items
        return
    given_ids = Counter(
        a["id"].lower() for a in answers if isinstance(a, dict) and isinstance(a.get("id"), str)
    )
    for request_id in result.items:
        assert given_ids[request_id.lower()] == 1, "an id answered twice was trusted"


@settings(max_examples=2000 * SCALE, deadline=None)
@given(
    text=st.one_of(
        st.none(),
        st.text(max_size=40),
        st.integers(-(10**6), 10**6).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.floats(-1e6, 1e6).map(lambda f: f"{f:.3f}"),
        st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31)).map(
            lambda d: d.strftime("%a, %d %b %Y %H:%M:%S GMT")
        ),
        st.lists(st.integers(-50, 5000).map(str), min_size=2, max_size=4).map(", ".join),
    )
)
def test_retry_after_parser_is_total_and_bounded(text: str | None) -> None:
    """P3: any Retry-After text gives None or seconds in [0, ceiling], never an exception;
    a whole number within the ceiling gives itself."""
    try:
        seconds = parse_retry_after(text, now=dt.datetime(2026, 11, 28, tzinfo=dt.UTC))
    except Exception as exc:
        UNEXPECTED.append(f"parse_retry_after({text!r}): {type(exc).__name__}: {exc}"[:200])
        raise
    TALLY["parse_retry_after"] += 1
    if seconds is None:
        return
    assert not math.isnan(seconds)
    assert 0.0 <= seconds <= RETRY_AFTER_CEILING_S
    if text is not None and text.strip().lstrip("-").isdigit():
        assert seconds == min(max(float(text.strip()), 0.0), RETRY_AFTER_CEILING_S)


def test_fuzz_figures(figures: Figures) -> None:
    """Print the executions of the fuzz tests above (which ran first) and their findings."""
    rows = [
        {
            "target": name,
            "executions": TALLY[name],
            "slowest (ms)": f"{SLOWEST[name] * 1000:.1f}" if name in SLOWEST else "-",
        }
        for name in ("parse_yaml", "parse_csv", "correlate", "parse_retry_after")
    ]
    outcomes = {k: v for k, v in TALLY.items() if ":" in k}
    text = table(rows, list(rows[0]))
    text += "\n" + "; ".join(f"{k}: {v}" for k, v in sorted(outcomes.items()))
    text += f"\nunexpected exceptions: {len(UNEXPECTED)}"
    figures("fuzzing (hypothesis)", text)
    assert not UNEXPECTED, UNEXPECTED
