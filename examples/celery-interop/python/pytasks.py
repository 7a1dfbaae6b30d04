"""Ordinary Celery tasks that an artel worker runs in Python children
(`artel worker --python pytasks:app`), beside app.py's."""
import datetime
import os
import time

from celery import signals
from celery.exceptions import Ignore, Reject, SoftTimeLimitExceeded

from app import app


@app.task(name="pt.add")
def add(x, y):
    return x + y


@app.task(name="pt.whoami", bind=True)
def whoami(self, *args, **kwargs):
    r = self.request
    return {"id": r.id, "retries": r.retries, "hostname": r.hostname, "args": list(r.args), "kwargs": r.kwargs,
            "root_id": r.root_id, "parent_id": r.parent_id, "correlation_id": r.correlation_id, "eta": r.eta,
            "delivery_info": {key: (r.delivery_info or {}).get(key) for key in ("routing_key", "redelivered")}}


@app.task(name="pt.flaky", bind=True, max_retries=5)
def flaky(self, times):
    if self.request.retries < times:
        raise self.retry(countdown=0.1)
    return self.request.retries


@app.task(name="pt.auto", autoretry_for=(ValueError,), retry_backoff=False, default_retry_delay=0.1, max_retries=2)
def auto():
    raise ValueError("still broken")


@app.task(name="pt.boom")
def boom():
    raise KeyError("missing")


@app.task(name="pt.abort")
def abort():
    os.abort()


@app.task(name="pt.progress", bind=True)
def progress(self):
    self.update_state(state="PROGRESS", meta={"done": 1})
    time.sleep(1)
    return "finished"


@app.task(name="pt.soft", soft_time_limit=0.3)
def soft():
    try:
        time.sleep(5)
    except SoftTimeLimitExceeded:
        return "cleaned up"
    return "not stopped"


@app.task(name="pt.soft_uncaught", soft_time_limit=0.3)
def soft_uncaught():
    time.sleep(5)


@app.task(name="pt.ignored", bind=True)
def ignored(self):
    self.update_state(state="CUSTOM", meta={"kept": True})
    raise Ignore()


_LEAKED = []


@app.task(name="pt.leak")
def leak():
    """Keeps 60 MB more each call: the worker replaces the child past its memory limit."""
    _LEAKED.append(bytearray(60 * 1024 * 1024))
    return os.getpid()


@app.task(name="pt.hard", time_limit=0.5)
def hard():
    time.sleep(5)


@app.task(name="pt.reject")
def reject():
    raise Reject("not for us", requeue=False)


@app.task(name="pt.requeue_once", acks_late=True)
def requeue_once(marker):
    """Hands its message back once (`Reject(requeue=True)`), then runs."""
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise Reject("again", requeue=True)
    return "second"


@app.task(name="pt.types")
def types(value):
    """Celery's JSON rules both ways: a datetime, UUID or Decimal argument arrives as
    one, and a datetime result reads back as one."""
    return [type(value).__name__, value, datetime.datetime(2026, 1, 2, 3, 4, 5)]


@app.task(name="pt.unencodable")
def unencodable():
    return object()


@app.task(name="pt.type_error")
def type_error():
    """A TypeError raised by the body is the task's own failure, not bad arguments."""
    return len(5)


@app.task(name="pt.details")
def details():
    raise LookupError("code 7", {"retry": False})


@app.task(name="pt.total")
def total(values):
    return sum(values)


def _record(line):
    """Appends to $PYTASKS_SIGNALS: which signals fired in which worker."""
    if os.environ.get("PYTASKS_SIGNALS"):
        with open(os.environ["PYTASKS_SIGNALS"], "a") as log:
            log.write(line + "\n")


@signals.task_prerun.connect
def _prerun(sender=None, **_):
    _record(f"prerun {sender.name}")


@signals.task_postrun.connect
def _postrun(sender=None, state=None, **_):
    _record(f"postrun {sender.name} {state}")


@signals.task_success.connect
def _success(sender=None, **_):
    _record(f"success {sender.name}")


@signals.task_failure.connect
def _failure(sender=None, exception=None, **_):
    _record(f"failure {sender.name} {type(exception).__name__}")


@signals.task_retry.connect
def _retried(sender=None, **_):
    _record(f"retry {sender.name}")


@signals.worker_process_init.connect
def _child_started(**_):
    _record("worker_process_init")
