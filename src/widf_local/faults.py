"""Faults the local stack injects on request, so tests can try to break the loader.

One `FaultInjector` lives in the stack's process and is shared by the parts
that fail in the cloud: Snowflake (the gateway refuses a statement, loses the
answer to one it ran, or stalls), STS (unavailable while Snowflake verifies an
attestation), S3 (GetObject throttled with 503 SlowDown) and Lambda (a
container killed mid-invocation). Each fault fires with its own probability,
from a generator of its own seeded by the plan's seed, and is counted, so a
test can say how many faults its load survived. A kind's own generator makes
its n-th chance fire or not whatever the other kinds and the threads do in
between, so with a seed a run's faults repeat. All of them are off until
`PUT /local/faults` turns them on.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import asdict, dataclass, fields
from typing import Any

from widf_local.gateway import stage_uploads

SLOW_DOWN_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message><RequestId>LOCALFAULT</RequestId></Error>"
)
STS_UNAVAILABLE_BODY = (
    b'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Receiver</Type>'
    b"<Code>ServiceUnavailable</Code><Message>Service is unavailable.</Message></Error></ErrorResponse>"
)


class FaultPlanError(ValueError):
    """A fault plan that names an unknown fault or a probability outside [0, 1]."""


@dataclass(frozen=True)
class FaultPlan:
    """Probabilities per request (or per invocation, for containers)."""

    snowflake_unavailable: float = 0.0  # HTTP 503 before the statement runs
    snowflake_response_lost: float = 0.0  # the statement runs, its answer is lost (HTTP 503)
    snowflake_stall: float = 0.0  # the statement answers only after `stall_seconds`
    stall_seconds: float = 0.0
    stall_only: str = ""  # stall only statements that start with this word (MERGE: the ledger's claim)
    sts_unavailable: float = 0.0  # GetCallerIdentity answers 503 ServiceUnavailable
    s3_slowdown: float = 0.0  # GetObject answers 503 SlowDown
    container_killed: float = 0.0  # the runner kills the function's container mid-invocation
    seed: int | None = None

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> FaultPlan:
        known = {f.name for f in fields(cls)}
        if unknown := sorted(set(values) - known):
            raise FaultPlanError(f"unknown fault(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        plan = cls(**values)
        for name, value in asdict(plan).items():
            if name in ("seed", "stall_seconds", "stall_only"):
                continue
            if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise FaultPlanError(f"{name} must be a probability between 0 and 1, not {value!r}")
        if not isinstance(plan.stall_only, str) or not (plan.stall_only == "" or plan.stall_only.isalpha()):
            raise FaultPlanError(f"stall_only must be one SQL keyword such as MERGE, not {plan.stall_only!r}")
        if not isinstance(plan.stall_seconds, (int, float)) or not 0 <= plan.stall_seconds <= 900:
            raise FaultPlanError(f"stall_seconds must be between 0 and 900, not {plan.stall_seconds!r}")
        return plan


FAULTS = ("snowflake_unavailable", "snowflake_response_lost", "snowflake_stall", "sts_unavailable", "s3_slowdown", "container_killed")


class FaultInjector:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._plan = FaultPlan()
        self._random = random.Random()
        self._generators = {fault: random.Random() for fault in FAULTS}
        self.injected: Counter[str] = Counter()
        self.chances: Counter[str] = Counter()  # rolls of the dice, fired or not

    @property
    def plan(self) -> FaultPlan:
        return self._plan

    def apply(self, plan: FaultPlan) -> None:
        with self._lock:
            self._plan = plan
            self._random = random.Random(plan.seed)
            self._generators = {fault: random.Random(None if plan.seed is None else f"{plan.seed}/{fault}") for fault in FAULTS}

    def fires(self, fault: str) -> bool:
        """Roll the dice for one fault; count it when it fires."""
        with self._lock:
            probability = getattr(self._plan, fault)
            if probability <= 0.0:
                return False
            self.chances[fault] += 1
            if self._generators[fault].random() >= probability:
                return False
            self.injected[fault] += 1
            return True

    def fraction(self) -> float:
        """A uniform draw, for where in an invocation a kill lands."""
        with self._lock:
            return self._random.random()

    def report(self) -> dict[str, Any]:
        with self._lock:
            return {"plan": asdict(self._plan), "injected": dict(self.injected), "chances": dict(self.chances)}


class FaultyAws:
    """WSGI middleware in front of moto: S3 throttling and an unavailable STS."""

    def __init__(self, app: Any, faults: FaultInjector):
        self.app, self.faults = app, faults

    def __call__(self, environ: dict, start_response: Any) -> Any:
        service = signed_service(environ.get("HTTP_AUTHORIZATION", ""))
        # Throttling is the landing bucket's; the stage uploads' bucket stands for Snowflake's own storage.
        stage_storage = environ.get("PATH_INFO", "").lstrip("/").startswith(f"{stage_uploads.BUCKET}/")
        if service == "s3" and is_get_object(environ) and not stage_storage and self.faults.fires("s3_slowdown"):
            return respond(start_response, "503 Slow Down", SLOW_DOWN_BODY)
        if service == "sts" and "GetCallerIdentity" in environ.get("QUERY_STRING", "") and self.faults.fires("sts_unavailable"):
            return respond(start_response, "503 Service Unavailable", STS_UNAVAILABLE_BODY)
        return self.app(environ, start_response)


def signed_service(authorization: str) -> str:
    """The service in a SigV4 credential scope: Credential=AKID/DATE/REGION/SERVICE/aws4_request."""
    try:
        return authorization.split("Credential=", 1)[1].split(",", 1)[0].split("/")[3]
    except IndexError:
        return ""


def is_get_object(environ: dict) -> bool:
    # Path-style addressing (the local endpoint is an IP): /bucket/key; listings have no key.
    path = environ.get("PATH_INFO", "").lstrip("/")
    return environ.get("REQUEST_METHOD") == "GET" and "/" in path and not path.endswith("/")


def respond(start_response: Any, status: str, body: bytes) -> list[bytes]:
    start_response(status, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
    return [body]
