"""The local stack: one background process hosting local AWS (moto), the
Snowflake gateway and the Lambda runner, described by `.local/stack.json`.

They share a process because the gateway verifies attestation signatures
with the secrets local STS issued, which only moto's own memory holds.

This module starts, stops and describes that process, and imports nothing
but the standard library, so the command can use it from the project's
environment. The process itself (`widf_local.serve`) runs from the local
stack's own environment, `local/.venv` (see `local/pyproject.toml`).
"""

from __future__ import annotations

import compileall
import fcntl
import hashlib
import json
import os
import pwd
import py_compile
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

SRC = Path(__file__).resolve().parents[1]
# The stack's own interpreter: `make install` creates it from local/uv.lock.
STACK_PYTHON = SRC.parent / "local" / ".venv" / "bin" / "python"
ADMIN_USER = "WIDF_LOCAL_ADMIN"
GATEWAY_HOST = "localhost"
STARTUP_TIMEOUT_SECONDS = 60
# When the stack runs as root (as CI does), the function runs as this user, so it can read neither the stack's
# files (stack.json holds the admin password) nor its memory. A stack of any other user cannot switch users.
FUNCTION_USER = "nobody"
# The container's bootstrap, a copy of this script run by the function's interpreter: it imports only the
# standard library. -S: no site-packages (nor their .pth files; the project's editable install would put all of
# src/ on the path), so the function imports only its code and dependencies (PYTHONPATH) and the standard
# library; -P: not the script's own folder either.
BOOTSTRAP_SOURCE = Path(__file__).with_name("worker.py")
FUNCTION_PYTHON_FLAGS = ("-S", "-P")


class StackError(Exception):
    """The local stack is not in the state the command needs."""


@dataclass(frozen=True)
class FunctionRuntime:
    """What the runner runs the function with, as Lambda has a runtime and a code package.

    The interpreter is the caller's (the project's, the one the loader is locked for), run
    without its site-packages (or the system's of its version, for a function user who cannot
    run it); the code is the function's package, copied alone into the function's root at every
    start (its source while developing: an edit shows in the next `local up`), and the directory
    holding the package's locked dependencies as the artefact carries them.
    """

    python: str
    package: Path
    dependencies: Path


@dataclass(frozen=True)
class FunctionLaunch:
    """How the runner starts the function's containers, prepared by `start` outside the state directory.

    `python` runs `bootstrap` with FUNCTION_PYTHON_FLAGS as the OS user `user` (group `group`, no other groups;
    None: the stack's own user), in `task_root` (the function's package alone, as Lambda's /var/task), with the
    import path `path` (the task root, then the dependencies) and its own HOME, `home`.
    """

    python: str
    bootstrap: str
    task_root: str
    path: str
    home: str
    user: int | None = None
    group: int | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> FunctionLaunch:
        return cls(**json.loads(text))

    def popen(self, arguments: list[str], env: dict[str, str], **options) -> subprocess.Popen:
        """The function's interpreter run with `arguments`, as the function runs: its user, directory and flags."""
        identity: dict = {} if self.user is None else {"user": self.user, "group": self.group, "extra_groups": []}
        return subprocess.Popen([self.python, *FUNCTION_PYTHON_FLAGS, *arguments], env=env, cwd=self.task_root, **identity, **options)


@dataclass(frozen=True)
class StackInfo:
    pid: int
    aws_endpoint: str
    region: str
    account_id: str
    snowflake_host: str
    snowflake_port: int
    snowflake_account: str
    admin_user: str
    # Generated per `local up`, kept under .local/ only, and never printed: not in repr() or str(), so not in a traceback.
    admin_password: str = field(repr=False)


@dataclass(frozen=True)
class StackPaths:
    state_dir: Path

    @property
    def stack_json(self) -> Path:
        return self.state_dir / "stack.json"

    @property
    def function_spec(self) -> Path:
        return self.state_dir / "function.json"

    @property
    def deployment(self) -> Path:
        return self.state_dir / "deployment.json"  # the deployed stack's outputs, OutputKey -> OutputValue

    @property
    def log_file(self) -> Path:
        return self.state_dir / "stack.log"


