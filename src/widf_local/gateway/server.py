"""The gateway's HTTP face: fakesnow's routes, with login and statements ours.

Login decides *who* the session is (workload identity or the local admin);
statements that touch account objects, session variables and dynamic tables
are answered by `statements`; the rest are checked against the session's
grants and go to fakesnow after a few rewrites (`engine_sql`). A statement
fakesnow cannot run comes back as a Snowflake error, never as an HTTP 500 -
the connector retries 500s for minutes, which would hide the real problem.
"""

from __future__ import annotations

import asyncio
import gzip
import hmac
import itertools
import json
import logging
import math
import re
import secrets
import sys
import tempfile
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import duckdb
import fakesnow.server  # noqa: F401 - loads the module, which `fakesnow.server` (a function) shadows
import pyarrow as pa
from fakesnow.converter import from_binding
from sqlglot import exp
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from widf_local.faults import FaultInjector, FaultPlan, FaultPlanError
from widf_local.gateway import stages, variables
from widf_local.gateway.accounts import (
    Account,
    Rows,
    Session,
    SnowflakeError,
    User,
    status,
)
from widf_local.gateway.binding import (
    batch_statement,
    batch_table,
    binds_identifiers,
    flattened_array_statement,
    inlined,
    is_array_binding,
    without_comments,
)
from widf_local.gateway.catalog import EngineCatalog
from widf_local.gateway.dynamic_tables import DynamicTables
from widf_local.gateway.errors import does_not_exist, in_snowflakes_words, unsupported
from widf_local.gateway.grants import ADMIN_ROLES, Securable, parse, relation
from widf_local.gateway.history import (
    REFRESH_HISTORY_CALL,
    QueryHistory,
    QueryRecord,
    history_source,
    session_tag_change,
    statement_tag,
    uses_warehouse,
)
from widf_local.gateway.identity import (
    AttestationRejected,
    StsUnavailable,
    verify_aws_attestation,
)
from widf_local.gateway.stage_uploads import StageUploads
from widf_local.gateway.statements import LocalStatements, with_session_context
from widf_local.gateway.transactions import (
    TableLocks,
    insert_only_merge_of,
    locked_table,
    plain_read_in_duckdb,
)

log = logging.getLogger("widf_loader.gateway")
fakesnow_server = sys.modules["fakesnow.server"]

logging.getLogger("sqlglot").setLevel(logging.ERROR)  # it warns about every GRANT it leaves unparsed; we parse those ourselves
_FIRST_WORD = re.compile(r"^\s*(\w+)")
_TRANSACTION_STARTS = {"BEGIN", "START"}
_TRANSACTION_ENDS = {"COMMIT", "ROLLBACK"}
_DML = {"INSERT", "COPY", "MERGE", "UPDATE", "DELETE"}
_DDL = {"CREATE", "DROP", "ALTER", "TRUNCATE", "GRANT", "REVOKE"}
_SHOW_TRANSACTIONS = re.compile(r"^\s*SHOW\s+TRANSACTIONS\s*;?\s*$", re.IGNORECASE)
_ABORT_TRANSACTION = re.compile(r"^\s*SELECT\s+SYSTEM\$ABORT_TRANSACTION\s*\(\s*([^)]*)\)\s*;?\s*$", re.IGNORECASE)
_CANCEL_ALL_QUERIES = re.compile(r"^\s*SELECT\s+SYSTEM\$CANCEL_ALL_QUERIES\s*\(\s*(\d+)\s*\)\s*;?\s*$", re.IGNORECASE)
# Snowflake answers a resent request (same requestId) with its first run's result;
# the gateway keeps that many recent answers, each up to that size.
REMEMBERED_ANSWERS = 1024
REMEMBERED_ANSWER_BYTES = 256 << 10  # larger answers (big SELECTs) are not kept: their requests run again
# A statement's query id, as fakesnow writes it into its (compact) answer; a quote inside a string value is
# escaped, so this key can only be the answer's own.
_QUERY_ID = re.compile(rb'"queryId":"([^"\\]+)"')
# Snowflake's defaults: a session token lives an hour, its master token four. The gateway's
# tokens never expire; connector 5.x requires both tokens and reads these to pace its heartbeat.
SESSION_VALIDITY_SECONDS = 3600
MASTER_VALIDITY_SECONDS = 4 * 3600


@dataclass
class RememberedAnswer:
    """A statement's answer, kept for the requests that resend its requestId."""

    status_code: int
    body: bytes
    media_type: str | None
    query_id: str
    resent: int = 0  # times its request came again (its answer lost, or its client retried)


