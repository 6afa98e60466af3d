"""Build dist/widf-loader-lambda.zip: the function and its locked core
dependencies, for the Lambda runtime (python3.11), without Docker.

    python infra/package.py [--arch x86_64|arm64]        (make package [ARCH=arm64])
    python infra/package.py --dependencies-only          (prints where they are installed)
    python infra/package.py --connector 5                (a measurement build, see CONNECTORS)

The dependencies are the lock file's core dependencies (no extras), installed
by uv as manylinux2014 wheels for the target architecture - never built from
source, so what is built here is what runs in Lambda. They are cached under
build/ keyed on uv.lock and the architecture; the zip itself is rebuilt only
when one of its inputs changed (dist/widf-loader-lambda.json records them).
The local stack's runner runs the function from that same dependency
directory, beside the package's source (`--dependencies-only`).

Two things are shaped for cold starts (bench/bench.py measures them): every module
ships compiled for python3.11 (--no-bytecode leaves that out), and botocore keeps the
models of the services the function calls, not all ~450 (of S3's, the operations it calls).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import py_compile
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build"
DIST = ROOT / "dist"
ARTEFACT_NAME = "widf-loader-lambda.zip"  # infra/template.yaml's CodeUri
MANIFEST_NAME = "widf-loader-lambda.json"
# The whole package ships: widf_loader is the function and nothing else (the administrator's tools are
# widf_ops, the local stack widf_local, the command widf_cli; none of them ships).
PACKAGE = ROOT / "src" / "widf_loader"
PYTHON_VERSION = "3.11"
PLATFORMS = {"x86_64": "x86_64-manylinux2014", "arm64": "aarch64-manylinux2014"}


@dataclass(frozen=True)
class Connector:
    extra: str  # pyproject's extra naming the connector
    glibc: str  # the oldest glibc its wheels may need: manylinux's tag
    suffix: str  # in the zip's and the manifest's names


# "4" is the artefact infra/template.yaml deploys: Lambda's python3.11 runs on Amazon Linux 2 (glibc 2.26),
# and connector 5.x's core needs glibc 2.28. "5" builds the same function with 5.x for the benchmark to
# measure side by side: what the artefact becomes on an Amazon Linux 2023 runtime (python3.12+), not
# deployable with this template.
CONNECTORS = {"4": Connector("lambda", "manylinux2014", ""), "5": Connector("connector5", "manylinux_2_28", "-connector5")}
STRIPPED_DIRECTORIES = {"__pycache__", "tests"}
# The AWS services whose botocore models ship: S3 (the handler reads the objects) and STS (the Snowflake
# connector's WIDF attestation signs an STS request, and makes an STS client for role chains). botocore
# otherwise ships hundreds of models, a large share of the unpacked artefact, and lists every one of their
# folders each time a client is made. A client for any other service fails with UnknownServiceError: add it
# here. The artefact's size is measured by `make bench` (docs/performance.md).
BOTOCORE_SERVICES = ("s3", "sts")
# botocore's endpoints.json (over a megabyte) is trimmed to the same services, keeping every partition and
# region: each cold start parses it twice (the handler's S3 client and the connector's attestation session
# each load their own), and its objects stay in botocore's cache, where every garbage collection walks them.
ENDPOINTS = "botocore/data/endpoints.json"
# The S3 model (1.3 MB of JSON, over a hundred operations) keeps only the operations the function calls and
# the shapes they use: the handler's S3 client parses it at every cold start. A test holds this list to the
# calls in widf_loader's source; any other operation is no method of the client in Lambda (AttributeError),
# though the local stack, which runs the untrimmed dependencies, would have it.
S3_MODEL = "botocore/data/s3/2006-03-01/service-2.json.gz"
S3_OPERATIONS = ("GetObject", "CopyObject")  # reader.open_object; Pipeline.quarantine
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)  # a reproducible zip: same inputs, same bytes


class PackageError(Exception):
    pass


def uv() -> str:
    found = shutil.which("uv", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if not found:
        raise PackageError("uv is not installed: run `make install` (it installs uv into .venv).")
    return found


def digest(*paths: Path) -> str:
    h = hashlib.sha256()
    for path in paths:
        h.update(path.relative_to(ROOT).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def shipped_sources() -> list[Path]:
    return sorted(
        p for p in PACKAGE.rglob("*") if p.is_file() and p.suffix != ".pyc" and not STRIPPED_DIRECTORIES & set(p.relative_to(PACKAGE).parts)
    )


def dependencies(arch: str, lock_digest: str, connector: Connector = CONNECTORS["4"]) -> Path:
    """The locked core dependencies as installed for Lambda, cached per lock file, architecture and connector."""
    layer = BUILD / "lambda-dependencies" / f"{arch}{connector.suffix}-{lock_digest[:16]}"
    if layer.is_dir():
        return layer
    BUILD.mkdir(exist_ok=True)
    requirements = BUILD / f"lambda-requirements-{arch}{connector.suffix}.txt"
    run(
        [
            uv(),
            "export",
            "--project",
            str(ROOT),
            "--frozen",
            "--no-dev",
            "--extra",
            connector.extra,
            "--no-emit-project",
            "--no-hashes",
            "--quiet",
            "-o",
            str(requirements),
        ]
    )
    staging = layer.with_name(f"{layer.name}.partial-{os.getpid()}")  # builds running side by side never share one
    install = [
        uv(),
        "pip",
        "install",
        "--quiet",
        "--target",
        str(staging),
        "--python-version",
        PYTHON_VERSION,
        "--python-platform",
        PLATFORMS[arch].replace("manylinux2014", connector.glibc),
        "--only-binary",
        ":all:",
        "--no-deps",
        "-r",
        str(requirements),
    ]
    result = subprocess.run(install, capture_output=True, text=True)
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        if found := re.search(r"Because (\S+) has no usable wheels", result.stderr):
            # Building from source would build for this machine, not for Lambda's.
            raise PackageError(
                f"{found.group(1)} has no {arch} wheel that Lambda's python3.11 (Amazon Linux 2, glibc 2.26: "
                f"{PLATFORMS[arch]} or older) can load; the artefact cannot be built for {arch} from this lock."
            )
        raise PackageError(f"uv pip install failed: {(result.stderr.strip().splitlines() or ['no output'])[-1]}")
    try:
        staging.rename(layer)
    except OSError:  # another build finished the same layer first
        shutil.rmtree(staging)
    for stale in layer.parent.glob(f"{arch}{connector.suffix}-*"):
        if stale != layer and ".partial-" not in stale.name:
            shutil.rmtree(stale, ignore_errors=True)  # an older lock's layer
    return layer


def run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        last_line = ((result.stderr or result.stdout).strip().splitlines() or ["no output"])[-1]
        raise PackageError(f"{' '.join(command[:3])} failed: {last_line}")


def unused_botocore_model(relative: Path) -> bool:
    """A file under botocore/data/<service>/ for a service the function never calls."""
    parts = relative.parts
    return parts[:2] == ("botocore", "data") and len(parts) > 3 and parts[2] not in BOTOCORE_SERVICES


def shipped_files(layer: Path) -> list[tuple[Path, str]]:
    """(file, name in the zip), dependencies then the loader."""
    files = []
    for path in sorted(layer.rglob("*")):
        relative = path.relative_to(layer)
        if (
            path.is_file()
            and relative.parts[0] != "bin"
            and not STRIPPED_DIRECTORIES & set(relative.parts)
            and not unused_botocore_model(relative)
        ):
            files.append((path, relative.as_posix()))
    files += [(path, "widf_loader/" + path.relative_to(PACKAGE).as_posix()) for path in shipped_sources()]
    return files


def trimmed_endpoints(endpoints: dict) -> dict:
    """botocore's endpoints.json, holding the endpoints of BOTOCORE_SERVICES only."""
    for partition in endpoints["partitions"]:
        partition["services"] = {service: v for service, v in partition["services"].items() if service in BOTOCORE_SERVICES}
    return endpoints


