"""The Lambda artefact (`make package`): the loader and the lock file's core
dependencies for python3.11 on Lambda's architectures, and the handler runs
from the unpacked zip alone - no venv, no source tree."""

from __future__ import annotations

import ast
import json
import os
import statistics
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import botocore
import pytest
from packaging.tags import compatible_tags, cpython_tags
from packaging.utils import parse_wheel_filename

from helpers import REPOSITORY

ROOT = REPOSITORY
PACKAGER = ROOT / "infra" / "package.py"
LOADER = ROOT / "src" / "widf_loader"
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024  # Lambda refuses a larger function (code and layers, unzipped)
ELF_MACHINES = {"x86_64": 0x3E, "arm64": 0xB7}

IMPORT_PROBE = """
import json, sys, sysconfig, time
started = time.perf_counter()
import widf_loader.handler as handler
import_ms = (time.perf_counter() - started) * 1000
# An S3 test event, as S3 sends when notifications are configured: the batch
# machinery runs and answers without any Snowflake or AWS call.
body = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b", "RequestId": "r", "HostId": "h"})
event = {"Records": [{"messageId": "m1", "receiptHandle": "r1", "body": body, "attributes": {}, "messageAttributes": {},
                      "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": "us-east-1"}]}
answer = handler.lambda_handler(event, None)
stdlib = (sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"])
elsewhere = sorted(
    name for name, module in list(sys.modules.items())
    if getattr(module, "__file__", None) and not module.__file__.startswith((sys.argv[1], *stdlib))
)
# Python modules of the artefact that imported without shipped bytecode (compiled from source, as -B discards).
import os
compiled_here = sorted(
    name for name, module in list(sys.modules.items())
    if getattr(module, "__file__", None) and module.__file__.startswith(sys.argv[1]) and module.__file__.endswith(".py")
    and not os.path.exists(module.__cached__)
)
# The clients the function and the Snowflake connector's WIDF attestation make: their models and endpoints ship (no network here).
import boto3
clients = [boto3.client(service, region_name=region).meta.endpoint_url for service, region in (("s3", "eu-west-1"), ("sts", "us-east-1"))]
clients.append(boto3.session.Session().get_partition_for_region("cn-north-1"))
# The S3 operations the trimmed model keeps: their requests build and sign from it (fake keys, nothing is sent).
s3 = boto3.client("s3", region_name="eu-west-1", aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="example")
s3_operations = sorted(s3.meta.method_to_api_mapping)
presigned = [s3.generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k", "VersionId": "v"}),
             s3.generate_presigned_url("copy_object", Params={"Bucket": "b", "Key": "q/k", "CopySource": {"Bucket": "b", "Key": "k"}})]
print(json.dumps({"import_ms": import_ms, "elsewhere": elsewhere, "answer": answer, "handler": handler.__file__,
                  "compiled_here": compiled_here, "clients": clients, "s3_operations": s3_operations, "presigned": presigned}))
"""


# Every module of the loader, imported in a fresh interpreter that sees only the unpacked zip: where each came from.
MODULES_PROBE = """
import importlib, json, sys
found = {}
for name in sys.argv[2:]:
    found[name] = importlib.import_module(name).__file__
print(json.dumps(found))
"""


def build(arch: str, dist: Path | None = None) -> tuple[subprocess.CompletedProcess, dict]:
    command = [sys.executable, str(PACKAGER), "--arch", arch] + (["--dist", str(dist)] if dist else [])
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    manifest = json.loads(((dist or ROOT / "dist") / "widf-loader-lambda.json").read_text())
    return result, manifest


