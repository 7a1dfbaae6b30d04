"""artel's Python child: runs a Celery app's tasks for an artel worker.

Started by `artel worker --python MODULE:APP` (never by hand) as
`python child.py serve MODULE:APP`, with ARTEL_POOL_CHILD naming the worker's socket;
`python child.py list MODULE:APP` prints the app's tasks and their options as JSON.

Frames both ways: a 4-byte big-endian length, then JSON (Celery's, with kombu's
`__type__` markers for dates, UUIDs and decimals). A call is {"task", "args": {"id",
"task", "args", "kwargs", "retries", "soft_time_limit", "request"}}; the answer is
{"Ok": value} or {"Err": failure}, the failure a JSON string of {"kind", "exc_type",
"exc_module", "message", "traceback", "retry_after_ms"}. The worker does the rest:
broker, acks, results, retries (`self.retry()` asks it for one), limits and events.
"""
import datetime
import importlib
import inspect
import json
import os
import signal
import socket
import struct
import sys

from billiard.einfo import ExceptionInfo
from celery import signals
from celery.app.task import Context
from celery.app.trace import task_has_custom
from celery.exceptions import Ignore, MaxRetriesExceededError, Reject, SoftTimeLimitExceeded
from kombu.exceptions import EncodeError
from kombu.utils import json as kombu_json


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
            # Celery requeues a task whose child died only when it is also acked late.
            "reject_on_worker_lost": bool(task.acks_late and task.reject_on_worker_lost),
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
    limit = self.max_retries if max_retries is None else max_retries
    if limit is not None and self.request.retries >= limit:
        if exc is not None:
            raise exc
        raise MaxRetriesExceededError(f"Can't retry {self.name}[{self.request.id}] args:{self.request.args} "
                                      f"kwargs:{self.request.kwargs}")
    if countdown is None and eta is not None:
        now = datetime.datetime.now(eta.tzinfo)
        countdown = max(0.0, (eta - now).total_seconds())
    delay = countdown if countdown is not None else (self.default_retry_delay or 0)
    raise RetryAsked(exc, delay)


def failure(kind, exc_type, message, module=None, args=None, trace=None, retry_after_ms=None):
    """An `Err` answer: `kind` is how the worker settles it (artel's TaskErrorKind)."""
    fields = {"kind": kind, "exc_type": exc_type, "message": message}
    if module is not None and args is not None:
        fields["exc_module"], fields["exc_args"] = module, args
    if trace:
        fields["traceback"] = trace
    if retry_after_ms is not None:
        fields["retry_after_ms"] = int(retry_after_ms)
    return json.dumps({"Err": kombu_json.dumps(fields)})


def encodable(value):
    """`value` if Celery's JSON encodes it, else its repr, as Celery keeps the arguments
    of an exception."""
    try:
        kombu_json.dumps(value)
        return value
    except Exception:
        return repr(value)


def raised(kind, exc, einfo=None):
    """The failure `exc` stands for, with its class's module and its arguments, so that
    Python clients re-raise the same exception."""
    if not exc.args:
        message = ""
    elif len(exc.args) == 1 and isinstance(exc.args[0], str):
        message = exc.args[0]
    else:
        message = str(exc)
    trace = einfo.traceback if einfo is not None else None
    args = [encodable(arg) for arg in exc.args]
    return failure(kind, type(exc).__name__, message, type(exc).__module__, args, trace)


def arguments_fit(fun, args, kwargs):
    """Whether `args` and `kwargs` bind to the task's parameters: when they do not, the
    TypeError the call raises is bad arguments, not the task's own failure."""
    try:
        inspect.signature(fun).bind(*args, **kwargs)
    except TypeError:
        return False
    except ValueError:  # no signature to read (a builtin): the call decides
        pass
    return True


