"""`widf-loader doctor`: every link from an upload to a loaded row, checked and explained.

The chain: AWS credentials -> the function's IAM role (the stack's output) ->
the identity the function presents (an STS session of that role) and the IAM
role it maps to -> a Snowflake service user that trusts exactly that role ->
the loader role's grants -> the bucket's notification to the queue -> the
dead-letter queue. Each check is a small function returning a `Check`: ok,
warn or fail (skip when a link it depends on is broken), one line saying what
it found and, when something is wrong, one line saying what fixes it.

The checks read through AWS clients and an administrator's Snowflake
connection, with the SQL an administrator would type (`SHOW USERS`, `SHOW USER
WORKLOAD IDENTITY AUTHENTICATION METHODS`, `SHOW GRANTS`), so the same code
runs against the local stack and the cloud.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from widf_loader.config import ConfigError
from widf_ops.admin import SnowflakeNames
from widf_ops.arns import RoleRef, bucket_arn, iam_user_arn, is_session_arn, parse_role_arn, role_of_session
from widf_ops.queues import landing_rules, queue_depth

NO_REGION = "No AWS region: set AWS_DEFAULT_REGION, or a region in your AWS profile (AWS_PROFILE)."
NO_CREDENTIALS = "No AWS credentials: sign in (`aws sso login`, `aws configure`) or choose a profile with AWS_PROFILE."


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self) | {"status": self.status.value}


def ok(name: str, detail: str) -> Check:
    return Check(name, Status.OK, detail)


def warn(name: str, detail: str, fix: str) -> Check:
    return Check(name, Status.WARN, detail, fix)


def fail(name: str, detail: str, fix: str) -> Check:
    return Check(name, Status.FAIL, detail, fix)


def skipped(name: str, needs: str) -> Check:
    return Check(name, Status.SKIP, f"not checked: needs {needs}")


def passed(checks: Iterable[Check]) -> bool:
    """Warnings pass; a failed check fails the whole run (skips follow a failure)."""
    return all(c.status is not Status.FAIL for c in checks)


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def aws_failure(name: str, error: Exception, cli: str) -> Check:
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, NoRegionError

    if isinstance(error, NoRegionError):
        return fail(name, "no AWS region", NO_REGION)
    if isinstance(error, NoCredentialsError):
        return fail(name, "no AWS credentials", NO_CREDENTIALS)
    if isinstance(error, EndpointConnectionError):
        return fail(name, one_line(error), f"check AWS_ENDPOINT_URL and your network; locally, `{cli} local status`")
    if isinstance(error, ClientError):
        e = error.response.get("Error", {})
        return fail(
            name,
            f"AWS {e.get('Code', 'error')}: {e.get('Message', '')}",
            f"check what your AWS credentials may do; `{cli} aws debug` shows the stack",
        )
    return fail(name, one_line(error), f"see `{cli} aws debug`")


# -- AWS -----------------------------------------------------------------------------


def check_aws_identity(sts: Any) -> tuple[Check, str | None]:
    """Whom the AWS side acts as, in which region; the account it returns is what the role must belong to."""
    identity = sts.get_caller_identity()
    region = sts.meta.region_name
    if not region:
        return fail("aws credentials", "no AWS region", NO_REGION), None
    return ok("aws credentials", f"{identity['Arn']} (account {identity['Account']}, region {region})"), identity["Account"]


def check_function_role(find_deployment: Callable[[], Any], cli: str) -> tuple[Check, Any, RoleRef | None]:
    """The function's execution role, from the deployed stack's outputs."""
    try:
        deployment = find_deployment()
    except ConfigError as e:
        return fail("function role", str(e), f"`{cli} aws deploy`"), None, None
    if (role := parse_role_arn(deployment.role_arn)) is None:
        return (
            fail(
                "function role",
                f"the stack's FunctionRoleArn '{deployment.role_arn}' is not an IAM role ARN",
                f"redeploy from infra/template.yaml: `{cli} aws deploy`",
            ),
            deployment,
            None,
        )
    return ok("function role", deployment.role_arn), deployment, role


def presented_session_arn(sts: Any, role: RoleRef, session: str) -> tuple[str, bool]:
    """The session ARN the function presents, and whether STS really issued it.

    Lambda names the session after the function. Whoever runs doctor may not be
    allowed to assume a role that trusts only lambda.amazonaws.com (the cloud
    case): then the ARN is what STS would issue, which is its documented form.
    """
    from botocore.exceptions import ClientError

    try:
        answer = sts.assume_role(RoleArn=role.arn, RoleSessionName=session, DurationSeconds=900)
        return answer["AssumedRoleUser"]["Arn"], True
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") not in ("AccessDenied", "AccessDeniedException"):
            raise
        return role.session_arn(session), False


def check_presented_identity(sts: Any, role: RoleRef, session: str, account: str | None, cli: str) -> tuple[Check, RoleRef | None]:
    name = "presented identity"
    sts_arn, assumed = presented_session_arn(sts, role, session)
    presented = role_of_session(sts_arn)
    how = "" if assumed else " (derived: only Lambda may assume the role)"
    if not presented.same_role(role):
        return fail(
            name,
            f"{sts_arn} maps to {presented.arn}, not the function's role {role.arn}",
            f"redeploy the function with its own role: `{cli} aws deploy`",
        ), None
    detail = f"{sts_arn} -> {presented.arn}{how}"
    if role.path != "/":
        detail += f"; the role's path {role.path} is not in the session ARN: Snowflake matches account and role name"
    if account and account != role.account:
        detail += f"; the role is in account {role.account}, your credentials in {account}"
    return ok(name, detail), presented


def check_bucket_notification(s3: Any, sqs: Any, deployment: Any, cli: str) -> Check:
    """An upload under incoming/ must reach the stack's queue, and the queue must let the bucket send."""
    name = "bucket notification"
    attributes = sqs.get_queue_attributes(QueueUrl=deployment.queue_url, AttributeNames=["QueueArn", "Policy"])["Attributes"]
    queue_arn = attributes["QueueArn"]
    queue = queue_arn.rsplit(":", 1)[-1]
    rules = landing_rules(s3.get_bucket_notification_configuration(Bucket=deployment.bucket), queue_arn)
    if not rules:
        return fail(
            name,
            f"s3://{deployment.bucket} sends no ObjectCreated events to queue {queue}: uploads never reach the function",
            f"`{cli} aws deploy` puts the notification back",
        )
    partition = queue_arn.split(":")[1]
    if not queue_policy_lets_bucket_send(attributes.get("Policy"), bucket_arn(deployment.bucket, partition)):
        return fail(
            name,
            f"the policy of queue {queue} does not let s3://{deployment.bucket} send to it",
            f"`{cli} aws deploy` puts the queue policy back",
        )
    filters = sorted({rule.pattern for rule in rules})
    return ok(name, f"s3://{deployment.bucket} {', '.join(filters)} -> {queue}; the queue policy lets the bucket send")