def trimmed_model(model: dict, operations: tuple[str, ...]) -> dict:
    """A botocore service model with these operations only, and every shape they reach (their input, output
    and errors, and the members, list members and map keys and values of those, transitively)."""
    kept = {name: model["operations"][name] for name in operations}
    reached: set[str] = set()
    waiting = [ref["shape"] for op in kept.values() for ref in (op.get("input"), op.get("output"), *op.get("errors", ())) if ref]
    while waiting:
        name = waiting.pop()
        if name in reached:
            continue
        reached.add(name)
        shape = model["shapes"][name]
        waiting += [member["shape"] for member in shape.get("members", {}).values()]
        waiting += [shape[part]["shape"] for part in ("member", "key", "value") if part in shape]
    return model | {"operations": kept, "shapes": {name: shape for name, shape in model["shapes"].items() if name in reached}}


def trimmed_botocore_data(files: list[tuple[Path, str]], into: Path) -> list[tuple[Path, str]]:
    """The files, with botocore's endpoints.json and S3 model trimmed to what the function calls (written under
    `into`, under the same names in the zip)."""
    trimmed = []
    for path, name in files:
        if name in (ENDPOINTS, S3_MODEL):
            into.mkdir(parents=True, exist_ok=True)
            if name == ENDPOINTS:
                data = json.dumps(trimmed_endpoints(json.loads(path.read_bytes())), separators=(",", ":")).encode()
            else:
                model = trimmed_model(json.loads(gzip.decompress(path.read_bytes())), S3_OPERATIONS)
                data = gzip.compress(json.dumps(model, separators=(",", ":")).encode(), mtime=0)
            path = into / name.replace("/", "-")
            path.write_bytes(data)
        trimmed.append((path, name))
    return trimmed


