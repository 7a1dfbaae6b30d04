"""artel's Python child: runs a Celery app's tasks for an artel worker.

Started by `artel worker --python MODULE:APP` (never by hand) as
`python child.py serve MODULE:APP`, with ARTEL_POOL_CHILD naming the worker's socket;
`python child.py list MODULE:APP` prints the app's tasks and their options as JSON.

Frames both ways: a 4-byte big-endian length, then JSON. A call is
{"task", "args": {"id", "task", "args", "kwargs", "retries", "soft_time_limit", "request"}}; the answer is
{"Ok": value} or {"Err": failure}, the failure a JSON string of {"exc_type",
"message", "traceback", "retry_after_ms"}. The worker does the rest: broker, acks,
results, retries (`self.retry()` asks it for one), limits and events.
"""
import importlib
import json
import os
import signal
import socket
import struct
import sys
import traceback


def load(spec):
    """The Celery app `MODULE:APP` names, imported as `celery -A` would."""
    module, _, attr = spec.partition(":")
    sys.path.insert(0, os.getcwd())
    app = getattr(importlib.import_module(module), attr or "app")
    app.loader.import_default_modules()
    app.finalize(auto=True)
    return app


def tasks(app):
    """The app's own tasks (not Celery's built-ins) with the options the worker applies."""
    described = []
    for name, task in sorted(app.tasks.items()):
        if name.startswith("celery."):
            continue
        described.append({
            "name": name,
            "max_retries": task.max_retries,
            "rate_limit": task.rate_limit,
            "time_limit": task.time_limit,
            "soft_time_limit": task.soft_time_limit,
        })
    return described


class RetryAsked(Exception):
    """`self.retry()` inside a task: the worker publishes the retry, durably."""

    def __init__(self, exc, countdown):
        super().__init__(exc)
        self.exc = exc
        self.countdown = countdown


def _retry(self, args=None, kwargs=None, exc=None, throw=True, eta=None, countdown=None, max_retries=None,
           **options):
    """Celery's `Task.retry`, except that the worker publishes the retry: past
    `max_retries` the task fails with `exc` (or MaxRetriesExceededError), as in Celery."""
    from celery.exceptions import MaxRetriesExceededError

    limit = self.max_retries if max_retries is None else max_retries
    if limit is not None and self.request.retries >= limit:
        if exc is not None:
            raise exc
        raise MaxRetriesExceededError(f"Can't retry {self.name}[{self.request.id}] args:{self.request.args} "
                                      f"kwargs:{self.request.kwargs}")
    delay = countdown if countdown is not None else (self.default_retry_delay or 0)
    raise RetryAsked(exc, delay)


def failure(exc_type, message, trace=None, retry_after_ms=None):
    fields = {"exc_type": exc_type, "message": message}
    if trace:
        fields["traceback"] = trace
    if retry_after_ms is not None:
        fields["retry_after_ms"] = int(retry_after_ms)
    return {"Err": json.dumps(fields)}


def run(app, call):
    from celery.app.task import Context
    from celery.exceptions import Ignore

    task = app.tasks.get(call.get("task"))
    if task is None:
        return failure("NotRegistered", repr(call.get("task")))
    args, kwargs = call.get("args") or [], call.get("kwargs") or {}
    request = Context(call.get("request") or {}, id=call.get("id"), task=task.name, args=args, kwargs=kwargs,
                      retries=call.get("retries", 0), hostname=os.environ.get("ARTEL_WORKER_NAME"),
                      called_directly=False, is_eager=False)
    task.request_stack.push(request)
    soft = call.get("soft_time_limit")
    try:
        if soft:
            signal.setitimer(signal.ITIMER_REAL, soft)
        value = task.run(*args, **kwargs)
        json.dumps(value)
        return {"Ok": value}
    except Ignore:
        return failure("Ignore", "")
    except RetryAsked as asked:
        message = f"Retry in {asked.countdown}s" + (f": {asked.exc!r}" if asked.exc else "")
        return failure("Retry", message, retry_after_ms=asked.countdown * 1000)
    except Exception as exc:
        # Celery keeps an exception's arguments: KeyError('missing') reads back as such.
        if not exc.args:
            message = ""
        elif len(exc.args) == 1 and isinstance(exc.args[0], str):
            message = exc.args[0]
        else:
            message = str(exc)
        return failure(type(exc).__name__, message, traceback.format_exc())
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        task.request_stack.pop()


def _soft_limit(signum, frame):
    from celery.exceptions import SoftTimeLimitExceeded

    raise SoftTimeLimitExceeded()


def serve(app, path):
    from celery import Task

    Task.retry = _retry
    # The task's soft time limit, as Celery's prefork pool raises it in the task.
    signal.signal(signal.SIGALRM, _soft_limit)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(path)
    reader = conn.makefile("rb")
    while True:
        head = reader.read(4)
        if len(head) < 4:
            return
        (length,) = struct.unpack(">I", head)
        request = json.loads(reader.read(length))
        reply = json.dumps(run(app, request.get("args") or {})).encode()
        conn.sendall(struct.pack(">I", len(reply)) + reply)


if __name__ == "__main__":
    command, spec = sys.argv[1], sys.argv[2]
    app = load(spec)
    if command == "list":
        print(json.dumps(tasks(app)))
    else:
        serve(app, os.environ["ARTEL_POOL_CHILD"])
