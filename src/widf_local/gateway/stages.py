"""Internal stages: the user stage `@~`, table stages `@%t` and named stages, with PUT, LIST, REMOVE,
COPY INTO <table> from staged JSON and Parquet, and INFER_SCHEMA of staged Parquet files.

Storage: every stage is a directory under the stack's state directory (`<state>/stages`):
`user/<user>/`, `table/<db>/<schema>/<table>/`, `named/<db>/<schema>/<stage>/` (each name percent-encoded),
and a staged file is a plain file there, at its path in the stage. PUT is answered the way Snowflake answers a
connector for a `LOCAL_FS` stage: the connector compresses the file itself (AUTO_COMPRESS) and copies it into
the directory the answer names. COPY and INFER_SCHEMA read staged files through `StageStore.files(location)`,
each a `StagedFile` with its path and md5.

Privileges (Snowflake's "Access control privileges", stage privileges): a named stage belongs to the role that
created it (CREATE STAGE on its schema, with USAGE on its database and schema); LIST and COPY from it need READ,
PUT and REMOVE need WRITE, DROP needs OWNERSHIP (the administrative roles may do everything). A table stage
is the table owner's; the user stage is its user's alone.
"""

from __future__ import annotations

import decimal
import functools
import glob
import gzip
import hashlib
import json
import mimetypes
import os
import re
import secrets
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from widf_local.gateway import grants
from widf_local.gateway.accounts import Account, Rows, Session, status
from widf_local.gateway.binding import without_comments
from widf_local.gateway.errors import SnowflakeError, does_not_exist, insufficient_privileges, unsupported
from widf_local.gateway.grants import ADMIN_ROLES, Securable, relation
from widf_local.gateway.names import NAME, like, normalise, parts, qualified, unquote_literal, written
from widf_local.gateway.stage_uploads import StageUploads

_N = NAME.pattern
_STRING = r"'(?:[^'\\]|''|\\.)*'"
# @~, @%table, @[db.][schema.]stage, each with an optional /path; quoted as a whole or not.
_LOCATION = rf"(?P<location>'@[^']*'|@(?:~|%?{_N})(?:/[^\s;()']*)?)"
_VALUE = rf"(?:\((?:[^()']|{_STRING})*\)|{_STRING}|[^\s,()=;]+)"
_OPTION = re.compile(rf"\s*(?P<key>[A-Za-z_]+)\s*=\s*(?P<value>{_VALUE})\s*,?", re.S)

_CREATE = re.compile(
    rf"^\s*CREATE\s+(?P<replace>OR\s+REPLACE\s+)?(?P<temporary>TEMP(?:ORARY)?\s+)?STAGE\s+(?P<ifnot>IF\s+NOT\s+EXISTS\s+)?"
    rf"(?P<name>{_N})(?P<options>.*?)\s*;?\s*$",
    re.I | re.S,
)
_CREATE_FORMAT = re.compile(
    rf"^\s*CREATE\s+(?P<replace>OR\s+REPLACE\s+)?(?:TEMP(?:ORARY)?\s+)?FILE\s+FORMAT\s+(?P<ifnot>IF\s+NOT\s+EXISTS\s+)?"
    rf"(?P<name>{_N})(?P<options>.*?)\s*;?\s*$",
    re.I | re.S,
)
_DROP_FORMAT = re.compile(rf"^\s*DROP\s+FILE\s+FORMAT\s+(?P<ifexists>IF\s+EXISTS\s+)?(?P<name>{_N})\s*;?\s*$", re.I)
_DROP = re.compile(rf"^\s*DROP\s+STAGE\s+(?P<ifexists>IF\s+EXISTS\s+)?(?P<name>{_N})\s*;?\s*$", re.I)
_SHOW = re.compile(
    rf"^\s*SHOW\s+STAGES(?:\s+LIKE\s+(?P<like>{_STRING}))?(?:\s+IN\s+(?:SCHEMA\s+|DATABASE\s+)?(?P<in>{_N}))?\s*;?\s*$", re.I
)
_DESC = re.compile(rf"^\s*DESC(?:RIBE)?\s+STAGE\s+(?P<name>{_N})\s*;?\s*$", re.I)
_PUT = re.compile(rf"^\s*PUT\s+(?P<source>'file://[^']*'|file://\S+)\s+{_LOCATION}(?P<options>.*?)\s*;?\s*$", re.I | re.S)
_LIST = re.compile(rf"^\s*(?:LIST|LS)\s+{_LOCATION}(?P<options>.*?)\s*;?\s*$", re.I | re.S)
_REMOVE = re.compile(rf"^\s*(?:REMOVE|RM)\s+{_LOCATION}(?P<options>.*?)\s*;?\s*$", re.I | re.S)
_COPY_HEAD = re.compile(rf"^\s*COPY\s+INTO\s+(?P<table>{_N})(?:\s*\((?P<columns>[^)]*)\))?\s+FROM\s+", re.I | re.S)
_MENTIONS_STAGE = re.compile(
    r"^\s*(?:CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMP(?:ORARY)?\s+)?(?:STAGE|FILE\s+FORMAT)|DROP\s+(?:STAGE|FILE\s+FORMAT)|ALTER\s+STAGE|SHOW\s+STAGES|DESC(?:RIBE)?\s+STAGE|GET|PUT|LIST|LS|REMOVE|RM)\b",
    re.I,
)
_PARAMETER = re.compile(rf"{_STRING}|\$(?P<n>\d+)\b", re.S)
_STAGE_IN_QUERY = re.compile(rf"{_STRING}|(?P<stage>@(?:~|%?{_N})(?:/[^\s;()']*)?)(?P<args>\s*\((?:[^()']|{_STRING})*\))?", re.S)

_INFER_SCHEMA = re.compile(
    rf"\bTABLE\s*\(\s*INFER_SCHEMA\s*\((?P<arguments>(?:[^()']|{_STRING}|\((?:[^()']|{_STRING})*\))*)\)\s*\)", re.I | re.S
)
_ARGUMENT = re.compile(rf"\s*(?P<key>[A-Za-z_]+)\s*=>\s*(?P<value>{_VALUE})\s*,?", re.S)
INFER_SCHEMA_ARGUMENTS = {"LOCATION", "FILE_FORMAT", "FILES", "IGNORE_CASE", "MAX_FILE_COUNT", "MAX_RECORDS_PER_FILE"}
INFER_SCHEMA_COLUMNS = ["COLUMN_NAME", "TYPE", "NULLABLE", "EXPRESSION", "FILENAMES", "ORDER_ID"]

_QUOTED_STAGE = re.compile(r"(?P<from>\bFROM\s+)'(?P<stage>@(?:[^'\\]|\\.)*)'", re.I | re.S)

