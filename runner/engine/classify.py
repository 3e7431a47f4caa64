"""What a step's answer means: the classification table of reliability.md §1.3 (pure).

| observation                                             | verdict     |
|---------------------------------------------------------|-------------|
| a `done` status (2xx; 404 on a DELETE)                  | DONE        |
| 400 "matches the user's current default ... method"     | DEFER       |
| other 400/403/404/405/409/...                           | FAILED      |
| 401                                                     | REAUTH      |
| 429; 503 with Retry-After (documented as not executed)  | THROTTLED   |
| connect refused/DNS/TLS/connect timeout; an envelope    | NOT_SENT    |
|   429/503/424 (the batch was refused before its items)  |             |
| 500, 502, 504, 503 without Retry-After, a reset or      | UNKNOWN     |
|   timeout after sending, an item missing or malformed,  |             |
|   an envelope 5xx or unreadable body                    |             |

DONE, DEFER and FAILED are definitive; NOT_SENT is safe to retry for any action; THROTTLED is
retried after the pause, and for a non-repeatable action only after reading back that it did
not happen; UNKNOWN is reconciled by reading state back before anything is sent again, and a
non-repeatable action whose outcome is unknown is never re-sent automatically.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from runner.actions.base import Step
from runner.actions.methods import is_default_refusal
from runner.graph.facts import GraphFailure, GraphResponse, SendState, TransportFailure


class Verdict(StrEnum):
    """The class of one step's answer."""

    DONE = "done"
    DEFER = "defer"
    FAILED = "failed"
    REAUTH = "reauth"
    THROTTLED = "throttled"
    NOT_SENT = "not_sent"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True, kw_only=True)
class Classified:
    """A verdict and the facts the journal keeps with it."""

    verdict: Verdict
    status: int | None = None
    code: str | None = None
    message: str | None = None
    request_id: str | None = None
    retry_after_s: float | None = None

    @classmethod
    def of(
        cls, verdict: Verdict, response: GraphResponse | None, message: str | None = None
    ) -> Classified:
        """A verdict with the response's facts."""
        if response is None:
            return cls(verdict=verdict, message=message)
        error: GraphFailure | None = response.error
        return cls(
            verdict=verdict,
            status=response.status,
            code=error.code if error else None,
            message=message or (error.message if error else None),
            request_id=response.request_id,
            retry_after_s=response.retry_after_s,
        )


def classify_response(step: Step, response: GraphResponse) -> Classified:
    """The verdict on a step's own response (standalone or a batch item)."""
    status = response.status
    if status in step.done:
        return Classified.of(Verdict.DONE, response)
    if status == 401:
        return Classified.of(Verdict.REAUTH, response)
    if status == 429 or (status == 503 and response.retry_after_s is not None):
        return Classified.of(Verdict.THROTTLED, response)
    if status == 424:
        return Classified.of(Verdict.NOT_SENT, response, "a request it depended on failed")
    if status == 0 or status >= 500:
        return Classified.of(Verdict.UNKNOWN, response)
    if is_default_refusal(response.error):
        return Classified.of(Verdict.DEFER, response)
    if 200 <= status < 300:
        return Classified.of(Verdict.UNKNOWN, response, f"unexpected status {status}")
    return Classified.of(Verdict.FAILED, response)


def classify_transport(failure: TransportFailure) -> Classified:
    """A request that got no HTTP answer."""
    verdict = Verdict.NOT_SENT if failure.state is SendState.NOT_SENT else Verdict.UNKNOWN
    return Classified(verdict=verdict, message=failure.detail)


def classify_envelope(envelope: GraphResponse) -> Classified:
    """A `$batch` envelope that did not answer 200 (its items carry this verdict)."""
    status = envelope.status
    if status == 401:
        return Classified.of(Verdict.REAUTH, envelope)
    if status in {424, 429} or (status == 503 and envelope.retry_after_s is not None):
        return Classified.of(Verdict.THROTTLED if status == 429 else Verdict.NOT_SENT, envelope)
    if status in {400, 413}:
        return Classified.of(Verdict.FAILED, envelope, "Graph refused the batch as malformed")
    return Classified.of(Verdict.UNKNOWN, envelope)


MISSING = Classified(
    verdict=Verdict.UNKNOWN, message="no answer for this item in the batch response"
)
MALFORMED = Classified(verdict=Verdict.UNKNOWN, message="the batch response could not be read")