def bytecode(files: list[tuple[Path, str]], into: Path) -> list[tuple[Path, str]]:
    """Compiled modules for python3.11, beside their sources in __pycache__/ as Python looks for them.

    Lambda's /var/task is read-only, so without them every cold start compiles every module it
    imports (the handler's import took ~1.1 s instead of ~0.4 s). UNCHECKED_HASH: the files are
    never checked against their sources, whose times the zip does not keep; the zip is rebuilt
    whenever a source changes, so the two cannot drift apart."""
    if sys.implementation.cache_tag != "cpython-311":
        raise PackageError(f"--bytecode needs CPython 3.11 to build (Lambda's python3.11), not {sys.implementation.cache_tag}.")
    shutil.rmtree(into, ignore_errors=True)
    compiled = []
    for path, name in files:
        if not name.endswith(".py"):
            continue
        folder, _, module = name.rpartition("/")
        target = f"{folder + '/' if folder else ''}__pycache__/{module[:-3]}.cpython-311.pyc"
        try:
            py_compile.compile(
                str(path),
                cfile=str(into / target),
                dfile=name,
                doraise=True,
                invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
            )
        except py_compile.PyCompileError:
            continue  # not Python 3.11 source (a template or a test fixture): shipped as is
        compiled.append((into / target, target))
    return compiled


def write_zip(files: list[tuple[Path, str]], target: Path) -> None:
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path, name in files:
            info = zipfile.ZipInfo(name, ZIP_TIMESTAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            executable = path.stat().st_mode & 0o111
            info.external_attr = (0o100755 if executable else 0o100644) << 16  # readable by Lambda's user
            archive.writestr(info, path.read_bytes())
    partial.replace(target)


def build(arch: str, with_bytecode: bool = True, dist: Path = DIST, connector: Connector = CONNECTORS["4"]) -> dict:
    if arch not in PLATFORMS:
        raise PackageError(f"ARCH must be one of {', '.join(PLATFORMS)}, not '{arch}'.")
    artefact = dist / ARTEFACT_NAME.replace(".zip", f"{connector.suffix}.zip")
    manifest_file = dist / MANIFEST_NAME.replace(".json", f"{connector.suffix}.json")
    lock_digest = digest(ROOT / "uv.lock")
    inputs = f"{digest(ROOT / 'uv.lock', Path(__file__).resolve(), *shipped_sources())}-{arch}{connector.suffix}{'-bytecode' if with_bytecode else ''}"
    if artefact.exists() and manifest_file.exists():
        manifest = json.loads(manifest_file.read_text())
        if manifest.get("inputs") == inputs:
            return manifest | {"rebuilt": False}
    generated = BUILD / f"lambda-generated-{os.getpid()}"  # files made for this zip alone
    files = trimmed_botocore_data(shipped_files(dependencies(arch, lock_digest, connector)), generated)
    if with_bytecode:
        files += bytecode(files, generated / "bytecode")
    unpacked_bytes = sum(path.stat().st_size for path, _ in files)
    dist.mkdir(parents=True, exist_ok=True)
    write_zip(files, artefact)
    shutil.rmtree(generated, ignore_errors=True)
    manifest = {
        "artefact": str(artefact.relative_to(ROOT) if artefact.is_relative_to(ROOT) else artefact),
        "architecture": arch,
        "python": PYTHON_VERSION,
        "connector_extra": connector.extra,
        "bytecode": with_bytecode,
        "files": len(files),
        "unpacked_bytes": unpacked_bytes,
        "zip_bytes": artefact.stat().st_size,
        "uv_lock_sha256": lock_digest,
        "inputs": inputs,
    }
    partial = manifest_file.with_name(f"{manifest_file.name}.partial-{os.getpid()}")
    partial.write_text(json.dumps(manifest, indent=2) + "\n")
    partial.replace(manifest_file)
    return manifest | {"rebuilt": True}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default=os.environ.get("ARCH") or "x86_64", help="x86_64 (default) or arm64")
    parser.add_argument(
        "--bytecode", action=argparse.BooleanOptionalAction, default=True, help="ship compiled modules for faster cold starts (default: on)"
    )
    parser.add_argument("--dist", type=Path, default=DIST, help="where the zip goes (default: dist/)")
    parser.add_argument("--dependencies-only", action="store_true", help="install only the locked dependencies and print their directory")
    parser.add_argument(
        "--connector", choices=CONNECTORS, default="4", help="4 (default): the deployed artefact; 5: a build to measure only"
    )
    args = parser.parse_args()
    try:
        if args.dependencies_only:
            print(dependencies(args.arch, digest(ROOT / "uv.lock"), CONNECTORS[args.connector]))
            return 0
        manifest = build(args.arch, args.bytecode, args.dist.resolve(), CONNECTORS[args.connector])
    except PackageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    state = "built" if manifest["rebuilt"] else "up to date"
    print(
        f"{manifest['artefact']} {state}: {manifest['architecture']}, {manifest['files']} files, "
        f"{manifest['unpacked_bytes'] / 1e6:.1f} MB unpacked, {manifest['zip_bytes'] / 1e6:.1f} MB zipped"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