COLUMN = "WIDF_STAGED_COLUMN_"  # $n of a staged file, as the registered source names it
METADATA_COLUMNS = ("METADATA$FILENAME", "METADATA$FILE_ROW_NUMBER", "METADATA$FILE_CONTENT_KEY", "METADATA$FILE_LAST_MODIFIED")
PUT_OPTIONS = {"PARALLEL", "AUTO_COMPRESS", "SOURCE_COMPRESSION", "OVERWRITE"}
COPY_OPTIONS = {"FILE_FORMAT", "FILES", "PATTERN", "ON_ERROR", "FORCE", "PURGE", "MATCH_BY_COLUMN_NAME"}
# JSON's, and PARQUET's as the connector's write_pandas sends them (BINARY_AS_TEXT, USE_LOGICAL_TYPE and
# USE_VECTORIZED_SCANNER are read and change nothing here: rows are read by pyarrow, whose types they already are).
FORMAT_OPTIONS = {"TYPE", "COMPRESSION", "STRIP_OUTER_ARRAY", "BINARY_AS_TEXT", "USE_LOGICAL_TYPE", "USE_VECTORIZED_SCANNER"}
LOADED_TYPES = ("JSON", "PARQUET")
LIST_COLUMNS = ["name", "size", "md5", "last_modified"]
PUT_COLUMNS = ["source", "target", "source_size", "target_size", "source_compression", "target_compression", "status", "message"]
COPY_COLUMNS = [
    "file",
    "status",
    "rows_parsed",
    "rows_loaded",
    "error_limit",
    "errors_seen",
    "first_error",
    "first_error_line",
    "first_error_character",
    "first_error_column_name",
]


def is_stage_statement(sql: str) -> bool:
    """A statement this module answers: stage DDL, PUT/GET/LIST/REMOVE, and COPY INTO <table> FROM a stage
    (COPY INTO a location is the unload, which is refused here too)."""
    if _MENTIONS_STAGE.match(sql) or _INFER_SCHEMA.search(sql):
        return True
    return bool(re.match(r"^\s*COPY\s+INTO\b", sql, re.I))


def is_copy(sql: str) -> bool:
    return bool(re.match(r"^\s*COPY\s+INTO\b", sql, re.I))


def options(text: str, allowed: set[str], statement: str) -> dict[str, str]:
    """`KEY = value ...` as a dict of upper-case keys; an option the gateway does not implement fails loudly."""
    found: dict[str, str] = {}
    position, text = 0, text.strip().rstrip(";")
    while position < len(text):
        m = _OPTION.match(text, position)
        if not m or m.end() == position:
            raise unsupported(f"{statement} ... {text[position:]}")
        key = m["key"].upper()
        if key not in allowed:
            raise unsupported(f"{statement} ... {key}")
        found[key] = m["value"]
        position = m.end()
    return found


def boolean(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    text = unquote_literal(value).upper()
    if text not in ("TRUE", "FALSE"):
        raise SnowflakeError(2, f"SQL compilation error:\ninvalid value [{value}] for a boolean option", "22023")
    return text == "TRUE"


def file_format(value: str | None, statement: str, named: Callable[[str], dict[str, str]] | None = None) -> dict[str, str]:
    """`FILE_FORMAT = (TYPE = JSON ...)`, or a named file format (`= name`, `= (FORMAT_NAME = 'name')`) as `named`
    resolves it."""
    if value is None:
        return {}
    inner = value.strip()
    if not (inner.startswith("(") and inner.endswith(")")):
        if named is None:
            raise unsupported(f"{statement} ... FILE_FORMAT = {value}")
        return named(unquote_literal(inner))
    found = options(inner[1:-1], FORMAT_OPTIONS | {"FORMAT_NAME"}, f"{statement} FILE_FORMAT")
    if "FORMAT_NAME" in found:
        if named is None or len(found) > 1:
            raise unsupported(f"{statement} FILE_FORMAT = (FORMAT_NAME = ...)")
        return named(unquote_literal(found["FORMAT_NAME"]))
    return format_options(found)


def format_options(found: dict[str, str]) -> dict[str, str]:
    return {k: unquote_literal(v).upper() if k != "STRIP_OUTER_ARRAY" else v for k, v in found.items()}


def string_list(value: str) -> list[str]:
    inner = value.strip()
    if inner.startswith("(") and inner.endswith(")"):
        inner = inner[1:-1]
    return [unquote_literal(v) for v in re.findall(_STRING, inner)]


@dataclass
class NamedStage:
    key: str  # DB.SCHEMA.NAME
    owner: str
    temporary: bool
    session_id: int | None
    file_format: dict[str, str]
    created_on: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True)
class Location:
    """A stage and a path in it, as `@...` names them."""

    kind: str  # USER | TABLE | NAMED
    key: str  # the user's name, or DB.SCHEMA.TABLE / DB.SCHEMA.STAGE
    directory: Path
    path: str  # within the stage, no leading slash; "" for its root
    prefix: str  # what LIST writes before a file's path: "" or "stage/"


@dataclass(frozen=True)
class StagedFile:
    path: str  # within the stage
    file: Path
    size: int
    md5: str
    last_modified: datetime


@dataclass
class FileLoad:
    """One file's COPY: its records (as JSON text) and what went wrong."""

    @property
    def loaded(self) -> int:
        return self.parsed - self.errors if self.native else len(self.records)

    staged: StagedFile
    name: str
    records: list[str] = field(default_factory=list)
    native: bool = False  # read by the engine itself (see native_ndjson_loads): `records` stays empty
    parsed: int = 0
    errors: int = 0
    first_error: str | None = None
    first_error_line: int | None = None
    first_error_character: int | None = None