def queue_policy_lets_bucket_send(policy_text: str | None, bucket_arn: str) -> bool:
    """Some statement allows s3.amazonaws.com to sqs:SendMessage, for this bucket if it names a source."""
    if not policy_text:
        return False
    statements = json.loads(policy_text).get("Statement", [])
    return any(statement_lets_bucket_send(s, bucket_arn) for s in (statements if isinstance(statements, list) else [statements]))


def statement_lets_bucket_send(statement: dict[str, Any], bucket_arn: str) -> bool:
    from fnmatch import fnmatchcase

    actions = statement.get("Action", [])
    actions = [actions] if isinstance(actions, str) else actions
    if statement.get("Effect") != "Allow" or not {"sqs:SendMessage", "sqs:*", "*"} & set(actions):
        return False
    if "s3.amazonaws.com" not in json.dumps(statement.get("Principal", "")):
        return False
    sources = [
        value
        for condition in statement.get("Condition", {}).values()
        for key, values in condition.items()
        if key.lower() == "aws:sourcearn"
        for value in ([values] if isinstance(values, str) else values)
    ]
    return not sources or any(fnmatchcase(bucket_arn, source) for source in sources)


def check_dead_letter_queue(sqs: Any, dlq_url: str, cli: str) -> Check:
    name = "dead-letter queue"
    queue = dlq_url.rstrip("/").rsplit("/", 1)[-1]
    waiting = queue_depth(sqs, dlq_url).waiting
    if waiting:
        return warn(
            name,
            f"{waiting} message(s) in {queue}: files that failed every delivery",
            f"find the cause with `{cli} aws logs`, fix it, then `{cli} replay-dlq`",
        )
    return ok(name, f"{queue} is empty")