def read_stack(paths: StackPaths) -> StackInfo:
    try:
        info = StackInfo(**json.loads(paths.stack_json.read_text()))
    except FileNotFoundError:
        raise StackError("The local stack is not running: start it with `widf-loader local up`.") from None
    if not _alive(info.pid):
        raise StackError(f"The local stack (pid {info.pid}) has stopped: run `widf-loader local down`, then `widf-loader local up`.")
    return info


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """A process that has exited but is not yet reaped: the stack's parent is gone (`local up` returned),
    so init reaps it, when it gets to it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False  # no /proc (macOS), or already reaped
    return stat.rpartition(")")[2].split()[0] == "Z"


def fault_plan(info: StackInfo, plan: dict | None = None) -> dict:
    """The stack's fault plan and what it has injected; with `plan`, apply that plan first."""
    import urllib.request

    url = f"http://{info.snowflake_host}:{info.snowflake_port}/local/faults"
    request = urllib.request.Request(url, data=json.dumps(plan).encode(), method="PUT") if plan is not None else url
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def start(paths: StackPaths, function: FunctionRuntime) -> StackInfo:
    """Start the stack in the background and wait until it answers; the runner runs `function`."""
    try:
        return read_stack(paths)
    except StackError:
        pass
    if not os.access(STACK_PYTHON, os.X_OK):
        raise StackError(f"The local stack's environment is missing ({STACK_PYTHON.parent.parent}): run `make install`.")
    paths.state_dir.mkdir(parents=True, exist_ok=True)
    for stale in (paths.stack_json, paths.function_spec, paths.deployment):
        stale.unlink(missing_ok=True)
    launch = function_launch(paths, function)
    log = open(paths.log_file, "ab")  # not `with`: handed to the child, which outlives us
    process = subprocess.Popen(
        [str(STACK_PYTHON), "-m", "widf_local.serve", str(paths.state_dir), launch.to_json()],
        stdout=subprocess.PIPE,
        stderr=log,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )
    assert process.stdout
    ready = _read_line_within(process.stdout, STARTUP_TIMEOUT_SECONDS)
    if ready.strip() != b"READY":
        process.kill()
        raise StackError(f"The local stack did not start; see {paths.log_file}.")
    return read_stack(paths)


def function_launch(paths: StackPaths, function: FunctionRuntime) -> FunctionLaunch:
    """The function's own root, outside the state directory, and how its containers start.

    The root (under the system's temporary directory, written by us only, readable by all) holds the runtime's
    bootstrap, a copy of the function's package made per start (an edit shows in the next `local up`), and the
    function's HOME, owned by the user it runs as; the dependencies are a copy made once per machine. Never the
    package's parent: beside the loader in src/ are the local stack, the administrator's tools and the command,
    none of which a function has; and nothing under the state directory, whose stack.json holds the admin password.
    """
    identity = function_identity()
    base = function_base()
    for stale in base.glob(f"{_function_prefix(paths)}*"):
        shutil.rmtree(stale, ignore_errors=True)
    root = Path(tempfile.mkdtemp(prefix=_function_prefix(paths), dir=base))
    task_root, runtime = root / "task", root / "runtime"
    for folder in (root, task_root, runtime):
        folder.mkdir(exist_ok=True)
        folder.chmod(0o755)  # whatever the umask
    _copy_readable(function.package, task_root / function.package.name)
    _copy_readable(BOOTSTRAP_SOURCE, runtime / "bootstrap.py")
    home = root / "home"
    home.mkdir(mode=0o700)
    if identity is not None:
        os.chown(home, *identity)
    launch = FunctionLaunch(
        python=function.python,
        bootstrap=str(runtime / "bootstrap.py"),
        task_root=str(task_root),
        path=os.pathsep.join([str(task_root), str(_readable_dependencies(base, function.dependencies))]),
        home=str(home),
        user=identity[0] if identity else None,
        group=identity[1] if identity else None,
    )
    return _with_runnable_python(launch)