def locked_core_dependencies() -> set[str]:
    """`name==version` for what uv.lock installs for the function (its core and its `lambda` connector), as the artefact must hold."""
    uv = Path(sys.executable).parent / "uv"
    exported = subprocess.run(
        [
            str(uv),
            "export",
            "--project",
            str(ROOT),
            "--frozen",
            "--no-dev",
            "--extra",
            "lambda",
            "--no-emit-project",
            "--no-hashes",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = (line.split(";")[0].strip() for line in exported.splitlines())
    return {normalise(line) for line in lines if line and not line.startswith("#")}


def normalise(requirement: str) -> str:
    name, _, version = requirement.partition("==")
    return f"{name.lower().replace('_', '-').replace('.', '-')}=={version}"


def shipped_distributions(names: list[str]) -> set[str]:
    found = set()
    for name in names:
        top = name.split("/")[0]
        if top.endswith(".dist-info") and name.endswith("/METADATA"):
            distribution, _, version = top.removesuffix(".dist-info").rpartition("-")
            found.add(normalise(f"{distribution}=={version}"))
    return found


# Each build takes seconds (the lock's wheels, the bytecode, the zip): the tests that need one are marked
# `stack`, as slow as a stack, and `make test-fast` leaves them out.
@pytest.fixture(scope="module")
def artefact(tmp_path_factory) -> tuple[dict, list[str], Path]:
    _, manifest = build("x86_64")
    unpacked = tmp_path_factory.mktemp("lambda-task")
    with zipfile.ZipFile(ROOT / manifest["artefact"]) as archive:
        names = archive.namelist()
        archive.extractall(unpacked)
    return manifest, names, unpacked


def probe(unpacked: Path, script: str = IMPORT_PROBE, *args: str) -> dict:
    """Run a probe (by default: import and invoke the handler) in a fresh interpreter that sees only the unpacked
    zip and the standard library (-S: no site-packages, -s: no user site, -B: like /var/task, nothing cached is written)."""
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(unpacked), "LANG": "C.UTF-8"}
    result = subprocess.run(
        [sys.executable, "-S", "-s", "-B", "-c", script, str(unpacked), *args],
        capture_output=True,
        text=True,
        env=environment,
        cwd=unpacked,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.stack
def test_the_artefact_holds_exactly_the_locked_core_dependencies(artefact):
    manifest, names, _ = artefact
    assert shipped_distributions(names) == locked_core_dependencies()
    assert manifest["architecture"] == "x86_64" and manifest["python"] == "3.11"


def loader_sources() -> dict[str, bytes]:
    """The widf_loader package's own files, as the zip names them (no bytecode)."""
    return {
        f"widf_loader/{path.relative_to(LOADER).as_posix()}": path.read_bytes()
        for path in LOADER.rglob("*")
        if path.is_file() and path.suffix != ".pyc" and "__pycache__" not in path.relative_to(LOADER).parts
    }


@pytest.mark.stack
def test_the_artefact_holds_the_whole_loader_package_and_nothing_else_of_ours(artefact):
    _, names, unpacked = artefact
    shipped = {n for n in names if n.startswith("widf_loader/") and "/__pycache__/" not in n and not n.endswith("/")}
    sources = loader_sources()
    assert shipped == set(sources)  # no deny-list: the package is the function
    assert all((unpacked / name).read_bytes() == sources[name] for name in shipped)
    assert {"widf_loader/handler.py", "widf_loader/defaults/pipeline.toml"} <= shipped
    # The administrator's tools, the local stack and the command are packages of their own, never shipped.
    assert not [n for n in names if n.split("/")[0] in {"widf_ops", "widf_local", "widf_cli"}]
    assert not [n for n in names if "/tests/" in n or n.startswith("bin/")]
    assert not [n for n in names if n.split("/")[0].split("-")[0].lower() in {"typer", "rich", "moto", "fakesnow", "pytest", "uvicorn"}]


@pytest.mark.stack
def test_bytecode_is_shipped_for_python_3_11_beside_each_source_and_never_checked_against_it(artefact):
    # /var/task is read-only: Python can write no bytecode there, so it ships, compiled from the shipped
    # sources (nothing from the build machine's own caches) and valid without the sources' times.
    manifest, names, unpacked = artefact
    shipped = set(names)
    cached = [n for n in names if "/__pycache__/" in n or n.startswith("__pycache__/")]
    assert manifest["bytecode"] and cached
    for name in cached:
        folder, _, file = name.rpartition("__pycache__/")
        module, _, tag = file.removesuffix(".pyc").rpartition(".")
        assert tag == "cpython-311" and file.endswith(".pyc"), name
        assert f"{folder}{module}.py" in shipped, name
    assert {"widf_loader/__pycache__/handler.cpython-311.pyc", "botocore/__pycache__/client.cpython-311.pyc"} <= shipped
    header = (unpacked / "widf_loader" / "__pycache__" / "handler.cpython-311.pyc").read_bytes()[:8]
    assert int.from_bytes(header[4:8], "little") == 0b01  # hash-based, source never checked (PEP 552)


@pytest.mark.stack
def test_botocore_ships_the_models_and_endpoints_of_the_services_the_function_calls(artefact):
    _, names, unpacked = artefact
    models = {n.split("/")[2] for n in names if n.startswith("botocore/data/") and n.count("/") > 2}
    assert models == {"s3", "sts"}
    endpoints = json.loads((unpacked / "botocore" / "data" / "endpoints.json").read_bytes())
    assert {p["partition"] for p in endpoints["partitions"]} >= {"aws", "aws-cn", "aws-us-gov"}
    assert all(set(p["services"]) <= {"s3", "sts"} for p in endpoints["partitions"])
    assert {"s3", "sts"} <= set(endpoints["partitions"][0]["services"])


def s3_calls_of_the_loader() -> set[str]:
    """The S3 client methods widf_loader's source calls: every `s3.<method>(...)`."""
    return {
        node.func.attr
        for path in LOADER.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "s3"
    }


def test_the_trimmed_s3_model_keeps_every_operation_the_loader_calls():
    # The local stack runs the untrimmed dependencies, so only this notices a call the artefact's client lacks.
    kept = next(
        ast.literal_eval(node.value)
        for node in ast.parse(PACKAGER.read_text()).body
        if isinstance(node, ast.Assign) and [t.id for t in node.targets if isinstance(t, ast.Name)] == ["S3_OPERATIONS"]
    )
    assert set(kept) == {"GetObject", "CopyObject"}
    assert s3_calls_of_the_loader() == {botocore.xform_name(operation) for operation in kept}  # the client's method names


@pytest.mark.stack
def test_native_code_is_built_for_lambdas_linux_x86_64(artefact):
    _, names, unpacked = artefact
    libraries = [n for n in names if n.endswith(".so") or ".so." in n]
    assert libraries, "the connector, cryptography and orjson ship compiled code"
    for name in libraries:
        header = (unpacked / name).read_bytes()[:20]
        assert header[:4] == b"\x7fELF", name
        assert int.from_bytes(header[18:20], "little") == ELF_MACHINES["x86_64"], name
    assert not [n for n in libraries if ".cpython-" in n and ".cpython-311-" not in n]


LAMBDA_GLIBC = (2, 26)  # Amazon Linux 2, which Lambda's python3.11 runs on


def required_glibc(library: Path) -> tuple[int, int]:
    """The newest glibc version a shared library requires (its ELF version needs; weak ones excepted)."""
    dump = subprocess.run(["objdump", "-p", str(library)], capture_output=True, text=True, check=True).stdout
    needed = [
        tuple(map(int, line.split("GLIBC_")[1].split(".")[:2]))
        for line in dump.splitlines()
        if "GLIBC_" in line and line.split()[1] != "0x02"
    ]  # flag 0x02: VER_FLG_WEAK
    return max(needed, default=(0, 0))


@pytest.mark.stack
def test_native_code_loads_on_lambdas_glibc(artefact):
    # Why the artefact ships connector 4.x: 5.x's core requires GLIBC_2.28 (measured on 5.2.0), so on the
    # python3.11 runtime its import would fail at every cold start, which no local test would see.
    _, names, unpacked = artefact
    libraries = [n for n in names if n.endswith(".so") or ".so." in n]
    too_new = {name: required_glibc(unpacked / name) for name in libraries if required_glibc(unpacked / name) > LAMBDA_GLIBC}
    assert too_new == {}
    assert "snowflake_connector_python-4.8.1.dist-info/METADATA" in names


def test_the_glibc_check_would_notice_connector_5s_core():
    core = next(Path(sys.prefix).glob("lib/python3.11/site-packages/snowflake/connector/_core/sf_core_python*.so"))  # the tools' 5.x
    assert required_glibc(core) == (2, 28)


@pytest.mark.stack
def test_the_handler_imports_and_answers_from_the_artefact_alone(artefact):
    manifest, _, unpacked = artefact
    runs = [probe(unpacked) for _ in range(3)]
    assert runs[0]["elsewhere"] == [], "imported from outside the artefact and the standard library"
    assert runs[0]["handler"] == str(unpacked / "widf_loader" / "handler.py")
    assert runs[0]["answer"] == {"batchItemFailures": []}
    assert runs[0]["compiled_here"] == [], "imported without shipped bytecode"
    assert runs[0]["clients"] == ["https://s3.eu-west-1.amazonaws.com", "https://sts.us-east-1.amazonaws.com", "aws-cn"]
    assert runs[0]["s3_operations"] == ["copy_object", "get_object"] == sorted(s3_calls_of_the_loader())
    assert [url.split("?")[0] for url in runs[0]["presigned"]] == ["https://s3.amazonaws.com/b/k", "https://s3.amazonaws.com/b/q/k"]
    assert manifest["unpacked_bytes"] < LAMBDA_UNZIPPED_LIMIT
    cold_import_ms = statistics.median(r["import_ms"] for r in runs)
    print(
        f"\nartefact: {manifest['unpacked_bytes'] / 1e6:.1f} MB unpacked, {manifest['zip_bytes'] / 1e6:.1f} MB zipped; "
        f"handler cold import (shipped bytecode only) median of 3: {cold_import_ms:.0f} ms"
    )


@pytest.mark.stack
def test_every_module_of_the_loader_imports_from_the_artefact_alone(artefact):
    _, names, unpacked = artefact
    modules = sorted(
        n.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        for n in names
        if n.startswith("widf_loader/") and n.endswith(".py") and "/__pycache__/" not in n
    )
    assert {"widf_loader", "widf_loader.handler", "widf_loader.warehouse"} <= set(modules)
    found = probe(unpacked, MODULES_PROBE, *modules)
    assert sorted(found) == modules
    assert {name: file for name, file in found.items() if not file.startswith(str(unpacked / "widf_loader") + os.sep)} == {}


@pytest.mark.stack
def test_a_second_build_reuses_the_artefact(artefact):
    manifest, _, _ = artefact
    zip_path = ROOT / manifest["artefact"]
    before = zip_path.stat().st_mtime_ns
    result, again = build("x86_64")
    assert "up to date" in result.stdout
    assert zip_path.stat().st_mtime_ns == before and again["inputs"] == manifest["inputs"]


def unloadable_on_lambda(arch: str) -> list[str]:
    """Locked core dependencies with no wheel that Lambda's python3.11 (Amazon Linux 2, glibc 2.26) can load on `arch`,
    read from the wheels uv.lock lists."""
    machine = {"x86_64": "x86_64", "arm64": "aarch64"}[arch]
    platforms = [f"manylinux_2_{minor}_{machine}" for minor in range(26, 4, -1)]
    platforms += [f"manylinux{legacy}_{machine}" for legacy in ("2014", "2010", "1")] + ["any"]
    loadable = set(cpython_tags((3, 11), platforms=platforms)) | set(compatible_tags((3, 11), "cp311", platforms))
    lock = {
        (normalise(f"{p['name']}=={p['version']}")): p.get("wheels", []) for p in tomllib.loads((ROOT / "uv.lock").read_text())["package"]
    }
    return sorted(
        requirement
        for requirement in locked_core_dependencies()
        if not any(set(parse_wheel_filename(w["url"].rsplit("/", 1)[1])[3]) & loadable for w in lock[requirement])
    )


@pytest.mark.stack
def test_arm64_ships_native_code_for_graviton_or_names_what_cannot_run_there(tmp_path):
    unloadable = unloadable_on_lambda("arm64")
    command = [sys.executable, str(PACKAGER), "--arch", "arm64", "--dist", str(tmp_path)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    if unloadable:  # never ship a wheel the runtime cannot load, nor one built for this machine
        assert result.returncode != 0
        assert [r for r in unloadable if r in result.stderr], result.stderr
        return
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(tmp_path / "widf-loader-lambda.zip") as archive:
        libraries = [n for n in archive.namelist() if n.endswith(".so")]
        machines = {int.from_bytes(archive.read(n)[18:20], "little") for n in libraries}
    assert machines == {ELF_MACHINES["arm64"]}


def test_every_locked_core_dependency_loads_on_lambda_x86_64():
    assert unloadable_on_lambda("x86_64") == []


@pytest.mark.stack
def test_the_loaders_own_files_in_the_artefact_hold_no_secret(artefact):
    # The third-party packages are the locked dependencies, shipped as released; their docs and
    # tests carry example keys (boto3's documented example key) that a scanner flags by design.
    from test_keyless import secrets_in

    _, names, unpacked = artefact
    ours = [unpacked / n for n in names if n.startswith("widf_loader/") and not n.endswith("/")]
    assert len(ours) > 10
    assert secrets_in(ours) == []