def unknown_caller_message(sts_arn: str) -> str:
    return f"Unable to find an associated Snowflake user for the verified AWS Caller Identity with ARN '{sts_arn}'"


class Gateway:
    def __init__(
        self,
        account: Account,
        *,
        sts_endpoint: str,
        sts_region: str,
        lookup_secret: Callable[[str], str | None],
        refresh_cap_seconds: float | None = None,
        faults: FaultInjector | None = None,
        stage_root: Path | None = None,
    ):
        self.account = account
        self.faults = faults or FaultInjector()
        # The rest of the stack's counters on this page too (serve.py adds the Lambda runner's): name -> reader.
        self.stack_stats: dict[str, Callable[[], Any]] = {}
        self.answers: OrderedDict[tuple[str, str], RememberedAnswer] = OrderedDict()
        self.ids = itertools.count(int(time.time() * 1000) * 1000)  # session and transaction ids, Snowflake-sized
        self.catalog = EngineCatalog(fakesnow_server.shared_fs, hidden_tables=lambda: self.dynamic_tables.names())
        self.dynamic_tables = DynamicTables(self.catalog, refresh_cap_seconds=refresh_cap_seconds)
        account.catalog = self.catalog
        # Staged files live on disk (the connector copies them there itself: LOCAL_FS); a throwaway directory
        # when the stack names none.
        self.stages = stages.StageStore(stage_root or Path(tempfile.mkdtemp(prefix="widf-stages-")) / "stages")
        self.uploads = self.stages.uploads = StageUploads(sts_endpoint, sts_region, self.stages.root)
        self.catalog.stage_names, self.catalog.format_names = self.stages.names, self.stages.format_names
        self.statements = LocalStatements(account, self.catalog, self.dynamic_tables)
        self.sts_endpoint = sts_endpoint
        self.sts_region = sts_region  # the region local STS serves: an attestation's credential scope must name it
        self.lookup_secret = lookup_secret
        self.sessions: dict[str, Session] = {}
        self.master_tokens: dict[str, str] = {}  # master token -> session token
        self.client_versions: dict[str, str] = {}  # session token -> the connector's version, as its login says
        self.locks = TableLocks()
        self.statement_count = 0
        self.login_count = 0
        self.history = QueryHistory()

    # -- login ---------------------------------------------------------------

    def authenticate(self, data: dict[str, Any]) -> User:
        authenticator = str(data.get("AUTHENTICATOR") or "SNOWFLAKE").upper()
        if authenticator == "WORKLOAD_IDENTITY":
            return self.authenticate_workload(data)
        if authenticator == "SNOWFLAKE":
            return self.authenticate_password(str(data.get("LOGIN_NAME", "")), str(data.get("PASSWORD", "")))
        raise SnowflakeError(390100, f"The local gateway does not support the {authenticator} authenticator.", "08004")

    def authenticate_workload(self, data: dict[str, Any]) -> User:
        if str(data.get("PROVIDER", "")).upper() != "AWS":
            raise SnowflakeError(390144, "The local gateway verifies AWS workload identities only.", "08004")
        try:
            caller = verify_aws_attestation(
                str(data.get("TOKEN", "")), sts_endpoint=self.sts_endpoint, sts_region=self.sts_region, lookup_secret=self.lookup_secret
            )
        except AttestationRejected as e:
            log.warning("workload identity rejected: %s", e)
            raise SnowflakeError(390144, f"Invalid AWS workload identity attestation: {e}.", "08004") from None
        if not (user := self.account.find_user_trusting(caller.role_arn)):
            log.warning("no user trusts %s", caller.role_arn)
            raise SnowflakeError(390144, unknown_caller_message(caller.sts_arn), "08004")
        log.info("workload identity %s logged in as %s", caller.sts_arn, user.name)
        return user

    def authenticate_password(self, login_name: str, password: str) -> User:
        user = self.account.users.get(login_name.upper())
        if not (user and user.password and hmac.compare_digest(user.password.encode(), password.encode())):
            raise SnowflakeError(390100, "Incorrect username or password was specified.", "08004")
        return user

    async def login(self, request: Request) -> Response:
        request = without_empty_query_params(request)  # 5.x sends every name, empty when not set; 4.x omits them
        body = await read_json(request)
        try:
            user = await run_in_threadpool(self.authenticate, body["data"])
            role = self.account.role_for_login(user, request.query_params.get("roleName"))
            parameters = typed_session_parameters(body["data"].get("SESSION_PARAMETERS"))
        except SnowflakeError as e:
            return failure(e)
        except StsUnavailable as e:
            log.warning("workload identity not verified, STS unavailable: %s", e)
            return unavailable()  # Snowflake cannot tell who it is yet; the connector retries the login
        body["data"] = {k: v for k, v in body["data"].items() if k not in ("PASSWORD", "TOKEN")}
        body["data"]["SESSION_PARAMETERS"] = parameters
        response = await fakesnow_server.login_request(with_json_body(request, body))
        payload = json.loads(response.body)
        self.sessions[payload["data"]["token"]] = Session(
            user=user,
            role=role,
            autocommit=bool(parameters.get("AUTOCOMMIT", True)),
            lock_timeout_seconds=float(parameters.get("LOCK_TIMEOUT", 43200)),
            warehouse=(w := request.query_params.get("warehouse")) and w.upper() or user.default_warehouse,
            query_tag=str(parameters.get("QUERY_TAG") or ""),
            secondary_roles=user.default_secondary_roles,  # a session starts with the user's default secondary roles
        )
        self.login_count += 1
        self.client_versions[payload["data"]["token"]] = str(body["data"].get("CLIENT_APP_VERSION") or "")
        self.sessions[payload["data"]["token"]].session_id = payload["data"]["sessionId"] = next(self.ids)
        payload["data"]["sessionInfo"].update(roleName=role, warehouseName=request.query_params.get("warehouse"))
        # Connector 5.x fails the login without a master token ("Missing response field: master token").
        master = secrets.token_urlsafe(32)
        self.master_tokens[master] = payload["data"]["token"]
        payload["data"].update(
            masterToken=master,
            validityInSeconds=SESSION_VALIDITY_SECONDS,
            masterValidityInSeconds=MASTER_VALIDITY_SECONDS,
        )
        return JSONResponse(payload)

    async def token_request(self, request: Request) -> Response:
        """`/session/token-request`: RENEW a session token with its master token (the Authorization).

        The gateway's session tokens do not expire, so RENEW hands back the same one; the
        answer carries every field connector 5.x requires (sessionToken, masterToken, sessionId).
        """
        master = (request.headers.get("Authorization") or "")[17:-1]
        body = await read_json(request)
        token = self.master_tokens.get(master)
        # Failures carry `"data": null`: 5.x parses any `data` object here as the renewed tokens
        # ("missing field `sessionToken`") and would hide the code (390114: log in again).
        if not token or (session := self.sessions.get(token)) is None or body.get("oldSessionToken") not in (None, token):
            return failure(
                SnowflakeError(390114, "Authentication token has expired.  The user must authenticate again.", "08001"), data=False
            )
        request_type = str(body.get("requestType") or "RENEW").upper()
        if request_type not in ("RENEW", "ISSUE"):
            return failure(SnowflakeError(390101, f"Unsupported token request type {request_type}.", "08004"), data=False)
        return JSONResponse(
            {
                "data": {
                    "sessionToken": token,
                    "validityInSecondsST": SESSION_VALIDITY_SECONDS,
                    "masterToken": master,
                    "validityInSecondsMT": MASTER_VALIDITY_SECONDS,
                    "sessionId": session.session_id,
                },
                "code": None,
                "message": None,
                "success": True,
            }
        )

    async def telemetry(self, request: Request) -> Response:
        """`/telemetry/send`: accepted and dropped (5.x posts gzipped OpenTelemetry-ish batches)."""
        token = (request.headers.get("Authorization") or "")[17:-1]
        if token not in self.sessions:
            return failure(SnowflakeError(390104, "User must login again to access the service.", "08001"), 401)
        await request.body()
        return JSONResponse({"data": None, "code": None, "message": None, "success": True})

    # -- statements ----------------------------------------------------------

    def start(self) -> None:
        """Start the background work: the dynamic-table refresher."""
        self.dynamic_tables.start()

    def stop(self) -> None:
        self.dynamic_tables.stop()

    def engine_sql(self, sql: str, session: Session) -> str:
        """Rewrite what fakesnow gets wrong into what it gets right."""
        return with_session_context(sql, session, self.account)

    async def answer_locally(self, token: str, session: Session, sql: str) -> str | None:
        """A SELECT of the rows the gateway answers with itself; None when the statement is for the engine."""
        if (tag := session_tag_change(sql)) is not None:
            session.query_tag = tag
            return rows_as_select(*status("Statement executed successfully."))
        if (rows := await run_in_threadpool(self.query_history, token, session, sql)) is not None:
            return rows_as_select(*rows)
        fake = fakesnow_server.sessions[token]
        if (rows := await run_in_threadpool(self.statements.answer, session, fake, sql)) is not None:
            return rows_as_select(*rows)
        return None

    def query_history(self, token: str, session: Session, sql: str) -> Rows | None:
        """`TABLE(INFORMATION_SCHEMA.QUERY_HISTORY())` read by the engine from this session's visible history, and
        `DYNAMIC_TABLE_REFRESH_HISTORY()` from the refreshes of the dynamic tables the session's role sees."""
        name = f"widf_query_history_{secrets.token_hex(8)}"
        # Registered tables live in DuckDB's temp.main catalog.
        refreshes = history_source(sql, f"temp.main.{name}", REFRESH_HISTORY_CALL)
        if (source := refreshes or history_source(sql, f"temp.main.{name}")) is None:
            return None
        fake = fakesnow_server.sessions[token]
        if not (database := source.database or fake.database):
            raise SnowflakeError(
                90105,
                "Cannot perform SELECT. This session does not have a current database. Call 'USE DATABASE', or use a qualified name.",
                "22000",
            )
        if not self.catalog.exists(Securable("DATABASE", database)):
            raise does_not_exist(database)
        roles = self.account.active_roles(session)
        if refreshes:
            privileges, admin = self.account.privileges, bool(roles & ADMIN_ROLES)
            table = self.dynamic_tables.refresh_history(
                refreshes.arguments, fake.database, fake.schema, lambda name: admin or privileges.sees(roles, relation(name))
            )
        else:
            table = self.history.as_table(self.history.visible_to(session, roles)[: source.limit])
        # A connection of its own, as `count_committed` uses: the history table is registered in it alone.
        connection = fakesnow_server.shared_fs.connect()
        try:
            connection._duck_conn.register(name, table)  # noqa: SLF001 - as `register_batch` does
            cursor = connection.cursor()
            cursor.execute(source.statement)
            return [d[0] for d in cursor.description], cursor.fetchall()
        finally:
            connection.close()

    async def query(self, request: Request) -> Response:
        token = (request.headers.get("Authorization") or "")[17:-1]
        if not (session := self.sessions.get(token)):
            return failure(SnowflakeError(390104, "User must login again to access the service.", "08001"), 401)
        request_id = request.query_params.get("requestId") or ""
        if answer := self.answers.get((token, request_id)):
            answer.resent += 1
            log.info(
                "request %s (query %s) resent (retry %s): answered with its first run's result",
                request_id,
                answer.query_id,
                request.query_params.get("retryCount"),
            )
            return Response(answer.body, status_code=answer.status_code, media_type=answer.media_type)
        if self.faults.fires("snowflake_unavailable"):
            return unavailable()
        body = await read_json(request)
        sql, tag = body["sqlText"], statement_tag(body.get("parameters"), session)
        started, clock = datetime.now(UTC), time.monotonic()
        if self.stalls(sql) and self.faults.fires("snowflake_stall"):
            # The injected fault itself: a statement that takes this long (its START_TIME is before it). Like
            # Snowflake, it still runs if its client has gone meanwhile.
            await asyncio.sleep(self.faults.plan.stall_seconds)
        session.running += 1
        executed = time.monotonic()
        try:
            response = await self.run_statement(request, token, session, body)
        finally:
            session.running -= 1
        on_warehouse = uses_warehouse(sql)
        # The id the client's cursor reports (sfqid) is the one QUERY_HISTORY shows, as in Snowflake.
        query_id = found.group(1).decode() if (found := _QUERY_ID.search(bytes(response.body))) else str(uuid.uuid4())
        self.history.record(
            QueryRecord(
                QUERY_ID=query_id,
                QUERY_TEXT=sql,
                SESSION_ID=session.session_id,
                USER_NAME=session.user.name,
                ROLE_NAME=session.role,
                WAREHOUSE_NAME=session.warehouse if on_warehouse else None,
                QUERY_TAG=tag,
                EXECUTION_STATUS="FAILED_WITH_ERROR" if b'"success":false' in response.body else "SUCCESS",
                START_TIME=started,
                END_TIME=datetime.now(UTC),
                # whole milliseconds, as Snowflake records them; a statement that ran took at least one
                TOTAL_ELAPSED_TIME=math.ceil((time.monotonic() - clock) * 1000),
                EXECUTION_TIME=math.ceil((time.monotonic() - executed) * 1000) if on_warehouse else 0,
            )
        )
        self.remember(token, request_id, response, query_id)
        if self.faults.fires("snowflake_response_lost"):
            return unavailable()
        return response

    def stalls(self, sql: str) -> bool:
        only = self.faults.plan.stall_only.upper()
        return not only or (m := _FIRST_WORD.match(sql)) is not None and m.group(1).upper() == only

    def remember(self, token: str, request_id: str, response: Response, query_id: str) -> None:
        if request_id and response.status_code < 500 and len(response.body) <= REMEMBERED_ANSWER_BYTES:
            self.answers[(token, request_id)] = RememberedAnswer(response.status_code, bytes(response.body), response.media_type, query_id)
            while len(self.answers) > REMEMBERED_ANSWERS:
                self.answers.popitem(last=False)

    async def run_statement(self, request: Request, token: str, session: Session, body: dict[str, Any]) -> Response:
        sql = body["sqlText"]
        batch: list[str] | None = None
        bookkeeping = None
        self.statement_count += 1
        try:
            body["sqlText"] = sql = variables.inline(sql, session.variables)
            bindings = body.get("bindings")
            if bindings and not is_array_binding(bindings) and (binds_identifiers(sql) or stages.is_stage_statement(without_comments(sql))):
                # Names bound with IDENTIFIER(?) no engine takes as parameters, and the stage statements are read
                # here: both get their values written in (write_pandas binds every name it sends).
                body["sqlText"] = sql = inlined(sql, bindings)
                body.pop("bindings")
            if stages.is_copy(sql):
                self.track_transaction(session, "COPY")
            staged = await run_in_threadpool(stages.answer, self.stages, self.account, session, fakesnow_server.sessions[token], sql)
            if isinstance(staged, dict):
                if self.client_versions.get(token, "").split(".")[0].isdigit() and int(self.client_versions[token].split(".")[0]) >= 5:
                    # Connector 5.x's Rust core has no LOCAL_FS transfer ("Unknown location type: LOCAL_FS"): it gets
                    # the stage as S3, on the stack's moto (see stage_uploads).
                    staged["stageInfo"] = self.uploads.stage_info(Path(staged["stageInfo"]["location"]))
                return put_answer(staged)
            if staged is not None:
                body = {"sqlText": rows_as_select(*staged), "sequenceId": body.get("sequenceId")}
            elif (rows := await run_in_threadpool(self.answer_system_control, session, sql, body.get("bindings"))) is not None:
                body = {"sqlText": rows_as_select(*rows), "sequenceId": body.get("sequenceId")}
            elif (answer := await self.answer_locally(token, session, sql)) is not None:
                body = {"sqlText": answer, "sequenceId": body.get("sequenceId")}
            else:
                bookkeeping = await run_in_threadpool(self.statements.check, session, fakesnow_server.sessions[token], sql)
                if is_array_binding(body.get("bindings")):
                    batch = self.register_batch(token, sql, body)
                if batch is None:
                    batch = await run_in_threadpool(self.register_flattened_array, token, sql, body)
                body["sqlText"] = await self.transactional_sql(token, session, body["sqlText"], body.get("bindings"))
        except SnowflakeError as e:
            return failure(e)
        except Exception as e:
            log.exception("gateway failed on %s", sql)
            return failure(
                SnowflakeError(
                    2, f"Internal error in the local gateway ({type(e).__name__}: {e}) on: {' '.join(sql.split())[:120]}", "XX000"
                )
            )
        try:
            response = await fakesnow_server.query_request(with_json_body(request, body))
        finally:
            self.end_of_statement(token, session, sql)
            for table in batch or ():
                fakesnow_server.sessions[token]._duck_conn.unregister(table)  # noqa: SLF001 - the session's DuckDB, as fakesnow keeps it
        if response.status_code >= 500:
            first_line = " ".join(sql.split())[:120]
            return failure(SnowflakeError(2, f"SQL compilation error:\nUnsupported statement in the local gateway: {first_line}", "0A000"))
        failed = b'"success":false' in response.body  # Starlette's compact JSON; spares parsing every result set
        if failed and (error := in_snowflakes_words(json.loads(response.body).get("message") or "", sql)):
            return failure(error)
        if bookkeeping and not failed:
            await run_in_threadpool(bookkeeping)
        return response

    async def transactional_sql(self, token: str, session: Session, sql: str, bindings: dict | None) -> str:
        """Track the session's transaction, take table locks, and give MERGE read-committed semantics."""
        word = m.group(1).upper() if (m := _FIRST_WORD.match(sql)) else ""
        self.track_transaction(session, word)
        if word not in ("MERGE", "UPDATE", "DELETE") or not (statement := parse(sql)):
            return self.engine_sql(sql, session)
        fake = fakesnow_server.sessions[token]
        if table := locked_table(statement, fake.database, fake.schema):
            await run_in_threadpool(self.locks.acquire, token, table, session.lock_timeout_seconds)
        if merge := insert_only_merge_of(sql):
            committed = await run_in_threadpool(self.read_committed, fake, merge.committed_matches, bindings)
            return self.engine_sql(merge.insert_unmatched(committed), session)
        return self.engine_sql(sql, session)

    def track_transaction(self, session: Session, word: str) -> None:
        """BEGIN opens a transaction, and so does DML in a session without autocommit."""
        if (word in _TRANSACTION_STARTS or (word in _DML and not session.autocommit)) and not session.in_transaction:
            session.in_transaction = True
            session.transaction_id, session.transaction_started = next(self.ids), datetime.now(UTC)

    @staticmethod
    def register_batch(token: str, sql: str, body: dict[str, Any]) -> list[str] | None:
        """Run an array-bound INSERT as one statement over the bound rows (see `binding`)."""
        name = f"widf_batch_{secrets.token_hex(8)}"
        # Qualified in DuckDB's catalog of registered tables: a session with no current database may still insert.
        if (statement := batch_statement(sql, len(body["bindings"]), f"temp.main.{name}")) is None:
            return None
        fakesnow_server.sessions[token]._duck_conn.register(name, batch_table(body.pop("bindings")))  # noqa: SLF001 - the session's DuckDB
        body["sqlText"] = statement
        return [name]

    @staticmethod
    def register_flattened_array(token: str, sql: str, body: dict[str, Any]) -> list[str] | None:
        """Run `FLATTEN` over each bound JSON array as DuckDB's own UNNEST (see `flattened_array_statement`)."""
        name = f"widf_flat_{secrets.token_hex(8)}"
        if (rewritten := flattened_array_statement(sql, body.get("bindings"), f"temp.main.{name}")) is None:
            return None
        statement, bindings, arrays = rewritten
        duck = fakesnow_server.sessions[token]._duck_conn  # noqa: SLF001 - as `register_batch` does
        try:
            tables = [
                (
                    table,
                    pa.table({"VALUE": pa.array(array, pa.string())})
                    if isinstance(array, list)  # its elements, read already (PARSE_JSON's 'd')
                    else duck.sql("SELECT UNNEST(CAST(JSON($1) AS JSON[])) AS VALUE", params=[array]).to_arrow_table(),
                )
                for table, array in arrays
            ]
        except duckdb.Error:
            return None  # not an array after all, or not JSON: fakesnow answers with Snowflake's error
        for table, elements in tables:
            duck.register(table, elements)
        body["sqlText"], body["bindings"] = statement, bindings
        return [table for table, _ in tables]

    def answer_system_control(self, session: Session, sql: str, bindings: dict | None) -> tuple[list[str], list[tuple]] | None:
        """SHOW TRANSACTIONS, SYSTEM$ABORT_TRANSACTION and SYSTEM$CANCEL_ALL_QUERIES: a user sees, aborts and cancels
        only its own."""
        if m := _CANCEL_ALL_QUERIES.match(sql):
            return self.cancel_all_queries(session, int(m.group(1)))
        if _SHOW_TRANSACTIONS.match(sql):
            open_ones = [(t, s) for t, s in list(self.sessions.items()) if s.user is session.user and s.in_transaction]
            return ["id", "user", "session", "name", "started_on", "state", "scope"], [
                (s.transaction_id, s.user.name, s.session_id, f"txn_{s.transaction_id}", s.transaction_started, "running", 0)
                for _, s in open_ones
            ]
        if not (m := _ABORT_TRANSACTION.match(sql)):
            return None
        argument = m.group(1).strip()
        if argument == "?" and bindings:
            argument = str(from_binding(bindings["1"]))
        if not argument.isdigit():
            raise SnowflakeError(2, "SYSTEM$ABORT_TRANSACTION takes a transaction id (a number).", "22023")
        for token, other in list(self.sessions.items()):
            if other.in_transaction and other.transaction_id == int(argument):
                if other.user is not session.user and session.role != "ACCOUNTADMIN":
                    break
                self.abort(token, other)
                return ["SYSTEM$ABORT_TRANSACTION"], [(f"Transaction {argument} aborted.",)]
        raise SnowflakeError(3001, f"Transaction {argument} does not exist or not authorized.", "42501")

    def cancel_all_queries(self, session: Session, session_id: int) -> tuple[list[str], list[tuple]]:
        """What Snowpark sends as it closes a session. Nothing of the session's is running but this statement (when it
        is the same session), so nothing is cancelled: "0 cancelled.", in the answer's form ("1 cancelled.")."""
        target = next((s for s in list(self.sessions.values()) if s.session_id == session_id), None)
        if target is None or target.user is not session.user:
            # Another user's statements need OWNERSHIP of that user, or OPERATE on the warehouse: not modelled.
            raise unsupported(
                f"SELECT SYSTEM$CANCEL_ALL_QUERIES({session_id}) (a session of another user, or one the gateway does not know)"
            )
        if target.running - (target is session) > 0:
            raise unsupported(
                f"SELECT SYSTEM$CANCEL_ALL_QUERIES({session_id}) while a statement of that session runs: the gateway cannot stop one"
            )
        return [f"SYSTEM$CANCEL_ALL_QUERIES({session_id})"], [("0 cancelled.",)]  # the column, as the page shows it

    def abort(self, token: str, session: Session) -> None:
        """Roll back another session's transaction and free its locks (its client is gone)."""
        fake = fakesnow_server.sessions.get(token)
        if fake is not None:
            fake.cursor().execute("ROLLBACK")
        session.in_transaction = False
        self.stages.transaction_ended(session.session_id, committed=False)
        self.locks.release_all(token)
        log.warning("aborted transaction %s of session %s (%s)", session.transaction_id, session.session_id, session.user.name)

    def end_of_statement(self, token: str, session: Session, sql: str) -> None:
        word = m.group(1).upper() if (m := _FIRST_WORD.match(sql)) else ""
        if word in _TRANSACTION_ENDS or word in _DDL:  # DDL commits the open transaction in Snowflake
            session.in_transaction = False
            self.stages.transaction_ended(session.session_id, committed=word != "ROLLBACK")
        if not session.in_transaction:
            self.locks.release_all(token)

    @staticmethod
    def read_committed(fake: Any, sql: str, bindings: dict | None) -> list[tuple]:
        """Run a read in a connection of its own, in autocommit: it sees exactly what is committed.

        A plain read (plain_read_in_duckdb) runs on a DuckDB connection as it is; a fakesnow connection, with
        its rewrites, would cost the claim MERGE of every file a third of its time and change nothing."""
        params = [from_binding(bindings[str(i)]) for i in range(1, len(bindings) + 1)] if bindings else None
        if (plain := plain_read_in_duckdb(sql, fake.database, fake.schema)) is not None:
            reader = fakesnow_server.shared_fs.duck_conn.cursor()
            try:
                return [tuple(row) for row in reader.execute(plain, params).fetchall()]
            finally:
                reader.close()
        connection = fakesnow_server.shared_fs.connect(fake.database, fake.schema)
        try:
            cursor = connection.cursor()
            cursor.execute(sql, binding_params=params, server=True)
            return [tuple(row) for row in cursor.fetchall()]
        finally:
            connection.close()

    async def stats(self, request: Request) -> Response:
        """The gateway's counters, and how often each remembered statement's request was resent (by query id)."""
        resent = {a.query_id: a.resent for a in list(self.answers.values()) if a.resent}
        return JSONResponse(
            {
                "logins": self.login_count,
                "statements": self.statement_count,
                "refresher_passes": self.dynamic_tables.ticks,
                "resent": resent,
                **{name: read() for name, read in self.stack_stats.items()},
            }
        )

    async def fault_plan(self, request: Request) -> Response:
        """GET: the plan and the faults injected so far; PUT: a new plan (JSON), counts kept."""
        if request.method == "PUT":
            try:
                plan = FaultPlan.from_dict(await request.json())
            except (FaultPlanError, TypeError, ValueError) as e:
                return JSONResponse({"error": str(e)}, status_code=400)
            self.faults.apply(plan)
            log.warning("fault plan now %s", plan)
        return JSONResponse(self.faults.report())

    async def session_request(self, request: Request) -> Response:
        if request.query_params.get("delete"):
            token = (request.headers.get("Authorization") or "")[17:-1]
            self.client_versions.pop(token, None)
            if (closed := self.sessions.pop(token, None)) is not None:
                self.stages.transaction_ended(closed.session_id, committed=False)  # its open transaction is rolled back
                self.stages.session_ended(self.account, closed.session_id)
            for master in [m for m, t in self.master_tokens.items() if t == token]:
                del self.master_tokens[master]
            self.locks.release_all(token)  # a closed session's open transaction is rolled back
        return await fakesnow_server.session(request)

    def app(self) -> Starlette:
        routes = [
            Route("/session/v1/login-request", self.login, methods=["POST"]),
            Route("/queries/v1/query-request", self.query, methods=["POST"]),
            Route("/session", self.session_request, methods=["POST"]),
            Route("/session/token-request", self.token_request, methods=["POST"]),
            Route("/telemetry/send", self.telemetry, methods=["POST"]),
            Route("/local/stats", self.stats, methods=["GET"]),
            Route("/local/faults", self.fault_plan, methods=["GET", "PUT"]),
            *[r for r in fakesnow_server.routes if r.path not in ("/session/v1/login-request", "/queries/v1/query-request", "/session")],
        ]
        return Starlette(routes=routes)


