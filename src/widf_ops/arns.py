"""AWS principal ARNs: which IAM role an assumed-role session belongs to.

A Lambda function presents its execution role as an STS session,
`arn:aws:sts::ACCT:assumed-role/ROLE/SESSION`. Snowflake trusts the IAM role,
`arn:aws:iam::ACCT:role/[PATH/]ROLE`. The session ARN names the role but not
its path, so the two are compared by partition, account and role name; that
comparison is written once, here, for the scripts and for `doctor`. The local
stack's gateway has its own reading of the same IAM rules
(`widf_local.gateway.aws_principals`), so a mistake here cannot hide there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# aws, aws-cn, aws-us-gov, ...
PARTITION = r"aws[a-z-]*"
# IAM's own character set for role names and session names.
_NAME = r"[\w+=,.@-]{1,64}"
_ASSUMED_ROLE = re.compile(
    rf"^arn:(?P<partition>{PARTITION}):sts::(?P<account>\d{{12}}):assumed-role/(?P<name>{_NAME})/(?P<session>{_NAME})$"
)
_IAM_ROLE = re.compile(rf"^arn:(?P<partition>{PARTITION}):iam::(?P<account>\d{{12}}):role(?P<path>/(?:[\w+=,.@-]+/)*)(?P<name>{_NAME})$")


@dataclass(frozen=True)
class RoleRef:
    """An IAM role as Snowflake compares it: partition, account and name (the path is carried, not compared)."""

    partition: str
    account: str
    name: str
    path: str = "/"

    @property
    def arn(self) -> str:
        return f"arn:{self.partition}:iam::{self.account}:role{self.path}{self.name}"

    def same_role(self, other: RoleRef) -> bool:
        return (self.partition, self.account, self.name) == (other.partition, other.account, other.name)

    def session_arn(self, session: str) -> str:
        """The ARN a session of this role presents (STS leaves the path out)."""
        return f"arn:{self.partition}:sts::{self.account}:assumed-role/{self.name}/{session}"


def parse_role_arn(arn: str) -> RoleRef | None:
    """An IAM role ARN's parts, or None for anything else (an STS session ARN included)."""
    if not (m := _IAM_ROLE.match(arn)):
        return None
    return RoleRef(m["partition"], m["account"], m["name"], m["path"])


def is_session_arn(arn: str) -> bool:
    return _ASSUMED_ROLE.match(arn) is not None


def role_of_session(sts_arn: str) -> RoleRef:
    """The IAM role behind an assumed-role session ARN; ValueError for any other caller."""
    if not (m := _ASSUMED_ROLE.match(sts_arn)):
        raise ValueError(f"'{sts_arn}' is not an assumed-role session ARN (arn:aws:sts::<account>:assumed-role/<role>/<session>)")
    return RoleRef(m["partition"], m["account"], m["name"])


def iam_role_arn_of_session(sts_arn: str) -> str:
    """arn:aws:sts::ACCT:assumed-role/ROLE/SESSION -> arn:aws:iam::ACCT:role/ROLE."""
    return role_of_session(sts_arn).arn


def iam_user_arn(partition: str, account: str, name: str) -> str:
    return f"arn:{partition}:iam::{account}:user/{name}"


def bucket_arn(bucket: str, partition: str = "aws") -> str:
    """An S3 bucket's ARN: no region or account, bucket names being global within a partition."""
    return f"arn:{partition}:s3:::{bucket}"
