"""Which IAM role an assumed-role session belongs to, as AWS documents it.

The gateway's own reading, so that a mistake in the loader's tools cannot hide
in the emulator they are tested against. From the IAM User Guide, "IAM
identifiers", section "IAM ARNs"
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html#identifiers-arns):

    arn:aws:iam::account:role/role-name-with-path
    arn:aws:sts::account:assumed-role/role-name/role-session-name

The session names its role but not the role's path, so a role is known here by
partition, account and name. The characters come from the IAM and STS API
references: a role name is 1 to 64 of letters, digits and `_+=,.@-`
(`CreateRole`, `RoleName`), a session name is of the same characters
(`AssumeRole`, `RoleSessionName`), and a path is `/` alone or starts and ends
with `/`, with ASCII `!` through DEL between (`CreateRole`, `Path`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ROLE_NAME = r"[\w+=,.@-]{1,64}"  # re.ASCII: IAM's \w is ASCII letters, digits and _
_SESSION = re.compile(
    rf"arn:(?P<partition>aws[a-z-]*):sts::(?P<account>\d{{12}}):assumed-role/(?P<role>{_ROLE_NAME})/[\w+=,.@-]+", re.ASCII
)
_ROLE = re.compile(rf"arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{{12}}):role/(?:[\x21-\x7f]+/)?(?P<role>{_ROLE_NAME})", re.ASCII)


@dataclass(frozen=True)
class IamRole:
    """A role as Snowflake compares a verified caller with a trusted ARN: the path left out."""

    partition: str
    account: str
    name: str

    @property
    def arn(self) -> str:
        return f"arn:{self.partition}:iam::{self.account}:role/{self.name}"


def role_in_arn(arn: str) -> IamRole | None:
    """The role an IAM role ARN names (with or without a path); None for any other ARN."""
    if m := _ROLE.fullmatch(arn):
        return IamRole(m["partition"], m["account"], m["role"])
    return None


def role_of_session(sts_arn: str) -> IamRole:
    """The role behind `arn:aws:sts::ACCT:assumed-role/ROLE/SESSION`; ValueError for any other caller."""
    if m := _SESSION.fullmatch(sts_arn):
        return IamRole(m["partition"], m["account"], m["role"])
    raise ValueError(f"'{sts_arn}' is not an assumed-role session ARN")