def function_identity() -> tuple[int, int] | None:
    """(uid, gid) the function runs as: FUNCTION_USER's when the stack runs as root; None (ours) otherwise."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(FUNCTION_USER)
    except KeyError:
        raise StackError(f"The function runs as the user {FUNCTION_USER!r} when the stack runs as root, and there is none.") from None
    return entry.pw_uid, entry.pw_gid


def _function_base_path() -> Path:
    return Path(tempfile.gettempdir()) / f"widf-local-{os.geteuid()}"


def function_base() -> Path:
    """Where functions' roots are kept: a directory of ours in the system's temporary directory, written by us only."""
    base = _function_base_path()
    base.mkdir(mode=0o755, exist_ok=True)
    found = base.lstat()
    if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.geteuid() or found.st_mode & 0o022:
        raise StackError(f"{base} is not a directory only you can write to: remove it, then start the stack again.")
    base.chmod(0o755)
    return base


def _function_prefix(paths: StackPaths) -> str:
    return f"function-{hashlib.sha256(str(paths.state_dir.resolve()).encode()).hexdigest()[:16]}-"


def _copy_readable(source: Path, target: Path) -> None:
    """`source` (a file or a tree, without its bytecode caches) at `target`, readable by all, writable by us only,
    compiled as the artefact ships it (infra/package.py: UNCHECKED_HASH, for a tree nobody writes to)."""
    if source.is_file():
        shutil.copyfile(source, target)
        target.chmod(0o644)
        return
    for folder, folders, files in os.walk(source, followlinks=True):
        folders[:] = [name for name in folders if name != "__pycache__"]
        into = target / Path(folder).relative_to(source)
        into.mkdir(mode=0o755)
        into.chmod(0o755)  # whatever the umask
        for name in files:
            shutil.copyfile(Path(folder) / name, into / name)
            (into / name).chmod(0o755 if (Path(folder) / name).stat().st_mode & stat.S_IXUSR else 0o644)
    compileall.compile_dir(target, quiet=2, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    for folder, _, files in os.walk(target):  # compileall's __pycache__/ folders and files, whatever the umask
        if Path(folder).name == "__pycache__":
            Path(folder).chmod(0o755)
            for name in files:
                (Path(folder) / name).chmod(0o644)


def _readable_dependencies(base: Path, dependencies: Path) -> Path:
    """A copy of `dependencies` the function's user can read, made once per machine for each directory: the copy
    is named by the directory's path and inode (a rebuilt directory is a new one), and made under a lock, then
    renamed into place, because stacks start side by side."""
    source = dependencies.resolve()
    found = source.stat()
    identity = f"{source}\0{found.st_dev}\0{found.st_ino}"
    cached = base / f"dependencies-{hashlib.sha256(identity.encode()).hexdigest()[:16]}"
    if cached.is_dir():
        return cached
    with open(base / "dependencies.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if cached.is_dir():
            return cached  # another stack made it while we waited
        for record in base.glob("dependencies-*.source"):  # copies of directories that are gone or rebuilt
            if _source_identity(Path(record.read_text().split("\0")[0])) != record.read_text():
                shutil.rmtree(record.with_suffix(""), ignore_errors=True)
                record.unlink()
        for partial in base.glob("dependencies-*.partial"):  # left by a start that was killed: we hold the lock
            shutil.rmtree(partial, ignore_errors=True)
        staging = base / f"{cached.name}.partial"
        _copy_readable(source, staging)
        cached.with_suffix(".source").write_text(identity)
        staging.rename(cached)
    return cached


def _source_identity(source: Path) -> str:
    try:
        found = source.stat()
    except OSError:
        return ""
    return f"{source}\0{found.st_dev}\0{found.st_ino}"


def _with_runnable_python(launch: FunctionLaunch) -> FunctionLaunch:
    """`launch` with an interpreter its user can run, of the same major.minor version as the one asked for.

    The stack's own user runs the interpreter it was given. Another user may not reach it (a pyenv or a venv
    under a home directory only its owner may enter): then the system's Python of that version, whose
    standard library matches the dependencies' ABI (cp311 wheels for any 3.11).
    """
    version_of = "import sys; print('%d.%d' % sys.version_info[:2])"
    if launch.user is None:
        return launch
    asked = subprocess.run([launch.python, "-S", "-c", version_of], capture_output=True, text=True, check=True).stdout.strip()
    candidates = [launch.python, f"/usr/local/bin/python{asked}", f"/usr/bin/python{asked}"]
    for python in candidates:
        candidate = FunctionLaunch(**{**asdict(launch), "python": python})
        try:
            probe = candidate.popen(
                ["-c", version_of], env={"PATH": "/usr/bin:/bin"}, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
            )
        except OSError:
            continue  # not there, or not for this user
        if probe.communicate(timeout=60)[0].strip() == asked:
            return candidate
    raise StackError(
        f"The function runs as {FUNCTION_USER!r}, which can run none of {', '.join(candidates)} (Python {asked}): "
        f"install Python {asked} where every user may run it, and keep {tempfile.gettempdir()} open to all."
    )


def _read_line_within(stream, seconds: float) -> bytes:
    result: list[bytes] = []
    reader = threading.Thread(target=lambda: result.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(seconds)
    return result[0] if result else b""


def stop(paths: StackPaths) -> bool:
    """Stop the stack if it runs; True if there was one to stop."""
    try:
        info = StackInfo(**json.loads(paths.stack_json.read_text()))
    except FileNotFoundError:
        return False
    if _alive(info.pid):
        os.kill(info.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while _alive(info.pid) and time.monotonic() < deadline:
            time.sleep(0.1)  # waiting for another process to exit: no handle to join on
        if _alive(info.pid):
            os.kill(info.pid, signal.SIGKILL)
    for path in (paths.stack_json, paths.function_spec, paths.deployment):
        path.unlink(missing_ok=True)
    for root in _function_base_path().glob(f"{_function_prefix(paths)}*"):
        shutil.rmtree(root, ignore_errors=True)
    return True