class StageStore:
    def __init__(self, root: Path):
        self.root = root
        if root.exists():
            shutil.rmtree(root)  # the stack's data lives in memory: files staged by an earlier stack are gone with it
        root.mkdir(parents=True)
        self.named: dict[str, NamedStage] = {}
        self.formats: dict[str, dict[str, str]] = {}  # named file formats, DB.SCHEMA.NAME -> their options
        # Load metadata: per table, the (stage, path, md5) of every file loaded into it.
        self.loaded: dict[str, set[tuple[str, str, str]]] = {}
        # What a session's open transaction loaded: load metadata once it commits, nothing if it rolls back.
        self.pending: dict[int | None, dict[str, set[tuple[str, str, str]]]] = {}
        self.lock = threading.RLock()
        # Where connector 5.x's PUT uploads (it cannot write a local stage): moved in before the stage is read.
        self.uploads: StageUploads | None = None

    def names(self) -> set[str]:
        return set(self.named)

    def format_names(self) -> set[str]:
        return set(self.formats)

    # -- named file formats ----------------------------------------------------------

    def create_format(self, account: Account, session: Session, sql: str, database: str | None, schema: str | None) -> Rows:
        """CREATE FILE FORMAT: CREATE FILE FORMAT on the schema; the creating role owns it."""
        m = _CREATE_FORMAT.match(sql)
        if not m:
            raise unsupported(sql)
        found = format_options(options(m["options"], FORMAT_OPTIONS | {"COMMENT"}, "CREATE FILE FORMAT"))
        found.pop("COMMENT", None)
        key = self.resolved(m["name"], database, schema)
        db, sch, name = key.split(".")
        grants.authorize(
            account.privileges,
            account.access(session),
            [
                grants.Need(("USAGE",), Securable("DATABASE", db), visible_refusal=False),
                grants.Need(("USAGE",), Securable("SCHEMA", f"{db}.{sch}"), visible_refusal=False),
                grants.Need(("CREATE FILE FORMAT",), Securable("SCHEMA", f"{db}.{sch}"), primary_only=True),
            ],
        )
        with self.lock:
            if key in self.formats and not m["replace"]:
                if m["ifnot"]:
                    return status(f"{name} already exists, statement succeeded.")
                raise SnowflakeError(2002, f"SQL compilation error:\nObject '{name}' already exists.", "42710")
            self.formats[key] = found
            account.privileges.created(Securable("FILE FORMAT", key), session.role)
        return status(f"File format {name} successfully created.")

    def drop_format(self, account: Account, session: Session, sql: str, database: str | None, schema: str | None) -> Rows:
        m = _DROP_FORMAT.match(sql)
        assert m
        key = self.resolved(m["name"], database, schema)
        on, roles = Securable("FILE FORMAT", key), account.active_roles(session)
        with self.lock:
            if key not in self.formats or not (roles & ADMIN_ROLES or account.privileges.sees(roles, on)):
                if m["ifexists"]:
                    return status(f"Drop statement executed successfully ({on.short_name} already dropped).")
                raise does_not_exist(key, "File format")
            if not (roles & ADMIN_ROLES or account.privileges.owner_of(on) in roles):
                raise insufficient_privileges("file format", on.short_name)
            del self.formats[key]
            account.privileges.forget(on)
        return status(f"{on.short_name} successfully dropped.")

    def named_format(self, account: Account, session: Session, database: str | None, schema: str | None) -> Callable[[str], dict[str, str]]:
        """A named file format's options, for a role with USAGE on it (Snowflake: "File format 'X' does not exist or
        not authorized." otherwise)."""

        def options_of(name: str) -> dict[str, str]:
            key = self.resolved(name, database, schema)
            roles = account.active_roles(session)
            on = Securable("FILE FORMAT", key)
            if key not in self.formats or not (roles & ADMIN_ROLES or account.privileges.has(roles, "USAGE", on)):
                raise does_not_exist(key, "File format")
            return dict(self.formats[key])

        return options_of

    # -- locations ---------------------------------------------------------------

    def location(self, text: str, session: Session, database: str | None, schema: str | None) -> Location:
        text = unquote_literal(text.strip()) if text.strip().startswith("'") else text.strip()
        body = text[1:]
        if body.startswith("~"):
            user = session.user.name
            return Location("USER", user, self.root / "user" / quote(user, safe=""), body[1:].strip("/"), "")
        m = re.match(rf"(?P<table>%)?(?P<name>{_N})(?P<path>/.*)?$", body, re.S)
        if not m:
            raise SnowflakeError(2, f"SQL compilation error:\ninvalid stage location '{text}'", "42601")
        path = (m["path"] or "").strip("/")
        if m["table"]:
            key = self.resolved(m["name"], database, schema)
            return Location("TABLE", key, self.directory("table", key), path, "")
        key = self.resolved(m["name"], database, schema)
        return Location("NAMED", key, self.directory("named", key), path, key.rsplit(".", 1)[-1].lower() + "/")

    @staticmethod
    def resolved(name: str, database: str | None, schema: str | None) -> str:
        key = qualified(name, database, schema)
        if key.count(".") != 2:
            raise SnowflakeError(
                90105,
                "Cannot perform operation. This session does not have a current database. Call 'USE DATABASE', or use a qualified name.",
                "22000",
            )
        return key

    def directory(self, kind: str, key: str) -> Path:
        return self.root.joinpath(kind, *(quote(p, safe="") for p in key.split(".")))

    def files(self, location: Location, pattern: str | None = None, named: str | None = None) -> list[StagedFile]:
        """The files under a location's path (a file named by it, or everything in the folder it names); with
        `named`, a `FILES = ('a', ...)` list relative to that path, only those (read before any file is)."""
        found = []
        base = location.directory
        if self.uploads is not None:
            self.uploads.collect(base)
        if not base.is_dir():
            return []
        regex = re.compile(pattern, re.S) if pattern else None
        wanted = {f"{location.path}/{n}".strip("/") if location.path else n for n in string_list(named)} if named is not None else None
        for file in sorted(p for p in base.rglob("*") if p.is_file()):
            path = file.relative_to(base).as_posix()
            if location.path and not (path == location.path or path.startswith(location.path.rstrip("/") + "/")):
                continue
            if (regex and not regex.fullmatch(location.prefix + path)) or (wanted is not None and path not in wanted):
                continue
            data = file.read_bytes()
            stat = file.stat()
            found.append(StagedFile(path, file, stat.st_size, hashlib.md5(data).hexdigest(), datetime.fromtimestamp(stat.st_mtime, UTC)))
        return found

    # -- privileges ----------------------------------------------------------------

    def authorize(self, account: Account, session: Session, location: Location, privilege: str) -> None:
        """READ or WRITE on a named stage, ownership of a table for its stage; the user stage is its user's."""
        access = account.access(session)
        roles = access.active
        if location.kind == "USER":
            return
        if location.kind == "TABLE":
            grants.authorize(account.privileges, access, grants._with_containers(("OWNERSHIP",), location.key))  # noqa: SLF001 - the same needs a table's DML has
            if account.catalog.exists(relation(location.key)):
                return
            raise does_not_exist(location.key)
        stage = self.named.get(location.key)
        on = Securable("STAGE", location.key)
        database, schema = location.key.split(".")[:2]
        for container in (Securable("DATABASE", database), Securable("SCHEMA", f"{database}.{schema}")):
            grants.authorize(account.privileges, access, [grants.Need(("USAGE",), container, visible_refusal=False)])
        if stage is None:
            raise does_not_exist(location.key, "Stage")
        if roles & ADMIN_ROLES:
            return
        wanted = ("READ", "WRITE") if privilege == "READ" else ("WRITE",)
        if any(account.privileges.has(roles, p, on) for p in wanted):
            return
        if account.privileges.sees(roles, on):
            raise insufficient_privileges("stage", on.short_name)
        raise does_not_exist(location.key, "Stage")

    # -- statements ------------------------------------------------------------------

    def create(self, account: Account, session: Session, sql: str, database: str | None, schema: str | None) -> Rows:
        m = _CREATE.match(sql)
        if not m:
            raise unsupported(sql)
        found = options(m["options"], {"FILE_FORMAT", "COMMENT"}, "CREATE STAGE")
        key = self.resolved(m["name"], database, schema)
        db, sch, name = key.split(".")
        access = account.access(session)
        grants.authorize(
            account.privileges,
            access,
            [
                grants.Need(("USAGE",), Securable("DATABASE", db), visible_refusal=False),
                grants.Need(("USAGE",), Securable("SCHEMA", f"{db}.{sch}"), visible_refusal=False),
                grants.Need(("CREATE STAGE",), Securable("SCHEMA", f"{db}.{sch}"), primary_only=True),
            ],
        )
        if not account.catalog.exists(Securable("SCHEMA", f"{db}.{sch}")):
            raise does_not_exist(f"{db}.{sch}", "Schema")
        with self.lock:
            if key in self.named:
                if m["ifnot"]:
                    return status(f"{name} already exists, statement succeeded.")
                if not m["replace"]:
                    raise SnowflakeError(2002, f"SQL compilation error:\nObject '{name}' already exists.", "42710")
                self.drop_files(key)
            self.named[key] = NamedStage(
                key,
                session.role,
                bool(m["temporary"]),
                session.session_id if m["temporary"] else None,
                file_format(found.get("FILE_FORMAT"), "CREATE STAGE", self.named_format(account, session, database, schema)),
            )
            account.privileges.created(Securable("STAGE", key), session.role)
        return status(f"Stage area {name} successfully created.")

    def drop(self, account: Account, session: Session, sql: str, database: str | None, schema: str | None) -> Rows:
        m = _DROP.match(sql)
        assert m
        key = self.resolved(m["name"], database, schema)
        name = key.rsplit(".", 1)[-1]
        on = Securable("STAGE", key)
        roles = account.active_roles(session)
        with self.lock:
            if key not in self.named or not (roles & ADMIN_ROLES or account.privileges.sees(roles, on)):
                if m["ifexists"]:
                    return status(f"Drop statement executed successfully ({name} already dropped).")
                raise does_not_exist(key, "Stage")
            if not (roles & ADMIN_ROLES or account.privileges.owner_of(on) in roles):
                raise insufficient_privileges("stage", name)
            self.forget(account, key)
        return status(f"{name} successfully dropped.")

    def forget(self, account: Account, key: str) -> None:
        self.named.pop(key, None)
        self.drop_files(key)
        account.privileges.forget(Securable("STAGE", key))

    def drop_files(self, key: str) -> None:
        shutil.rmtree(self.directory("named", key), ignore_errors=True)

    def transaction_ended(self, session_id: int | None, *, committed: bool) -> None:
        with self.lock:
            for table, entries in self.pending.pop(session_id, {}).items():
                if committed:
                    self.loaded.setdefault(table, set()).update(entries)

    def session_ended(self, account: Account, session_id: int | None) -> None:
        """A temporary stage lives as long as the session that created it."""
        with self.lock:
            for key in [k for k, s in self.named.items() if s.temporary and s.session_id == session_id]:
                self.forget(account, key)

    def show(self, account: Account, session: Session, sql: str, database: str | None, schema: str | None) -> Rows:
        m = _SHOW.match(sql)
        if not m:
            raise unsupported(sql)
        roles = account.active_roles(session)
        pattern = like(m["like"])
        scope = parts(m["in"]) if m["in"] else [p for p in (database, schema) if p]
        rows = []
        for key, stage in sorted(self.named.items()):
            db, sch, name = key.split(".")
            if scope and [db, sch][: len(scope)] != scope:
                continue
            if pattern and not pattern.fullmatch(name):
                continue
            if not account.privileges.visible(roles, Securable("STAGE", key)):
                continue
            owner = account.privileges.owner_of(Securable("STAGE", key)) or stage.owner
            kind = "INTERNAL TEMPORARY" if stage.temporary else "INTERNAL"
            rows.append((stage.created_on, name, db, sch, None, "N", "N", None, owner, None, None, kind, None, None, "ROLE", "N"))
        columns = [
            "created_on",
            "name",
            "database_name",
            "schema_name",
            "url",
            "has_credentials",
            "has_encryption_key",
            "comment",
            "owner",
            "region",
            "cloud",
            "type",
            "storage_integration",
            "endpoint",
            "owner_role_type",
            "directory_enabled",
        ]
        return columns, rows

    def describe(self, account: Account, session: Session, sql: str, database: str | None, schema: str | None) -> Rows:
        m = _DESC.match(sql)
        assert m
        location = self.location("@" + m["name"], session, database, schema)
        self.authorize(account, session, location, "READ")
        stage = self.named[location.key]
        fmt = stage.file_format
        rows = [
            ("STAGE_FILE_FORMAT", "TYPE", "String", fmt.get("TYPE", "CSV"), "CSV"),
            ("STAGE_FILE_FORMAT", "COMPRESSION", "String", fmt.get("COMPRESSION", "AUTO"), "AUTO"),
            ("STAGE_FILE_FORMAT", "STRIP_OUTER_ARRAY", "Boolean", str(boolean(fmt.get("STRIP_OUTER_ARRAY"), False)).lower(), "false"),
        ]
        return ["parent_property", "property", "property_type", "property_value", "property_default"], rows

    def put(self, account: Account, session: Session, sql: str, database: str | None, schema: str | None) -> dict[str, Any] | Rows:
        """What Snowflake answers a connector's PUT with (`data` of the query response), for a LOCAL_FS stage; PUT's
        own rows when OVERWRITE = FALSE leaves nothing to upload (every target exists: each SKIPPED)."""
        m = _PUT.match(sql)
        if not m:
            raise unsupported(sql)
        found = options(m["options"], PUT_OPTIONS, "PUT")
        source = unquote_literal(m["source"]) if m["source"].startswith("'") else m["source"]
        source = source[len("file://") :]
        location = self.location(m["location"], session, database, schema)
        self.authorize(account, session, location, "WRITE")
        if self.uploads is not None:
            self.uploads.collect(location.directory)  # what OVERWRITE = FALSE must not replace includes earlier uploads
        target = location.directory.joinpath(*location.path.split("/")) if location.path else location.directory
        target.mkdir(parents=True, exist_ok=True)
        compression = unquote_literal(found.get("SOURCE_COMPRESSION", "AUTO_DETECT")).upper()
        if compression not in ("AUTO_DETECT", "GZIP", "NONE"):
            raise unsupported(f"PUT ... SOURCE_COMPRESSION = {compression}")
        parallel = int(unquote_literal(found.get("PARALLEL", "4")))
        if not 1 <= parallel <= 99:
            raise SnowflakeError(2, f"SQL compilation error:\ninvalid value [{parallel}] for parameter 'PARALLEL'", "22023")
        auto_compress, overwrite = boolean(found.get("AUTO_COMPRESS"), True), boolean(found.get("OVERWRITE"), False)
        sources = [source]
        if not overwrite:
            # With LOCAL_FS the connector never asks whether a target exists (its check reads a relative path), so
            # the gateway leaves out what OVERWRITE = FALSE must not replace, as Snowflake skips it.
            expanded = sorted(glob.glob(os.path.expanduser(source)))
            targets = {s: put_target(s, auto_compress, compression) for s in expanded}
            kept = [s for s in expanded if not (target / targets[s][0]).exists()]
            if expanded and not kept:
                return PUT_COLUMNS, [
                    (os.path.basename(s), t, os.path.getsize(s), 0, sc, tc, "SKIPPED", "") for s, (t, sc, tc) in targets.items()
                ]
            sources = kept if len(kept) < len(expanded) else sources
        return {
            "command": "UPLOAD",
            "src_locations": sources,
            "parallel": parallel,
            "autoCompress": auto_compress,
            "sourceCompression": compression.lower(),
            "overwrite": overwrite,
            "encryptionMaterial": None,
            "stageInfo": {
                "locationType": "LOCAL_FS",
                "location": str(target),
                "path": location.path,
                "region": None,
                "storageAccount": None,
                "isClientSideEncrypted": False,
                "creds": {},
                "endPoint": None,
                "useS3RegionalUrl": False,
            },
            "rowtype": [],
            "rowset": [],
        }

    def matched(
        self,
        statement: re.Pattern,
        verb: str,
        privilege: str,
        account: Account,
        session: Session,
        sql: str,
        database: str | None,
        schema: str | None,
    ) -> tuple[Location, list[StagedFile]]:
        """LIST's and REMOVE's `@location [PATTERN = '...']`: the location, once its privilege is checked, and its files."""
        m = statement.match(sql)
        if not m:
            raise unsupported(sql)
        found = options(m["options"], {"PATTERN"}, verb)
        location = self.location(m["location"], session, database, schema)
        self.authorize(account, session, location, privilege)
        return location, self.files(location, unquote_literal(found["PATTERN"]) if "PATTERN" in found else None)

    def list(self, account: Account, session: Session, sql: str, database: str | None, schema: str | None) -> Rows:
        location, files = self.matched(_LIST, "LIST", "READ", account, session, sql, database, schema)
        return LIST_COLUMNS, [(location.prefix + f.path, f.size, f.md5, format_datetime(f.last_modified, usegmt=True)) for f in files]

    def remove(self, account: Account, session: Session, sql: str, database: str | None, schema: str | None) -> Rows:
        location, files = self.matched(_REMOVE, "REMOVE", "WRITE", account, session, sql, database, schema)
        rows = []
        for staged in files:
            staged.file.unlink(missing_ok=True)
            rows.append((location.prefix + staged.path, "removed"))
        return ["name", "result"], rows

    # -- COPY INTO <table> ---------------------------------------------------------------

    def copy(self, account: Account, session: Session, fake: Any, sql: str) -> Rows:
        database, schema = fake.database, fake.schema
        head = _COPY_HEAD.match(sql)
        if not head:
            raise unsupported(sql)
        rest = sql[head.end() :]
        query = None
        if rest.lstrip().startswith("("):
            query, rest = balanced(rest.lstrip())
            # `FROM '@stage'`, a stage named by a string, as write_pandas writes it: the same as `FROM @stage`.
            query = _QUOTED_STAGE.sub(lambda q: q["from"] + q["stage"].replace("\\'", "'"), query)
            stages = [s for s in _STAGE_IN_QUERY.finditer(query) if s["stage"]]
            if len(stages) != 1:
                raise unsupported(sql)
            source_text = stages[0]["stage"]
        else:
            source = re.match(rf"\s*{_LOCATION}", rest, re.S)
            if not source:
                raise unsupported(sql)  # an external location (s3://...) or COPY INTO a location
            source_text, rest = source["location"], rest[source.end() :]
        found = options(rest, COPY_OPTIONS, "COPY INTO")
        table = StageStore.resolved(head["table"], database, schema)
        location = self.location(source_text, session, database, schema)
        access = account.access(session)
        grants.authorize(account.privileges, access, grants._with_containers(("INSERT",), table))  # noqa: SLF001 - a table's INSERT needs
        if not account.catalog.exists(relation(table)):
            raise does_not_exist(table)
        self.authorize(account, session, location, "READ")
        stage = self.named.get(location.key) if location.kind == "NAMED" else None
        fmt = {
            **(stage.file_format if stage else {}),
            **file_format(found.get("FILE_FORMAT"), "COPY INTO", self.named_format(account, session, database, schema)),
        }
        kind = fmt.get("TYPE", "CSV")
        if kind not in LOADED_TYPES:
            raise unsupported(f"COPY INTO ... FILE_FORMAT = (TYPE = {kind}): the local gateway loads JSON and PARQUET only")
        strip = boolean(fmt.get("STRIP_OUTER_ARRAY"), False)
        compression = fmt.get("COMPRESSION", "AUTO")
        if compression not in (("AUTO", "GZIP", "NONE") if kind == "JSON" else ("AUTO", "SNAPPY", "NONE")):
            raise unsupported(f"COPY INTO ... COMPRESSION = {compression}")
        match = unquote_literal(found.get("MATCH_BY_COLUMN_NAME", "NONE")).upper()
        if match not in ("NONE", "CASE_SENSITIVE", "CASE_INSENSITIVE"):
            raise SnowflakeError(2, f"SQL compilation error:\ninvalid value [{match}] for parameter 'MATCH_BY_COLUMN_NAME'", "22023")
        if match != "NONE" and (query is not None or head["columns"]):
            raise SnowflakeError(
                2, "SQL compilation error:\nMATCH_BY_COLUMN_NAME cannot be used with a column list or a transformation (a SELECT).", "0A000"
            )
        on_error = unquote_literal(found.get("ON_ERROR", "ABORT_STATEMENT")).upper()
        if on_error not in ("ABORT_STATEMENT", "CONTINUE", "SKIP_FILE"):
            raise unsupported(f"COPY INTO ... ON_ERROR = {on_error}")
        force, purge = boolean(found.get("FORCE"), False), boolean(found.get("PURGE"), False)
        pattern = unquote_literal(found["PATTERN"]) if "PATTERN" in found else None
        candidates = self.files(location, named=found.get("FILES"))
        if pattern:
            regex = re.compile(pattern, re.S)
            base = location.path.rstrip("/") + "/" if location.path else ""
            candidates = [f for f in candidates if regex.fullmatch(f.path[len(base) :] if f.path.startswith(base) else f.path)]
        stage_id = f"{location.kind}:{location.key}"
        with self.lock:
            # Load metadata lives with the transaction: recorded at its commit, kept from its rollback.
            pending = self.pending.setdefault(session.session_id, {}).setdefault(table, set()) if session.in_transaction else None
            done = pending if pending is not None else self.loaded.setdefault(table, set())
            if not force:
                seen = self.loaded.get(table, set()) | (pending or set())
                candidates = [f for f in candidates if (stage_id, f.path, f.md5) not in seen]
            if not candidates:
                return ["status"], [("Copy executed with 0 files processed.",)]
            loads = None
            if kind == "JSON" and not strip and match == "NONE" and "METADATA$FILE_ROW_NUMBER" not in (query or "").upper():
                loads = native_ndjson_loads(fake._duck_conn, candidates, location.prefix, compression)  # noqa: SLF001 - as insert's
            if loads is None:
                read = read_parquet_records if kind == "PARQUET" else functools.partial(read_records, strip=strip, compression=compression)
                loads = [read(f, location.prefix + f.path) for f in candidates]
            if on_error == "ABORT_STATEMENT" and (bad := next((load for load in loads if load.errors), None)):
                raise SnowflakeError(
                    100069,
                    f"{bad.first_error}\n  File '{bad.name}', line {bad.first_error_line}, character {bad.first_error_character}\n"
                    "  If you would like to continue loading when an error is encountered, use other values such as 'SKIP_FILE' "
                    "or 'CONTINUE' for the ON_ERROR option. For more information on loading options, please run 'info "
                    "loading_data' in a SQL client.",
                    "22P02",
                )
            loading = [load for load in loads if not (on_error == "SKIP_FILE" and load.errors)]
            insert(fake, table, head["columns"], query, loading, kind=kind, match=match)
            rows = []
            for load in loads:
                skipped = on_error == "SKIP_FILE" and load.errors
                loaded = 0 if skipped else load.loaded
                state = "LOAD_FAILED" if skipped or (load.errors and not loaded) else "PARTIALLY_LOADED" if load.errors else "LOADED"
                limit = load.parsed if on_error == "CONTINUE" else 1
                rows.append(
                    (
                        load.name,
                        state,
                        load.parsed,
                        loaded,
                        limit,
                        load.errors,
                        load.first_error,
                        load.first_error_line,
                        load.first_error_character,
                        None,
                    )
                )
                if state != "LOAD_FAILED":
                    done.add((stage_id, load.staged.path, load.staged.md5))
                    if purge:
                        load.staged.file.unlink(missing_ok=True)
        return COPY_COLUMNS, rows

    # -- INFER_SCHEMA ------------------------------------------------------------------

    def infer_schema(self, account: Account, session: Session, fake: Any, sql: str) -> Rows:
        """A query over `TABLE(INFER_SCHEMA(LOCATION => '@...', FILE_FORMAT => '<name>' ...))`: the columns of the
        staged Parquet files, each with its Snowflake type and the expression that reads it, in the function's
        output columns. Read from each file's Parquet schema; the query runs over them as a table."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        m = _INFER_SCHEMA.search(sql)
        assert m
        arguments: dict[str, str] = {}
        text, position = m["arguments"].strip(), 0
        while position < len(text):
            found = _ARGUMENT.match(text, position)
            if not found or found.end() == position or found["key"].upper() not in INFER_SCHEMA_ARGUMENTS:
                raise unsupported(f"INFER_SCHEMA ... {text[position:]}")
            arguments[found["key"].upper()] = found["value"]
            position = found.end()
        if "LOCATION" not in arguments or "FILE_FORMAT" not in arguments:
            raise SnowflakeError(2, "SQL compilation error:\nINFER_SCHEMA needs LOCATION and FILE_FORMAT.", "42601")
        database, schema = fake.database, fake.schema
        location = self.location(arguments["LOCATION"], session, database, schema)
        if location.kind == "TABLE":  # the function's page: named stages and the user stage only
            raise unsupported(f"INFER_SCHEMA ... LOCATION => '@%{location.key}' (a table stage)")
        self.authorize(account, session, location, "READ")
        fmt = self.named_format(account, session, database, schema)(unquote_literal(arguments["FILE_FORMAT"]))
        if fmt.get("TYPE", "CSV") != "PARQUET":
            raise unsupported(f"INFER_SCHEMA ... of a {fmt.get('TYPE', 'CSV')} file format: the local gateway reads Parquet schemas only")
        files = self.files(location, named=arguments.get("FILES"))
        if "MAX_FILE_COUNT" in arguments:
            files = files[: int(unquote_literal(arguments["MAX_FILE_COUNT"]))]
        ignore_case = boolean(arguments.get("IGNORE_CASE"), False)
        columns: dict[str, tuple[str, bool, list[str]]] = {}
        for staged in files:
            try:
                fields = pq.read_schema(staged.file)
            except (OSError, ValueError) as e:
                raise SnowflakeError(
                    100071, f"Error parsing the Parquet file: {e}\n  File '{location.prefix}{staged.path}'", "22000"
                ) from None
            for column in fields:
                name = column.name.upper() if ignore_case else column.name
                kind, nullable, seen_in = columns.get(name, (parquet_type(column.type), False, []))
                columns[name] = (kind, nullable or column.nullable, [*seen_in, location.prefix + staged.path])
        found_rows = [
            (name, kind, nullable, f"$1:{json.dumps(name)}::{kind}", ", ".join(seen_in), order)
            for order, (name, (kind, nullable, seen_in)) in enumerate(columns.items())
        ]
        table = pa.table({c: [r[i] for r in found_rows] for i, c in enumerate(INFER_SCHEMA_COLUMNS)}, schema=_infer_schema_schema())
        name = f"widf_inferred_{secrets.token_hex(8)}"
        duck = fake._duck_conn  # noqa: SLF001 - the session's DuckDB, as `insert` uses
        duck.register(name, table)
        try:
            cursor = fake.cursor()
            cursor.execute(sql[: m.start()] + f"temp.main.{name}" + sql[m.end() :])
            return [d[0] for d in cursor.description], cursor.fetchall()
        finally:
            duck.unregister(name)


def parquet_type(kind: Any) -> str:
    """The Snowflake type INFER_SCHEMA gives a Parquet column of this (pyarrow) type."""
    import pyarrow as pa

    if pa.types.is_integer(kind):
        return "NUMBER(38, 0)"
    if pa.types.is_decimal(kind):
        return f"NUMBER({kind.precision}, {kind.scale})"
    if pa.types.is_floating(kind):
        return "REAL"
    if pa.types.is_boolean(kind):
        return "BOOLEAN"
    if pa.types.is_timestamp(kind):
        return "TIMESTAMP_TZ" if kind.tz else "TIMESTAMP_NTZ"
    if pa.types.is_date(kind):
        return "DATE"
    if pa.types.is_time(kind):
        return "TIME"
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return "BINARY"
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return "ARRAY"
    if pa.types.is_struct(kind) or pa.types.is_map(kind):
        return "OBJECT"
    return "TEXT"  # strings, and a column of nulls only


def _infer_schema_schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            ("COLUMN_NAME", pa.string()),
            ("TYPE", pa.string()),
            ("NULLABLE", pa.bool_()),
            ("EXPRESSION", pa.string()),
            ("FILENAMES", pa.string()),
            ("ORDER_ID", pa.int64()),
        ]
    )


def put_target(source: str, auto_compress: bool, compression: str) -> tuple[str, str, str]:
    """The name a connector gives a file it PUTs, and its source and target compression: a file compressed
    already (by its extension, or SOURCE_COMPRESSION = GZIP) keeps its name; AUTO_COMPRESS gzips the rest."""
    name = os.path.basename(source)
    encoding = mimetypes.guess_type(name)[1] if compression == "AUTO_DETECT" else "gzip" if compression == "GZIP" else None
    if encoding is not None:
        return name, encoding.upper(), encoding.upper()
    return (name + ".gz", "NONE", "GZIP") if auto_compress else (name, "NONE", "NONE")


def balanced(text: str) -> tuple[str, str]:
    """`(inner) rest` -> (inner, rest), minding quoted strings."""
    depth, quoted = 0, False
    for i, c in enumerate(text):
        if c == "'":
            quoted = not quoted
        elif not quoted and c == "(":
            depth += 1
        elif not quoted and c == ")":
            depth -= 1
            if depth == 0:
                return text[1:i], text[i + 1 :]
    raise SnowflakeError(1003, "SQL compilation error:\nsyntax error: unbalanced parentheses", "42000")


def read_records(staged: StagedFile, name: str, *, strip: bool, compression: str) -> FileLoad:
    """A staged JSON file's records: whitespace-separated JSON documents (NDJSON is one per line), each a record,
    or each element of an outer array with STRIP_OUTER_ARRAY. After a syntax error the parser resumes at the next
    line; each error counts once."""
    load = FileLoad(staged, name)
    data = staged.file.read_bytes()
    if compression == "GZIP" or (compression == "AUTO" and data[:2] == b"\x1f\x8b"):
        data = gzip.decompress(data)
    if not strip and (records := ndjson_records(data)) is not None:
        load.records, load.parsed = records, len(records)
        return load
    text = data.decode("utf-8")
    decoder = json.JSONDecoder()
    position = 0
    while True:
        while position < len(text) and text[position] in " \t\r\n":
            position += 1
        if position >= len(text):
            break
        try:
            value, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as e:
            load.parsed += 1
            load.errors += 1
            if load.first_error is None:
                load.first_error = f"Error parsing JSON: {e.msg}"
                load.first_error_line, load.first_error_character = e.lineno, e.colno
            newline = text.find("\n", e.pos)
            position = len(text) if newline < 0 else newline + 1
            continue
        position = end
        values = value if strip and isinstance(value, list) else [value]
        load.parsed += len(values)
        load.records.extend(json.dumps(v, separators=(",", ":")) for v in values)
    return load


def ndjson_records(data: bytes) -> list[str] | None:
    """The records of a file that is one JSON document per line, as their lines (valid JSON already, so the engine
    parses them as they are); None for any other file, which read_records then reads document by document (and
    tells its errors as Snowflake does). The common case, a large NDJSON file, is then a parse per line in C
    instead of a decode and an encode per record in Python."""
    import orjson

    try:
        lines = [line for line in data.decode("utf-8").split("\n") if line.strip()]
        for line in lines:
            orjson.loads(line)
    except (UnicodeDecodeError, orjson.JSONDecodeError):
        return None
    return lines


def read_parquet_records(staged: StagedFile, name: str) -> FileLoad:
    """A staged Parquet file's rows, each an object of its columns: what `$1` is for a Parquet file. A file that is
    not Parquet is one error."""
    import pyarrow.parquet as pq

    load = FileLoad(staged, name)
    try:
        rows = pq.read_table(staged.file).to_pylist()
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
        load.parsed, load.errors = 1, 1
        load.first_error, load.first_error_line, load.first_error_character = f"Error parsing the Parquet file: {e}", 1, 1
        return load
    load.parsed = len(rows)
    load.records.extend(json.dumps(row, separators=(",", ":"), default=parquet_value) for row in rows)
    return load


def parquet_value(value: Any) -> Any:
    """A Parquet value JSON has no type for: dates and times in ISO 8601, decimals as numbers, binary as hex
    (as Snowflake shows a BINARY)."""
    if isinstance(value, bytes):
        return value.hex().upper()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value) if value != value.to_integral_value() else int(value)
    raise TypeError(f"a Parquet value of type {type(value).__name__}")


def duck_name(key: str) -> str:
    return ".".join('"' + p.replace('"', '""') + '"' for p in key.split("."))


def insert(
    fake: Any, table: str, columns: str | None, query: str | None, loads: list[FileLoad], *, kind: str = "JSON", match: str = "NONE"
) -> None:
    """Insert the records: each as the one VARIANT column's value, through the COPY's SELECT, which reads `$1`
    and the METADATA$ columns from the staged rows (registered in the session's DuckDB), or each field into the
    column of its name (MATCH_BY_COLUMN_NAME)."""
    import pyarrow as pa

    if not any(load.loaded for load in loads):
        return
    duck = fake._duck_conn  # noqa: SLF001 - the session's DuckDB, as the gateway's batches use
    table_columns = table_columns_of(duck, table)
    if all(load.native for load in loads):
        view = f"widf_staged_rows_{secrets.token_hex(8)}"
        duck.execute(f"CREATE TEMP VIEW {view} AS " + " UNION ALL ".join(native_rows(load) for load in loads))
        try:
            fake.cursor().execute(f"INSERT INTO {target_of(table, columns)} {copy_select(query, view, columns, table_columns, kind)}")
        finally:
            duck.execute(f"DROP VIEW IF EXISTS {view}")
        return
    names = [name for name, _ in table_columns]
    # The rows' columns, a file at a time: its records, and its metadata repeated (a large COPY has millions of rows).
    rows: dict[str, list[Any]] = {"TEXT": [], **{c: [] for c in METADATA_COLUMNS}}
    for load in loads:
        count = len(load.records)
        if match != "NONE":
            rows["TEXT"] += [matched_by_name(r, names, case_sensitive=match == "CASE_SENSITIVE") for r in load.records]
        else:
            rows["TEXT"] += load.records
        rows["METADATA$FILENAME"] += [load.staged.path] * count
        rows["METADATA$FILE_ROW_NUMBER"] += range(1, count + 1)
        rows["METADATA$FILE_CONTENT_KEY"] += [load.staged.md5] * count
        rows["METADATA$FILE_LAST_MODIFIED"] += [load.staged.last_modified.replace(tzinfo=None)] * count
    raw, view = f"widf_staged_{secrets.token_hex(8)}", f"widf_staged_rows_{secrets.token_hex(8)}"
    duck.register(raw, pa.table(rows))
    try:
        metadata = ", ".join(f'"{c}"' for c in METADATA_COLUMNS)
        duck.execute(f'CREATE TEMP VIEW {view} AS SELECT json("TEXT") AS {COLUMN}1, {metadata} FROM {raw}')
        if match != "NONE":
            # Every column of the table, each from the field of its name (NULL where a record has none).
            into = f"{target_of(table, None)} ({', '.join(written(name) for name, _ in table_columns)})"
            fields = ", ".join(f"{COLUMN}1:{json.dumps(name)}::{snowflake_type(kind)}" for name, kind in table_columns)
            fake.cursor().execute(f"INSERT INTO {into} SELECT {fields} FROM temp.main.{view}")
        else:
            fake.cursor().execute(f"INSERT INTO {target_of(table, columns)} {copy_select(query, view, columns, table_columns, kind)}")
    finally:
        duck.execute(f"DROP VIEW IF EXISTS {view}")
        duck.unregister(raw)


def target_of(table: str, columns: str | None) -> str:
    """The COPY's table (and column list) as the engine names it."""
    target = ".".join(p if re.fullmatch(r"[A-Z_][A-Z0-9_$]*", p) else '"' + p.replace('"', '""') + '"' for p in table.split("."))
    return f"{target} ({columns})" if columns else target


def copy_select(query: str | None, view: str, columns: str | None, table_columns: list[tuple[str, str]], kind: str) -> str:
    """The SELECT that feeds the COPY's table from the staged rows' view: its transformation, or the record itself."""
    if query is None:
        if len(table_columns) != 1 and not columns:
            raise SnowflakeError(
                2,
                f"SQL compilation error:\n{kind} file format can produce one and only one column of type variant, object, or array. "
                "Use CSV file format if you want to load more than one column.",
                "0A000",
            )
        return f"SELECT {COLUMN}1 FROM temp.main.{view}"
    targets = [c.strip() for c in columns.split(",")] if columns else [name for name, _ in table_columns]
    types = {normalise(name): kind for name, kind in table_columns}
    return cast_to_targets(source_query(query, f"temp.main.{view}"), [types.get(normalise(t), "JSON") for t in targets])


def engine_text(text: str) -> str:
    """A string literal in the engine's own SQL (DuckDB's: no backslash escapes)."""
    return "'" + text.replace("'", "''") + "'"


def native_rows(load: FileLoad) -> str:
    """The staged rows of one NDJSON file as the engine reads them itself, with its metadata columns (no row number:
    native_ndjson_loads is used only for a COPY that reads none)."""
    staged = load.staged
    with staged.file.open("rb") as file:  # its first bytes: a gzip file says so (the engine reads the rest)
        compression = "gzip" if file.read(2) == b"\x1f\x8b" else "none"
    modified = staged.last_modified.replace(tzinfo=None).isoformat(sep=" ")
    return (
        f'SELECT json AS {COLUMN}1, {engine_text(staged.path)} AS "METADATA$FILENAME", NULL::BIGINT AS "METADATA$FILE_ROW_NUMBER", '
        f'{engine_text(staged.md5)} AS "METADATA$FILE_CONTENT_KEY", TIMESTAMP {engine_text(modified)} AS "METADATA$FILE_LAST_MODIFIED" '
        f"FROM read_json_objects({engine_text(str(staged.file))}, format = 'newline_delimited', compression = '{compression}')"
    )


def native_ndjson_loads(duck: Any, files: list[StagedFile], prefix: str, compression: str) -> list[FileLoad] | None:
    """Each file's load, read by the engine itself (DuckDB's read_json_objects), when every file is one JSON document
    a line; None otherwise, and read_records then reads them (and tells their errors as Snowflake does). A large
    staged load is then read and parsed in C, not a record at a time in Python."""
    import duckdb

    loads = [FileLoad(f, prefix + f.path, native=True) for f in files]
    if compression not in ("AUTO", "GZIP", "NONE"):
        return None
    try:
        for load in loads:
            [(load.parsed,)] = duck.execute(f"SELECT count(*) FROM ({native_rows(load)})").fetchall()
    except duckdb.Error:
        return None
    return loads


def cast_to_targets(select: str, target_types: list[str]) -> str:
    """The COPY's SELECT with each field it reads bare (`$1:name`, a VARIANT) cast to its target column's type, as
    Snowflake converts a VARIANT it loads into a typed column: a string lands as its text, not as JSON."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(select, read="snowflake")
    except sqlglot.errors.ParseError:
        return select  # the engine reads it next, and answers for it
    if not isinstance(tree, exp.Select) or len(tree.expressions) != len(target_types):
        return select
    projections = []
    for projection, kind in zip(tree.expressions, target_types, strict=True):
        inner = projection.this if isinstance(projection, exp.Alias) else projection
        if isinstance(inner, exp.JSONExtract) and (target := snowflake_type(kind)) != "VARIANT":
            # GET_PATH(...)::type, unparenthesised: the shape fakesnow reads as a JSON value's text
            projection = sqlglot.parse_one(f"{inner.sql(dialect='snowflake')}::{target}", read="snowflake")
        projections.append(projection)
    tree.set("expressions", projections)
    return tree.sql(dialect="snowflake")


def table_columns_of(duck: Any, table: str) -> list[tuple[str, str]]:
    """The table's columns in order, each with its DuckDB type."""
    db, schema, name = table.split(".")
    return duck.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_catalog ILIKE ? AND table_schema ILIKE ? "
        "AND table_name ILIKE ? ORDER BY ordinal_position",
        [db, schema, name],
    ).fetchall()