def rows_as_select(columns: list[str], rows: list[tuple]) -> str:
    """A SELECT that yields exactly these rows, so fakesnow encodes the result set."""

    def literal(value: Any) -> exp.Expr:
        if value is None:
            return exp.cast(exp.null(), "VARCHAR")
        if isinstance(value, bool | int | float):
            return exp.Literal.number(value)
        if isinstance(value, datetime):
            return exp.cast(exp.Literal.string(value.isoformat()), "TIMESTAMP_LTZ")
        return exp.Literal.string(str(value))

    def select(row: tuple) -> exp.Select:
        return exp.select(*[exp.alias_(literal(v), c, quoted=True) for v, c in zip(row, columns, strict=True)])

    if not rows:
        return select((None,) * len(columns)).where(exp.false()).sql(dialect="snowflake")
    query: exp.Query = select(rows[0])
    for row in rows[1:]:
        query = exp.union(query, select(row), distinct=False)
    return query.sql(dialect="snowflake")


def put_answer(data: dict[str, Any]) -> JSONResponse:
    """A PUT's answer: no rows, but where and how the connector copies the files itself (its `stageInfo`)."""
    return JSONResponse(
        {"data": {**data, "queryId": str(uuid.uuid4()), "sqlState": "00000"}, "code": None, "message": None, "success": True}
    )


