"""Settings from the environment, checked once at start-up.

The function is keyless: it refuses to start if its environment carries a
Snowflake password, private key or token, or a connection of its own (a
connection name, definition or file), because the point of workload identity
is that no such thing exists to leak or rotate. The handler runs that check
when it is imported, before it handles any event.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,254}$")
# Every environment variable through which the Snowflake connector (4.x, 5.x) or the Snowflake CLI's conventions
# could give the function a credential or a connection of its own, with why it is refused; docs/reliability.md
# ("Keyless, enforced") names the source each entry comes from. Refused when set at all, even empty. (Pairs, not a
# dict literal: the secret scan takes a dict literal's text under a PASSWORD key for a password.)
REFUSED_VARIABLES: dict[str, str] = dict(
    [
        ("SNOWFLAKE_PASSWORD", "a password"),
        ("SNOWFLAKE_PASSCODE", "an MFA passcode"),
        ("SNOWFLAKE_PAT", "a programmatic access token"),
        ("SNOWFLAKE_TOKEN", "a token: OAuth or a programmatic access token"),
        ("SNOWFLAKE_TOKEN_FILE_PATH", "the path of a file holding a token"),
        ("SNOWFLAKE_SESSION_TOKEN", "a session token"),
        ("SNOWFLAKE_MASTER_TOKEN", "a master token"),
        ("SNOWFLAKE_OAUTH_TOKEN", "an OAuth token"),
        ("SNOWFLAKE_OAUTH_CLIENT_SECRET", "an OAuth client secret"),
        ("SNOWFLAKE_PRIVATE_KEY", "a private key"),
        ("SNOWFLAKE_PRIVATE_KEY_RAW", "a private key (PEM text)"),
        ("SNOWFLAKE_PRIVATE_KEY_FILE", "the path of a private key"),
        ("SNOWFLAKE_PRIVATE_KEY_PATH", "the path of a private key"),
        ("SNOWFLAKE_PRIVATE_KEY_PASSPHRASE", "a private key's passphrase"),
        ("SNOWFLAKE_PRIVATE_KEY_FILE_PWD", "a private key's passphrase"),
        ("SNOWFLAKE_PRIVATE_KEY_PASSWORD", "a private key's passphrase"),
        ("PRIVATE_KEY_PASSPHRASE", "a private key's passphrase, which the Snowflake CLI reads"),
        ("SNOWFLAKE_CONNECTIONS", "connection definitions (TOML), which the connector reads as its connections"),
        ("SNOWFLAKE_CONNECTION_NAME", "names a connection in connections.toml"),
        ("SNOWFLAKE_DEFAULT_CONNECTION_NAME", "names the connection the connector loads from connections.toml"),
        ("SNOWFLAKE_HOME", "points the connector at a folder of connection files (connections.toml, config.toml)"),
        ("SNOWFLAKE_RUNNING_INSIDE_SPCS", "makes the connector send a container services token file with every login"),
        ("SF_TEMPORARY_CREDENTIAL_CACHE_DIR", "points the connector at a cache of Snowflake credentials"),
        ("SF_TEMPORARY_CREDENTIAL_CACHE_FILE_NAME", "names the connector's cache of Snowflake credentials"),
    ]
)
# Whole families: the Snowflake CLI's SNOWFLAKE_CONNECTIONS_<NAME>_<KEY> (any key of a named connection, its
# password among them) and the OAuth settings (client secret, token endpoints), which only another authenticator uses.
REFUSED_PREFIXES: dict[str, str] = {
    "SNOWFLAKE_CONNECTIONS_": "a setting of a named connection (SNOWFLAKE_CONNECTIONS_<NAME>_<KEY>)",
    "SNOWFLAKE_OAUTH_": "an OAuth setting",
}
# The files the connector reads its connections and configuration from: connector 4.x reads both at every
# connect (for config.toml's [log]), so a connection definition, password and all, would sit in the function.
CONNECTION_FILES: dict[str, str] = {
    "connections.toml": "Snowflake connection definitions",
    "config.toml": "Snowflake configuration, which may define connections",
}


class ConfigError(ValueError):
    """The configuration is missing something or holds something it must not."""


def identifier(value: str, what: str) -> str:
    """A Snowflake identifier safe to place in SQL text (it cannot be bound)."""
    if not _IDENTIFIER.match(value):
        raise ConfigError(f"{what} '{value}' is not a plain Snowflake identifier (letters, digits, _ and $; starts with a letter or _).")
    return value.upper()


def connection_file_paths(env: Mapping[str, str]) -> list[str]:
    """Where the connector looks for connections.toml and config.toml (on Linux, as Lambda runs).

    SNOWFLAKE_HOME (default ~/.snowflake) if that folder exists, else the platform's configuration folder,
    $XDG_CONFIG_HOME/snowflake or ~/.config/snowflake. Both folders are listed: a file in either is refused.
    """
    home = env.get("HOME") or os.path.expanduser("~")
    snowflake_home = env.get("SNOWFLAKE_HOME") or "~/.snowflake"
    if snowflake_home == "~" or snowflake_home.startswith("~/"):
        snowflake_home = home + snowflake_home[1:]
    platform = os.path.join(env.get("XDG_CONFIG_HOME", "").strip() or os.path.join(home, ".config"), "snowflake")
    return [os.path.join(folder, name) for folder in (snowflake_home, platform) for name in CONNECTION_FILES]


def refusals(env: Mapping[str, str], *, files: bool = False) -> list[str]:
    """What in this environment would give the function a Snowflake credential or connection: each named, with why.

    Values are never shown. With `files`, the connection files the connector would read count too.
    """
    found = [f"{name} is set ({why})" for name, why in REFUSED_VARIABLES.items() if name in env]
    found += [
        f"{name} is set ({why})"
        for name in sorted(env)
        for prefix, why in REFUSED_PREFIXES.items()
        if name.startswith(prefix) and name not in REFUSED_VARIABLES
    ]
    authenticator = env.get("SNOWFLAKE_AUTHENTICATOR", "WORKLOAD_IDENTITY").upper()
    if authenticator != "WORKLOAD_IDENTITY":
        found.append(f"SNOWFLAKE_AUTHENTICATOR is {authenticator} (only WORKLOAD_IDENTITY is allowed)")
    if files:
        found += [
            f"{path} exists ({CONNECTION_FILES[os.path.basename(path)]}, which the connector reads)"
            for path in connection_file_paths(env)
            if os.path.exists(path)
        ]
    return found


def refuse_secrets(env: Mapping[str, str], *, files: bool = False) -> None:
    """Raise, in one line naming each offender, if the environment could give the function a Snowflake secret.

    The handler calls it with `files` at import, so a misconfigured function fails its init before it handles an event.
    """
    if found := refusals(env, files=files):
        raise ConfigError(
            f"Refusing to start: {'; '.join(found)}. widf-loader logs in with workload identity only and must hold no "
            "Snowflake secret or connection of its own; remove it from the function's environment."
        )


def positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not '{raw}'.") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive, not {value}.")
    return value


@dataclass(frozen=True)
class ReadLimits:
    """Bounds on what one file may cost; each breach rejects the file with a reason."""

    max_object_bytes: int = 5 * 1024**3
    max_decompressed_bytes: int = 20 * 1024**3
    max_record_bytes: int = 16 * 1024**2  # Snowflake's VARIANT limit
    max_depth: int = 200

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ReadLimits:
        return cls(
            max_object_bytes=positive_int(env, "WIDF_MAX_OBJECT_BYTES", cls.max_object_bytes),
            max_decompressed_bytes=positive_int(env, "WIDF_MAX_DECOMPRESSED_BYTES", cls.max_decompressed_bytes),
            max_record_bytes=positive_int(env, "WIDF_MAX_RECORD_BYTES", cls.max_record_bytes),
            max_depth=positive_int(env, "WIDF_MAX_DEPTH", cls.max_depth),
        )


@dataclass(frozen=True)
class LoaderSettings:
    """Everything the function needs to reach Snowflake; nothing secret."""

    account: str
    database: str = "WIDF_DEMO_DB"
    schema: str = "PUBLIC"
    warehouse: str = "COMPUTE_WH"
    role: str = "WIDF_DEMO_ROLE"
    ledger_table: str = "LOAD_HISTORY"
    host: str | None = None
    port: int | None = None
    protocol: str = "https"
    # Where the connector sends the signed STS request; set only for a local STS.
    workload_identity_host: str | None = None
    # Records per insert; a batch is also cut at pipeline.BATCH_BYTES of JSON, whichever comes first.
    batch_rows: int = 50000
    limits: ReadLimits = ReadLimits()
    # The function's timeout (the template passes it). No invocation lives longer, so a
    # transaction of ours that is older belongs to an invocation that was killed (detached).
    function_timeout_seconds: int = 900  # Lambda's maximum: safe when the timeout is unknown
    # A file whose S3 object is larger loads through a stage (widf_loader.stage). The stage's COPY runs once the
    # whole file is read, where bound arrays are inserted while the next is built: `make bench` loads a file of
    # about 100 MB and one of 1 GB both ways side by side (docs/performance.md), and the stage pays off only
    # for files of several hundred MB.
    stage_above_bytes: int = 256 * 1024 * 1024
    # A staged part is closed at this many compressed bytes: Snowflake's file sizing, roughly 100-250 MB
    # compressed ("Preparing to load data"), at its low end, so a part fits Lambda's default 512 MB of /tmp.
    stage_part_bytes: int = 100 * 1000 * 1000

    @property
    def lock_timeout_seconds(self) -> int:
        """How long a claim waits for another delivery's claim of the ledger.

        Well inside the function's timeout: a statement still waiting when Lambda
        kills the invocation would run on, detached, and hold the ledger's lock.
        """
        return max(1, min(10, self.function_timeout_seconds // 3))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LoaderSettings:
        env = os.environ if env is None else env
        refuse_secrets(env)
        if not (account := env.get("SNOWFLAKE_ACCOUNT")):
            raise ConfigError("SNOWFLAKE_ACCOUNT is not set: give the function your account identifier (orgname-accountname).")
        port = env.get("SNOWFLAKE_PORT")
        return cls(
            account=account,
            database=identifier(env.get("SNOWFLAKE_DATABASE", cls.database), "SNOWFLAKE_DATABASE"),
            schema=identifier(env.get("SNOWFLAKE_SCHEMA", cls.schema), "SNOWFLAKE_SCHEMA"),
            warehouse=identifier(env.get("SNOWFLAKE_WAREHOUSE", cls.warehouse), "SNOWFLAKE_WAREHOUSE"),
            role=identifier(env.get("SNOWFLAKE_ROLE", cls.role), "SNOWFLAKE_ROLE"),
            ledger_table=identifier(env.get("WIDF_LEDGER_TABLE", cls.ledger_table), "WIDF_LEDGER_TABLE"),
            host=env.get("SNOWFLAKE_HOST") or None,
            port=int(port) if port else None,
            protocol=env.get("SNOWFLAKE_PROTOCOL", cls.protocol),
            workload_identity_host=env.get("SNOWFLAKE_WORKLOAD_IDENTITY_HOST") or None,
            batch_rows=positive_int(env, "WIDF_BATCH_ROWS", cls.batch_rows),
            function_timeout_seconds=positive_int(env, "WIDF_FUNCTION_TIMEOUT_SECONDS", cls.function_timeout_seconds),
            stage_above_bytes=positive_int(env, "WIDF_STAGE_ABOVE_BYTES", cls.stage_above_bytes),
            stage_part_bytes=positive_int(env, "WIDF_STAGE_PART_BYTES", cls.stage_part_bytes),
            limits=ReadLimits.from_env(env),
        )

    def connect_args(self) -> dict[str, object]:
        args: dict[str, object] = {
            "account": self.account,
            "authenticator": "WORKLOAD_IDENTITY",
            "workload_identity_provider": "AWS",
            "database": self.database,
            "schema": self.schema,
            "warehouse": self.warehouse,
            "role": self.role,
            "protocol": self.protocol,
            "paramstyle": "qmark",
            # Each file is one explicit transaction: rows, then the ledger claim, then COMMIT.
            "autocommit": False,
            "session_parameters": {"LOCK_TIMEOUT": self.lock_timeout_seconds},
            "login_timeout": 30,
            "application": "widf-loader",
            # At login the connector probes for the platform it runs on, for Snowflake's telemetry (cloud
            # metadata services and STS, up to 2 s each). Connector 4.x obeyed this 0; 5.x accepts it and
            # ignores it, and is switched off by SNOWFLAKE_DISABLE_PLATFORM_DETECTION=true, which
            # infra/template.yaml sets in the function's environment.
            "platform_detection_timeout_seconds": 0.0,
        }
        optional = {"host": self.host, "port": self.port, "workload_identity_host": self.workload_identity_host}
        return args | {k: v for k, v in optional.items() if v is not None}
