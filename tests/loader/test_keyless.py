"""Keyless, shown rather than claimed: no secret in the repository, the logs or the function's configuration.

The artefact is scanned in test_package.py, where it is built. The keyless
guard (a configuration that carries a secret is refused) is in test_config.py.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from detect_secrets import SecretsCollection
from detect_secrets.settings import default_settings

from helpers import EVENTS, REPOSITORY
from widf_cli.local_stack import admin_connection
from widf_local import aws
from widf_ops.stack_outputs import wait_for

# Access key ids are not secret, but one in a log line means credentials were logged.
ACCESS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")
CREDENTIAL_WORDS = re.compile(r"(?i)secret_?access_?key|session_?token|x-amz-security-token|password\W*[:=]")


def secrets_in(paths: list[Path]) -> list[str]:
    """What detect-secrets (its default plugins) finds; `pragma: allowlist secret` lines are made-up test values."""
    found = SecretsCollection()
    with default_settings():
        for path in paths:
            found.scan_file(str(path))
    return [f"{file}:{s['line_number']} {s['type']}" for file, items in found.json().items() for s in items]


@pytest.mark.stack  # detect-secrets over every tracked file: seconds, as slow as a stack
def test_the_repository_holds_no_secret():
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPOSITORY, capture_output=True, check=True).stdout.decode().split("\0")
    files = [REPOSITORY / name for name in tracked if name and (REPOSITORY / name).is_file()]
    assert len(files) > 50  # the scan saw the repository, not an empty listing
    # AWS's documented example events carry etags, digests and request ids, high-entropy by nature and
    # published (JSON has no room for an allowlist pragma); any other kind of finding in them still counts.
    examples = f"{EVENTS}/"
    assert [f for f in secrets_in(files) if not (f.startswith(examples) and f.endswith(" High Entropy String"))] == []


def function_credentials(stack) -> list[str]:
    """The role credentials the running function holds, read from its container process's environment."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            variables = dict(v.split("=", 1) for v in environ.read_bytes().decode(errors="replace").split("\0") if "=" in v)
        except OSError:
            continue
        if variables.get("AWS_ENDPOINT_URL") == stack.info.aws_endpoint and "AWS_LAMBDA_FUNCTION_NAME" in variables:
            found += [variables["AWS_SECRET_ACCESS_KEY"], variables["AWS_SESSION_TOKEN"]]
    return found


def test_a_load_leaves_no_credential_in_logs_environment_or_template(stack, loader, tmp_path):
    stack.cli("aws", "test", "--count", "5")
    ledger = (
        "SELECT COUNT(*) FROM WIDF_DEMO_DB.PUBLIC.LOAD_HISTORY WHERE STATUS = 'LOADED' AND SOURCE_KEY LIKE 'incoming/widf-loader-test-%'"
    )

    def loaded():
        with admin_connection(stack.info) as connection:
            return connection.cursor().execute(ledger).fetchone()[0] or None

    assert wait_for(loaded, seconds=120)
    live_secrets = [stack.info.admin_password, *function_credentials(stack)]
    assert len(live_secrets) >= 3, "the function's container was not found: nothing would be checked"

    logs = aws.client("logs", stack.info.aws_endpoint)
    events = [
        e["message"]
        for page in logs.get_paginator("filter_log_events").paginate(logGroupName=loader.resources.log_group)
        for e in page["events"]
    ]
    assert any("LOADED" in line for line in events)  # the function's own lines are among them
    evidence = {
        "function log": "\n".join(events),
        "stack log": stack.paths.log_file.read_text(errors="replace"),
        "function configuration": stack.paths.function_spec.read_text(),
        "deployment": stack.paths.deployment.read_text(),
        "template": (REPOSITORY / "infra" / "template.yaml").read_text(),
        "`widf-loader config`": stack.cli("config").stdout,
    }
    for name, text in evidence.items():
        assert not [s for s in live_secrets if s in text], f"a live secret is in the {name}"
        assert not ACCESS_KEY_ID.findall(text), f"an access key id is in the {name}"
        assert not CREDENTIAL_WORDS.findall(text), f"credential material is named in the {name}: {CREDENTIAL_WORDS.findall(text)[:3]}"
        (tmp_path / f"{len(list(tmp_path.iterdir()))}.txt").write_text(text)
    assert secrets_in(sorted(tmp_path.iterdir())) == []
    assert not {k for k in loader.function.environment if re.search(r"(?i)password|secret|token|private|key", k)}