async def read_json(request: Request) -> dict[str, Any]:
    body = await request.body()
    if request.headers.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    return json.loads(body)


def typed_session_parameters(parameters: dict[str, Any] | None) -> dict[str, Any]:
    """Connector 5.x sends every session parameter as a string ("AUTOCOMMIT": "false"); 4.x sends JSON types.

    Snowflake reads both; fakesnow and the gateway need AUTOCOMMIT as a boolean (bool("false") is True).
    """
    typed = dict(parameters or {})
    if isinstance(value := typed.get("AUTOCOMMIT"), str):
        if value.strip().lower() not in ("true", "false"):
            raise SnowflakeError(2, f"Invalid value [{value}] for parameter 'AUTOCOMMIT'", "22023")
        typed["AUTOCOMMIT"] = value.strip().lower() == "true"
    return typed


def without_empty_query_params(request: Request) -> Request:
    query = "&".join(f"{quote(k)}={quote(v)}" for k, v in request.query_params.multi_items() if v)
    return Request({**request.scope, "query_string": query.encode()}, request.receive)


def with_json_body(request: Request, body: dict[str, Any]) -> Request:
    raw = json.dumps(body).encode()
    headers = [(k, v) for k, v in request.scope["headers"] if k.lower() not in (b"content-encoding", b"content-length")]

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": raw, "more_body": False}

    return Request({**request.scope, "headers": headers}, receive)


def unavailable() -> Response:
    return Response("Service Unavailable", status_code=503, media_type="text/plain")


def failure(error: SnowflakeError, status_code: int = 200, *, data: bool = True) -> JSONResponse:
    """Snowflake's error envelope. `code` is a string: 5.x rejects an integer ("expected a string")."""
    code = f"{error.code:06d}"
    return JSONResponse(
        {
            "data": {"errorCode": code, "sqlState": error.sqlstate} if data else None,
            "code": code,
            "message": error.message,
            "success": False,
        },
        status_code=status_code,
    )