def run(app, call):
    """One task, as Celery's tracer runs it in a prefork child: the task's handlers
    (`before_start`, `on_success`, `on_failure`, `on_retry`, `after_return`) and the
    signals users hook (`task_prerun`, `task_success`, `task_failure`, `task_retry`,
    `task_postrun`) in Celery's order; storing the outcome is the worker's."""
    task = app.tasks.get(call.get("task"))
    if task is None:
        return failure("not_registered", "NotRegistered", repr(call.get("task")))
    task_id = call.get("id")
    args, kwargs = call.get("args") or [], call.get("kwargs") or {}
    fun = task if task_has_custom(task, "__call__") else task.run
    fits = arguments_fit(task.run, args, kwargs)
    request = Context(call.get("request") or {}, id=task_id, task=task.name, args=args, kwargs=kwargs,
                      retries=call.get("retries", 0), hostname=os.environ.get("ARTEL_WORKER_NAME"),
                      called_directly=False, is_eager=False)
    task.request_stack.push(request)
    state, retval = "FAILURE", None
    soft = call.get("soft_time_limit")
    try:
        signals.task_prerun.send(sender=task, task_id=task_id, task=task, args=args, kwargs=kwargs)
        try:
            if task_has_custom(task, "before_start"):
                task.before_start(task_id, args, kwargs)
            if soft:
                signal.setitimer(signal.ITIMER_REAL, soft)
            retval = fun(*args, **kwargs)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        try:
            answer = {"Ok": retval}
            encoded = kombu_json.dumps(answer)
        except Exception as exc:
            # Celery's result backend refuses it the same way.
            try:
                raise EncodeError(repr(exc)) from exc
            except EncodeError as error:
                return failed(task, task_id, args, kwargs, error, ExceptionInfo())
        state = "SUCCESS"
        if task_has_custom(task, "on_success"):
            task.on_success(retval, task_id, args, kwargs)
        signals.task_success.send(sender=task, result=retval)
        return encoded
    except Ignore:
        state = "IGNORED"
        return failure("ignored", "Ignore", "")
    except Reject as exc:
        state = "REJECTED"
        if exc.requeue:
            return failure("requeued", "Reject", str(exc.reason))
        # Celery records a rejection that will not run again as a FAILURE.
        einfo = ExceptionInfo()
        signals.task_failure.send(sender=task, task_id=task_id, exception=exc, args=args, kwargs=kwargs,
                                  traceback=einfo.tb, einfo=einfo)
        return raised("rejected", exc, einfo)
    except RetryAsked as asked:
        state = "RETRY"
        einfo = ExceptionInfo()
        task.on_retry(asked.exc, task_id, args, kwargs, einfo)
        signals.task_retry.send(sender=task, request=task.request, reason=asked, einfo=einfo)
        message = f"Retry in {asked.countdown}s" + (f": {asked.exc!r}" if asked.exc else "")
        return failure("retry", "Retry", message, retry_after_ms=asked.countdown * 1000)
    except Exception as exc:
        kind = "failed" if fits or not isinstance(exc, TypeError) else "invalid_arguments"
        return failed(task, task_id, args, kwargs, exc, ExceptionInfo(), kind)
    finally:
        if state not in ("IGNORED", "REJECTED") and task_has_custom(task, "after_return"):
            task.after_return(state, retval, task_id, args, kwargs, None)
        signals.task_postrun.send(sender=task, task_id=task_id, task=task, args=args, kwargs=kwargs, retval=retval,
                                  state=state)
        task.request_stack.pop()


def failed(task, task_id, args, kwargs, exc, einfo, kind="failed"):
    """A failure raised by the task: its handler and signal, then the answer."""
    task.on_failure(exc, task_id, args, kwargs, einfo)
    signals.task_failure.send(sender=task, task_id=task_id, exception=exc, args=args, kwargs=kwargs,
                              traceback=einfo.tb, einfo=einfo)
    return raised(kind, exc, einfo)


def _soft_limit(signum, frame):
    raise SoftTimeLimitExceeded()


def serve(app, path):
    """Answers the worker's calls one after another until it closes the socket; Celery's
    `worker_process_init` and `worker_process_shutdown` fire around, as in a prefork child."""
    from celery import Task

    Task.retry = _retry
    # The task's soft time limit, as Celery's prefork pool raises it in the task.
    signal.signal(signal.SIGALRM, _soft_limit)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(path)
    reader = conn.makefile("rb")
    signals.worker_process_init.send(sender=None)
    try:
        while True:
            head = reader.read(4)
            if len(head) < 4:
                return
            (length,) = struct.unpack(">I", head)
            # Celery's JSON: `{"__type__": "datetime", ...}` arguments arrive as datetimes.
            request = kombu_json.loads(reader.read(length))
            try:
                reply = run(app, request.get("args") or {})
            except Exception as exc:  # a task's handler or signal receiver raised
                reply = raised("failed", exc, ExceptionInfo())
            reply = reply.encode()
            conn.sendall(struct.pack(">I", len(reply)) + reply)
    finally:
        signals.worker_process_shutdown.send(sender=None, pid=os.getpid(), exitcode=0)


if __name__ == "__main__":
    command, spec = sys.argv[1], sys.argv[2]
    app = load(spec)
    if command == "list":
        print(json.dumps(tasks(app)))
    else:
        serve(app, os.environ["ARTEL_POOL_CHILD"])