# -- Snowflake -----------------------------------------------------------------------


def quoted(name: str) -> str:
    """A name as Snowflake returned it, written as an identifier (it came from the server, not the user)."""
    return '"' + name.replace('"', '""') + '"'


def query(connection: Any, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        columns = [c[0].lower() for c in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def check_admin_connection(connect: Callable[[], Any], fix: str) -> tuple[Check, Any]:
    from snowflake.connector.errors import Error as SnowflakeError

    try:
        connection = connect()
        user, role = connection.cursor().execute("SELECT CURRENT_USER(), CURRENT_ROLE()").fetchone()
    except (ConfigError, SnowflakeError) as e:
        return fail("snowflake admin", one_line(e), fix), None
    return ok("snowflake admin", f"connected as {user} (role {role})"), connection


@dataclass(frozen=True)
class Trust:
    """One AWS workload identity of one user, from SHOW USER WORKLOAD IDENTITY AUTHENTICATION METHODS."""

    user: str
    kind: str  # IAM_ROLE, IAM_USER, ASSUMED_ROLE
    partition: str
    account: str
    name: str
    arn: str

    @classmethod
    def from_method(cls, user: str, method: dict[str, Any]) -> Trust | None:
        if str(method.get("type", "")).upper() != "AWS":
            return None
        info = method.get("additional_info") or "{}"
        info = json.loads(info) if isinstance(info, str) else info
        kind = str(info.get("type", "")).upper()
        partition, account = info.get("awsPartition", "aws"), str(info.get("awsAccount", ""))
        name = info.get("iamRole") or info.get("iamUser") or ""
        arn = info.get("arn") or (iam_user_arn(partition, account, name) if kind == "IAM_USER" else RoleRef(partition, account, name).arn)
        if is_session_arn(arn):
            kind = "ASSUMED_ROLE"
        return cls(user, kind, partition, account, name, arn)

    def matches(self, role: RoleRef) -> bool:
        return self.kind == "IAM_ROLE" and RoleRef(self.partition, self.account, self.name).same_role(role)


def trusts_of(connection: Any, users: list[dict[str, Any]]) -> list[Trust]:
    found = []
    for user in users:
        if str(user.get("has_workload_identity", "true")).lower() != "true":
            continue
        methods = query(connection, f"SHOW USER WORKLOAD IDENTITY AUTHENTICATION METHODS FOR USER {quoted(user['name'])}")
        found += [t for m in methods if (t := Trust.from_method(user["name"], m))]
    return found


def wrong_trust(user: str, trust: Trust, role: RoleRef) -> str:
    """Why this identity is not the function's role, in the words of the mistake that causes it."""
    if trust.kind == "ASSUMED_ROLE":
        return f"{user} trusts the assumed-role session ARN {trust.arn}, not the IAM role ARN {role.arn}"
    if trust.kind == "IAM_USER":
        return f"{user} trusts the IAM user {trust.arn}, not the function's role {role.arn}"
    if trust.account != role.account or trust.partition != role.partition:
        return f"{user} trusts a role in account {trust.account} ({trust.arn}); the function's role is in account {role.account}"
    return f"{user} trusts role '{trust.name}', not the function's role '{role.name}' (renamed, or another stack's?)"


def check_service_user(connection: Any, names: SnowflakeNames, role: RoleRef, cli: str) -> Check:
    """A TYPE = SERVICE user must trust exactly the role the function's session maps to."""
    fix = f"`{cli} snow lambda-wid --role-arn {role.arn}`"
    users = {u["name"]: u for u in query(connection, "SHOW USERS")}
    trusts = trusts_of(connection, list(users.values()))
    configured = users.get(names.user)
    if configured and any(t.user == names.user and t.matches(role) for t in trusts):
        return check_trusting_user(configured, role, fix)
    if others := [t.user for t in trusts if t.matches(role) and str(users[t.user].get("type", "")).upper() == "SERVICE"]:
        return warn(
            USER_CHECK,
            f"{others[0]} trusts {role.arn}, not {names.user}: the function logs in as {others[0]}",
            f"set WIDF_SERVICE_USER={others[0]}, or {fix}",
        )
    return fail(USER_CHECK, why_nobody_trusts(names.user, configured is not None, trusts, role), fix)


USER_CHECK = "snowflake user"


def check_trusting_user(user: dict[str, Any], role: RoleRef, fix: str) -> Check:
    """The user trusts the role; Snowflake still logs it in only as an enabled TYPE = SERVICE user."""
    name, kind = user["name"], str(user.get("type") or "PERSON").upper()
    if kind != "SERVICE":
        return fail(
            USER_CHECK,
            f"{name} trusts {role.arn} but is TYPE = {kind}: only TYPE = SERVICE users log in with workload identity",
            f"ALTER USER {name} SET TYPE = SERVICE (or {fix})",
        )
    if str(user.get("disabled", "false")).lower() == "true":
        return fail(USER_CHECK, f"{name} trusts {role.arn} but is disabled", f"ALTER USER {name} SET DISABLED = FALSE")
    return ok(USER_CHECK, f"{name} (TYPE = SERVICE) trusts {role.arn}")


def why_nobody_trusts(user: str, exists: bool, trusts: list[Trust], role: RoleRef) -> str:
    """The configured user's near miss, or another user's session-ARN mistake, or plainly nobody."""
    if exists and (mine := [t for t in trusts if t.user == user]):
        return wrong_trust(user, mine[0], role)
    if near := [t for t in trusts if t.kind == "ASSUMED_ROLE" and t.name == role.name]:
        return wrong_trust(near[0].user, near[0], role)
    missing = f"{user} has no AWS workload identity" if exists else f"{user} does not exist"
    return f"no Snowflake user trusts {role.arn} ({missing}): the login fails with 'Unable to find an associated Snowflake user'"


@dataclass(frozen=True)
class Grant:
    privilege: str
    kind: str  # WAREHOUSE, DATABASE, SCHEMA, TABLE
    on: str

    def statement(self, role: str) -> str:
        return f"GRANT {self.privilege} ON {self.kind} {self.on} TO ROLE {role}"


def required_grants(names: SnowflakeNames, tables: Iterable[str]) -> list[Grant]:
    """What sql/setup.sql, sql/lambda_wid.sql and ddl.grant_target_tables give the loader's role."""
    where = f"{names.database}.{names.schema}"
    grants = [Grant("USAGE", "WAREHOUSE", names.warehouse), Grant("USAGE", "DATABASE", names.database), Grant("USAGE", "SCHEMA", where)]
    return grants + [Grant(p, "TABLE", f"{where}.{t}") for t in tables for p in ("SELECT", "INSERT")]


def granted_set(rows: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(privilege, kind, name) as SHOW GRANTS TO ROLE answers, names without quotes."""
    return {(str(r["privilege"]).upper(), str(r["granted_on"]).upper(), str(r["name"]).replace('"', "").upper()) for r in rows}


def has_grant(granted: set[tuple[str, str, str]], grant: Grant) -> bool:
    return any((p, grant.kind, grant.on) in granted for p in (grant.privilege, "ALL", "OWNERSHIP"))


def check_loader_grants(connection: Any, names: SnowflakeNames, tables: Iterable[str], cli: str) -> Check:
    from snowflake.connector.errors import ProgrammingError

    name = "loader grants"
    tables = list(dict.fromkeys(tables))
    try:
        granted = granted_set(query(connection, f"SHOW GRANTS TO ROLE {names.role}"))
    except ProgrammingError as e:
        if "does not exist" not in str(e):
            raise
        return fail(name, f"role {names.role} does not exist", f"`{cli} snow setup`, then `{cli} snow lambda-wid`")
    missing = [g for g in required_grants(names, tables) if not has_grant(granted, g)]
    if missing:
        more = f" ({len(missing) - 1} more: `{cli} snow lambda-wid` grants them all)" if len(missing) > 1 else ""
        listed = ", ".join(f"{g.privilege} on {g.on}" for g in missing)
        return fail(name, f"{names.role} lacks {listed}", f"{missing[0].statement(names.role)}{more}")
    try:
        holders = {str(r["role"]).upper() for r in query(connection, f"SHOW GRANTS TO USER {names.user}")}
    except ProgrammingError:
        holders = None  # no such user: the user check says so
    if holders is not None and names.role not in holders:
        return fail(name, f"{names.user} is not granted {names.role}", f"GRANT ROLE {names.role} TO USER {names.user}")
    if excess := more_than_loading(granted):
        privilege, kind, on = excess[0]
        return warn(
            name,
            f"{names.role} holds more than loading needs: {', '.join(f'{p} on {o}' for p, _, o in excess)}",
            f"REVOKE {privilege} ON {kind} {on} FROM ROLE {names.role}",
        )
    return ok(
        name,
        f"{names.role}: USAGE on {names.warehouse}, {names.database}, {names.database}.{names.schema}; SELECT, INSERT on {', '.join(tables)}",
    )


def more_than_loading(granted: set[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """What would let the loader create, drop or own something: it inserts, and creates nothing."""
    return sorted(g for g in granted if g[0] in ("OWNERSHIP", "ALL") or g[0].startswith("CREATE ") and g[1] != "ROLE")


# -- the whole chain -----------------------------------------------------------------


@dataclass(frozen=True)
class Sources:
    """Where doctor looks: the AWS side's clients, the stack's outputs, the administrator's connection."""

    aws_client: Callable[[str], Any]
    find_deployment: Callable[[], Any]
    connect_admin: Callable[[], Any]
    names: SnowflakeNames
    tables: tuple[str, ...]
    function_name: str
    cli: str = "widf-loader"  # how the fixes spell the command (with --target cloud in the cloud)
    admin_fix: str = "`widf-loader local up`"  # what makes the administrator connection work


def run_checks(sources: Sources) -> list[Check]:
    """Every check, in the order of the chain; a broken link skips the checks that need it."""
    aws, presented = aws_checks(sources)
    return sorted([*aws, *snowflake_checks(sources, presented)], key=lambda c: ORDER.index(c.name))


ORDER = (
    "aws credentials",
    "function role",
    "presented identity",
    "snowflake admin",
    "snowflake user",
    "loader grants",
    "bucket notification",
    "dead-letter queue",
)
AWS_AFTER_CREDENTIALS = ("function role", "presented identity", "bucket notification", "dead-letter queue")


def aws_checks(sources: Sources) -> tuple[list[Check], RoleRef | None]:
    """The AWS links, and the IAM role the function's session maps to (None when it cannot be told)."""
    from botocore.exceptions import BotoCoreError, ClientError

    cli = sources.cli
    try:
        sts = sources.aws_client("sts")
        credentials, account = check_aws_identity(sts)
        function_role, deployment, role = check_function_role(sources.find_deployment, cli)
    except (BotoCoreError, ClientError) as e:
        return [aws_failure("aws credentials", e, cli), *(skipped(n, "AWS credentials") for n in AWS_AFTER_CREDENTIALS)], None
    checks, presented = [credentials, function_role], None
    if deployment is None or role is None:
        return checks + [skipped(n, "the deployed function") for n in AWS_AFTER_CREDENTIALS[1:]], None
    try:
        check, presented = check_presented_identity(sts, role, sources.function_name, account, cli)
    except (BotoCoreError, ClientError) as e:
        check = aws_failure("presented identity", e, cli)
    checks.append(check)
    for name, run in (
        ("bucket notification", lambda: check_bucket_notification(sources.aws_client("s3"), sources.aws_client("sqs"), deployment, cli)),
        ("dead-letter queue", lambda: check_dead_letter_queue(sources.aws_client("sqs"), deployment.dlq_url, cli)),
    ):
        try:
            checks.append(run())
        except (BotoCoreError, ClientError) as e:
            checks.append(aws_failure(name, e, cli))
    return checks, presented


def snowflake_checks(sources: Sources, role: RoleRef | None) -> list[Check]:
    from snowflake.connector.errors import Error as SnowflakeError

    admin, connection = check_admin_connection(sources.connect_admin, sources.admin_fix)
    if connection is None:
        return [admin, skipped("snowflake user", "the administrator connection"), skipped("loader grants", "the administrator connection")]
    checks = [admin]
    with connection:
        for name, run in (
            (
                "snowflake user",
                lambda: (
                    check_service_user(connection, sources.names, role, sources.cli)
                    if role
                    else skipped("snowflake user", "the identity the function presents")
                ),
            ),
            ("loader grants", lambda: check_loader_grants(connection, sources.names, sources.tables, sources.cli)),
        ):
            try:
                checks.append(run())
            except SnowflakeError as e:
                checks.append(
                    fail(
                        name,
                        f"Snowflake: {one_line(e)}",
                        "use an administrator connection whose role sees users and grants (USERADMIN, SECURITYADMIN)",
                    )
                )
    return checks
