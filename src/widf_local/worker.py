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


def load_handler(path: str):
    module_name, _, function_name = path.rpartition(".")
    return getattr(importlib.import_module(module_name), function_name)


def main(handler_path: str, result_fd: int) -> None:
    handler = load_handler(handler_path)
    results = os.fdopen(result_fd, "w", buffering=1)
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