def matched_by_name(record: str, names: list[str], *, case_sensitive: bool) -> str:
    """MATCH_BY_COLUMN_NAME: the record's fields under the names of the columns they match (a record that is not
    an object matches none)."""
    value = json.loads(record)
    if not isinstance(value, dict):
        return "{}"
    fold = (lambda n: n) if case_sensitive else str.upper
    by_name = {fold(k): v for k, v in value.items()}
    return json.dumps({n: by_name[fold(n)] for n in names if fold(n) in by_name}, separators=(",", ":"))


_SNOWFLAKE_TYPES = {"JSON": "VARIANT", "VARCHAR": "VARCHAR", "BOOLEAN": "BOOLEAN", "DOUBLE": "FLOAT", "FLOAT": "FLOAT", "DATE": "DATE"}


def snowflake_type(duck_type: str) -> str:
    """The Snowflake type a DuckDB column holds, to cast a field into it."""
    upper = duck_type.upper()
    if upper.startswith(("DECIMAL", "BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT")):
        return "NUMBER" + (upper[len("DECIMAL") :] if upper.startswith("DECIMAL") else "(38, 0)")
    if upper.startswith("TIMESTAMP"):
        return "TIMESTAMP_TZ" if "TIME ZONE" in upper else "TIMESTAMP_NTZ"
    return _SNOWFLAKE_TYPES.get(upper, "VARIANT")


