"""One warm Lambda "container": imports the handler once, then runs invocations.

Run as a script by the function's own interpreter, with the function's code
and dependencies as its only path (see stack.FunctionLaunch), so it imports the
standard library only: nothing of the local stack, nothing of ours.

The runner writes one JSON invocation per line on stdin and reads one JSON
result per line from the result pipe, so the handler's own output (stdout,
stderr) stays free to be its log, as in Lambda.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any, TextIO

# Written after each invocation's output, so the runner knows every line of it is shipped before it logs END
# (as Lambda's own log lines always follow the function's). It starts with a record separator, which no log line carries.
END_OF_OUTPUT = "\x1ewidf-loader-worker: end of invocation output"


@dataclass
class LambdaContext:
    aws_request_id: str
    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    log_group_name: str
    log_stream_name: str
    deadline_epoch: float
    function_version: str = "$LATEST"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline_epoch - time.time()) * 1000))


class InitError(Exception):
    """The handler could not be loaded; `error` is what the runtime reports for it."""

    def __init__(self, error: dict, cause: BaseException):
        super().__init__(error["errorMessage"])
        self.error, self.cause = error, cause


def load_handler(path: str) -> Any:
    """Import the handler as the Python runtime's bootstrap does (`_get_handler`), with its error types: an
    ImportError is Runtime.ImportModuleError, an exception the module raised while loading is reported as
    itself (`build_fault_result`), a missing function is Runtime.HandlerNotFound."""
    module_name, _, function_name = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise InitError(
            {"errorType": "Runtime.ImportModuleError", "errorMessage": f"Unable to import module '{module_name}': {e}"}, e
        ) from e
    except SyntaxError as e:
        raise InitError(
            {"errorType": "Runtime.UserCodeSyntaxError", "errorMessage": f"Syntax error in module '{module_name}': {e}"}, e
        ) from e
    except Exception as e:  # whatever the module raised while loading is the init error, as in Lambda
        raise InitError({"errorType": type(e).__name__, "errorMessage": str(e)}, e) from e
    try:
        return getattr(module, function_name)
    except AttributeError as e:
        raise InitError(
            {"errorType": "Runtime.HandlerNotFound", "errorMessage": f"Handler '{function_name}' missing on module '{module_name}'"}, e
        ) from e


def init(handler_path: str, results: TextIO) -> Any:
    """Load the handler and tell the runner on the result pipe how the init went, as the runtime tells Lambda:
    a failed init is logged (`[ERROR] <type>: <message>` and the traceback), posted as the init error, and the
    runtime exits."""
    started = time.perf_counter()
    try:
        handler = load_handler(handler_path)
    except InitError as failed:
        stack = traceback.extract_tb(failed.cause.__traceback__)
        frames = stack[next((i for i, f in enumerate(stack) if f.filename != __file__), len(stack)) :]  # the bootstrap's own left out
        print(f"[ERROR] {failed.error['errorType']}: {failed.error['errorMessage']}")
        print("Traceback (most recent call last):")
        print("".join(traceback.format_list(frames)), end="", flush=True)
        print(END_OF_OUTPUT, flush=True)
        results.write(json.dumps({"init": "error", "duration_ms": (time.perf_counter() - started) * 1000, **failed.error}) + "\n")
        sys.exit(1)
    results.write(json.dumps({"init": "ok", "duration_ms": (time.perf_counter() - started) * 1000}) + "\n")
    return handler


def main(handler_path: str, result_fd: int) -> None:
    results = os.fdopen(result_fd, "w", buffering=1)
    handler = init(handler_path, results)
    for line in sys.stdin:
        invocation = json.loads(line)
        context = LambdaContext(
            aws_request_id=invocation["request_id"],
            function_name=os.environ["AWS_LAMBDA_FUNCTION_NAME"],
            memory_limit_in_mb=int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")),
            invoked_function_arn=invocation["function_arn"],
            log_group_name=os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", ""),
            log_stream_name=os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", ""),
            deadline_epoch=invocation["deadline_epoch"],
        )
        try:
            reply = {"ok": True, "result": handler(invocation["event"], context)}
        except Exception as e:  # noqa: BLE001 - an unhandled error is the invocation's result, as in Lambda
            traceback.print_exc()
            reply = {"ok": False, "errorType": type(e).__name__, "errorMessage": str(e)}
        sys.stderr.flush()
        print(END_OF_OUTPUT, flush=True)  # stdout and stderr share one pipe: this comes after both
        results.write(json.dumps(reply, default=str) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
