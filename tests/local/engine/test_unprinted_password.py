"""The local administrator's password is never printed: not by the objects that hold it, so not in a traceback."""

from __future__ import annotations

import dataclasses

from widf_local.gateway.accounts import Account
from widf_local.stack import StackInfo

PASSWORD = "known-Local-Admin-Password-42"  # pragma: allowlist secret


def test_stack_info_keeps_the_password_but_never_prints_it():
    info = StackInfo(
        pid=1,
        aws_endpoint="http://127.0.0.1:1",
        region="us-east-1",
        account_id="123456789012",
        snowflake_host="localhost",
        snowflake_port=2,
        snowflake_account="local",
        admin_user="WIDF_LOCAL_ADMIN",
        admin_password=PASSWORD,
    )
    assert PASSWORD not in repr(info) and PASSWORD not in str(info) and PASSWORD not in f"{info!r} {info}"
    assert "WIDF_LOCAL_ADMIN" in repr(info)  # the rest still prints
    assert dataclasses.asdict(info)["admin_password"] == PASSWORD  # still written to .local/stack.json


def test_the_gateways_admin_user_never_prints_its_password():
    account = Account()
    account.add_admin("WIDF_LOCAL_ADMIN", PASSWORD)
    admin = account.users["WIDF_LOCAL_ADMIN"]
    assert admin.password == PASSWORD
    assert PASSWORD not in repr(admin) and PASSWORD not in str(admin)
    assert PASSWORD not in repr(account.users)