def source_query(query: str, source: str) -> str:
    """The COPY's SELECT over the registered rows: `@stage[/path] [(FILE_FORMAT => ...)]` becomes that source,
    `$n` its n-th column (strings are left alone)."""

    def stage(m: re.Match) -> str:
        return source if m["stage"] else m.group(0)

    def parameter(m: re.Match) -> str:
        if not m["n"]:
            return m.group(0)
        if m["n"] != "1":
            raise SnowflakeError(2, f"SQL compilation error:\nJSON file format can produce only $1, not ${m['n']}", "0A000")
        return f"{COLUMN}1"

    return _PARAMETER.sub(parameter, _STAGE_IN_QUERY.sub(stage, query))


def answer(store: StageStore, account: Account, session: Session, fake: Any, sql: str) -> Rows | dict[str, Any] | None:
    """Rows for a stage statement, the `data` of a PUT's answer, or None when the statement is not about stages."""
    sql = without_comments(sql)
    if not is_stage_statement(sql):
        return None
    database, schema = fake.database, fake.schema
    if _INFER_SCHEMA.search(sql):
        return store.infer_schema(account, session, fake, sql)
    word = " ".join(sql.split()[:4]).upper()
    if re.match(r"^COPY\s+INTO\s", word):
        if not _COPY_HEAD.match(sql):
            raise unsupported(sql)
        return store.copy(account, session, fake, sql)
    if re.match(r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMP(?:ORARY)?\s+)?FILE\s+FORMAT\b", sql, re.I):
        return store.create_format(account, session, sql, database, schema)
    if word.startswith("DROP FILE FORMAT") and _DROP_FORMAT.match(sql):
        return store.drop_format(account, session, sql, database, schema)
    if word.startswith("CREATE"):
        if re.search(r"\b(URL|STORAGE_INTEGRATION|CREDENTIALS|ENCRYPTION|DIRECTORY)\s*=", sql, re.I):
            raise unsupported(sql)  # external stages, encryption and directory tables
        return store.create(account, session, sql, database, schema)
    if word.startswith("DROP") and _DROP.match(sql):
        return store.drop(account, session, sql, database, schema)
    if word.startswith("SHOW"):
        return store.show(account, session, sql, database, schema)
    if word.startswith("DESC") and _DESC.match(sql):
        return store.describe(account, session, sql, database, schema)
    if word.startswith("PUT"):
        return store.put(account, session, sql, database, schema)
    if word.startswith(("LIST", "LS")):
        return store.list(account, session, sql, database, schema)
    if word.startswith(("REMOVE", "RM")):
        return store.remove(account, session, sql, database, schema)
    raise unsupported(sql)  # GET, ALTER STAGE, and any form above the gateway does not read
