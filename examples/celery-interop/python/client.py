"""Runs one interop scenario against artel and prints its outcome as JSON.

Usage: python client.py SCENARIO   (see the functions below)
"""
import datetime
import decimal
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
import uuid

from celery import chain, chord, group

from app import PY, RS, app, mul, tsum

WAIT = 30


def add(x=None, y=None):
    sig = app.signature("app.add", queue=RS)
    args = tuple(a for a in (x, y) if a is not None)
    return sig.clone(args=args) if args else sig


def call_add():
    return app.send_task("app.add", args=(2, 3), queue=RS).get(timeout=WAIT)


def call_fail():
    try:
        app.send_task("app.fail", args=("bad input",), queue=RS).get(timeout=WAIT)
    except Exception as exc:  # the re-raised task error
        return {"type": type(exc).__name__, "args": list(exc.args)}
    return "no error"


def call_flaky():
    result = app.send_task("app.flaky", args=(3,), queue=RS)
    return {"value": result.get(timeout=WAIT), "state": result.state}


def call_countdown():
    started = time.time()
    result = app.send_task("app.add", args=(1, 1), queue=RS, countdown=1)
    return {"value": result.get(timeout=WAIT), "waited_a_second": time.time() - started >= 0.95}


def mixed_chain():
    steps = chain(add(2, 3), mul.s(10).set(queue=PY), add(1))
    return steps.apply_async().get(timeout=WAIT)


def mixed_group():
    members = [add(i, i) if i % 2 else mul.s(i, 10).set(queue=PY) for i in range(6)]
    return group(members).apply_async().get(timeout=WAIT)


def mixed_chord():
    members = [add(i, 1) if i % 2 else mul.s(i, 1).set(queue=PY) for i in range(10)]
    return chord(members)(tsum.s().set(queue=PY)).get(timeout=WAIT)


def chord_with_rust_body():
    members = [mul.s(i, 2).set(queue=PY) for i in range(5)]
    return chord(members)(app.signature("app.tsum", queue=RS)).get(timeout=WAIT)


def inspect(node):
    """ping, stats and active of one node, while it runs a long task; then revoke it."""
    sleeper = app.send_task("sleep", args=(30,), queue=RS)
    deadline = time.time() + WAIT
    control = app.control.inspect(destination=[node], timeout=2)
    active = []
    while time.time() < deadline and not active:
        active = (control.active() or {}).get(node, [])
    stats = (control.stats() or {}).get(node, {})
    ping = control.ping()
    app.control.revoke(sleeper.id, terminate=True)
    try:
        sleeper.get(timeout=WAIT)
        revoked = "not revoked"
    except Exception as exc:
        revoked = type(exc).__name__
    return {
        "ping": ping,
        "active": [(t["id"] == sleeper.id, t["name"]) for t in active],
        "max_concurrency": stats.get("pool", {}).get("max-concurrency"),
        "registered": sorted((control.registered() or {}).get(node, [])),
        "revoked": revoked,
        "state": sleeper.state,
    }


def shutdown(node):
    return app.control.broadcast("shutdown", destination=[node])


def failure_traceback():
    """A failed artel task's id and traceback, as `AsyncResult.traceback` reads it."""
    result = app.send_task("app.fail", args=("bad input",), queue=RS)
    try:
        result.get(timeout=WAIT)
    except Exception:  # the re-raised task error
        pass
    return {"id": result.id, "traceback": result.traceback}


def capture(action, seconds=3):
    """What `action` returns and the events sent while it runs and for `seconds` after
    (long enough for a worker heartbeat: one every 2 s)."""
    seen = []
    with app.connection() as conn:
        receiver = app.events.Receiver(conn, handlers={"*": seen.append})
        listening = threading.Thread(target=receiver.capture, kwargs={"limit": None, "wakeup": False}, daemon=True)
        listening.start()
        time.sleep(0.5)
        value = action()
        time.sleep(seconds)
        receiver.should_stop = True
        listening.join(5)
    return value, seen


def events(node, task, queue):
    """A worker started without -E: its worker events and no task events; task events
    (a failing call's task-failed too) after `control enable_events`, none after
    `disable_events`. TASK takes two numbers; called with three, it fails."""

    def call(*args):
        result = app.send_task(task, args=args, queue=queue)
        try:
            result.get(timeout=WAIT)
        except Exception:  # the bad call's TypeError
            pass
        return result.id

    def kinds(seen, uuid):
        return sorted({e["type"] for e in seen if e.get("uuid") == uuid})

    quiet, before = capture(lambda: call(2, 3))
    enabled = app.control.enable_events(destination=[node], reply=True, timeout=2)
    (good, bad), during = capture(lambda: (call(2, 3), call(1, 2, 3)))
    disabled = app.control.disable_events(destination=[node], reply=True, timeout=2)
    off, after = capture(lambda: call(2, 3))
    failed = [e for e in during if e["type"] == "task-failed" and e.get("uuid") == bad]
    return {
        "worker_events": sorted({e["type"] for e in before if e.get("hostname") == node and "uuid" not in e}),
        "task_events_before": kinds(before, quiet),
        "enabled": enabled,
        "task_events_on": kinds(during, good),
        "bad_call_events": kinds(during, bad),
        "bad_call_exception": failed[0].get("exception", "").split("(")[0] if failed else None,
        "disabled": disabled,
        "task_events_after": kinds(after, off),
    }


def rate_limited(node, task, queue):
    """`control rate_limit TASK 1/s`: four calls of TASK take three seconds or more;
    lifted, they take well under one. Then the replies to an unknown task and to
    `time_limit`."""

    def four_calls():
        started = time.time()
        calls = [app.send_task(task, args=(i, i), queue=queue) for i in range(4)]
        for call in calls:
            call.get(timeout=WAIT)
        return time.time() - started

    def ask(command, **arguments):
        return app.control.broadcast(command, arguments=arguments, destination=[node], reply=True, timeout=2)

    limited = ask("rate_limit", task_name=task, rate_limit="1/s")
    slow = four_calls()
    lifted = ask("rate_limit", task_name=task, rate_limit=None)
    fast = four_calls()
    return {
        "limited": limited,
        "slow": slow >= 2.5,
        "lifted": lifted,
        "fast": fast < 1.5,
        "unknown": ask("rate_limit", task_name="no.such.task", rate_limit="1/s"),
        "time_limit": ask("time_limit", task_name=task, soft=10, hard=20),
    }


def time_limited(node):
    """After `time_limit sleep 1 2` (from the Celery CLI), sleep(30) ends in a time limit."""
    started = time.time()
    result = app.send_task("sleep", args=(30,), queue=RS)
    try:
        result.get(timeout=WAIT)
        error = None
    except Exception as exc:  # the time limit
        error = type(exc).__name__
    return {"error": error, "within_limit": time.time() - started < 10}


def publish_held(sleep_task, add_task, queue):
    """Before a worker starts: a 5 s sleep, two calls that will wait behind it and one
    due in a minute. Prints their ids."""
    sleeper = app.send_task(sleep_task, args=(5,), queue=queue)
    waiting = [app.send_task(add_task, args=(i, i), queue=queue) for i in range(2)]
    later = app.send_task(add_task, args=(9, 9), queue=queue, countdown=60)
    return {"sleeper": sleeper.id, "waiting": [w.id for w in waiting], "later": later.id}


def inspect_held(node, ids):
    """What `inspect reserved`, `scheduled` and `query_task` say of the calls
    publish_held sent, once the worker runs the sleep."""
    ids = json.loads(ids)
    inspect = app.control.inspect(destination=[node], timeout=2)
    deadline = time.time() + WAIT
    reserved, scheduled = [], []
    while time.time() < deadline and (len(reserved) < 2 or not scheduled):
        reserved = (inspect.reserved() or {}).get(node, [])
        scheduled = (inspect.scheduled() or {}).get(node, [])
    query = (inspect.query_task(ids["sleeper"], *ids["waiting"]) or {}).get(node, {})
    app.control.revoke(ids["later"])
    return {
        "reserved": sorted(r["id"] for r in reserved) == sorted(ids["waiting"]),
        "scheduled": [(s["request"]["id"] == ids["later"], s["eta"] is not None) for s in scheduled],
        "query": {("sleeper" if id == ids["sleeper"] else "waiting"): state for id, (state, _) in query.items()},
        "query_names": sorted({info["name"] for _, info in query.values()}),
    }


def consumers(node, task, queue):
    """`control add_consumer`: NODE serves a queue more, and lists it; `cancel_consumer`:
    no longer (a call sent there then waits)."""
    extra = queue + "-extra"
    inspect = app.control.inspect(destination=[node], timeout=2)

    def ask(command):
        return app.control.broadcast(command, arguments={"queue": extra}, destination=[node], reply=True, timeout=2)

    def listed():
        return extra in [q["name"] for q in (inspect.active_queues() or {}).get(node, [])]

    def until(condition):
        deadline = time.time() + WAIT
        while time.time() < deadline and not condition():
            time.sleep(0.2)
        return condition()

    added = ask("add_consumer")
    listed_once_added = until(listed)
    served = app.send_task(task, args=(2, 3), queue=extra).get(timeout=WAIT)
    cancelled = ask("cancel_consumer")
    unlisted_once_cancelled = until(lambda: not listed())
    late = app.send_task(task, args=(4, 4), queue=extra)
    time.sleep(3)
    return {
        "added": added,
        "listed": listed_once_added,
        "served": served,
        "cancelled": cancelled,
        "unlisted": unlisted_once_cancelled,
        "late": late.state,
    }


def grown(node):
    """A one-slot worker after `control pool_grow 1`: what `inspect stats` says, and two
    two-second sleeps side by side; after `pool_shrink 1`, one after the other."""
    inspect = app.control.inspect(destination=[node], timeout=2)

    def two_sleeps():
        started = time.time()
        calls = [app.send_task("sleep", args=(2,), queue=RS) for _ in range(2)]
        for call in calls:
            call.get(timeout=WAIT)
        return time.time() - started

    reply = app.control.pool_grow(1, destination=[node], reply=True, timeout=2)
    size = (inspect.stats() or {}).get(node, {}).get("pool", {}).get("max-concurrency")
    side_by_side = two_sleeps()
    app.control.pool_shrink(1, destination=[node], reply=True, timeout=2)
    one_after_the_other = two_sleeps()
    return {"reply": reply, "size": size, "side_by_side": side_by_side < 3.5, "in_turn": one_after_the_other >= 3.9}


def addressed(node):
    """Which pings reach NODE by pattern: kombu's glob and pcre matchers."""

    def reached(pattern, matcher):
        replies = app.control.broadcast("ping", reply=True, timeout=1, pattern=pattern, matcher=matcher)
        return any(node in reply for reply in replies)

    deadline = time.time() + WAIT
    while time.time() < deadline and not app.control.ping(destination=[node], timeout=1):
        pass
    name = node.split("@")[0]
    return {
        "glob": reached(name[:4] + "*@*", "glob"),
        "glob_other": reached("nobody-*", "glob"),
        "pcre": reached(re.escape(name) + "@", "pcre"),
        "pcre_other": reached("nobody", "pcre"),
    }


def flower(port, node, task="app.add", queue=RS):
    """Once Flower lists the artel worker, runs `task` (adding two numbers) on it and asks
    Flower what it saw."""
    base = f"http://127.0.0.1:{port}"

    def api(path):
        try:
            with urllib.request.urlopen(f"{base}{path}", timeout=5) as r:
                return json.load(r)
        except OSError:
            return {}

    deadline = time.time() + WAIT
    while time.time() < deadline and node not in api("/api/workers?refresh=1"):
        time.sleep(0.5)
    ids = [app.send_task(task, args=(i, i), queue=queue) for i in range(3)]
    values = [r.get(timeout=WAIT) for r in ids]
    seen = []
    while time.time() < deadline:
        tasks = api("/api/tasks")
        seen = [tasks.get(r.id, {}) for r in ids]
        if all(t.get("state") == "SUCCESS" for t in seen):
            break
        time.sleep(0.5)
    return {
        "values": values,
        "worker_listed": node in api("/api/workers"),
        "tasks": [(t.get("name"), t.get("state"), t.get("worker")) for t in seen],
    }


def flower_task(port, task_id, patience=10):
    """What Flower shows of task `task_id` once it lists it, within `patience` seconds:
    (name, state)."""
    deadline = time.time() + float(patience)
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/tasks", timeout=5) as r:
                task = json.load(r).get(task_id)
        except OSError:
            task = None
        if task:
            return [task.get("name"), task.get("state")]
        time.sleep(0.2)
    return None


def flower_lists_sent(port):
    """Publishes a task with Celery's task-sent event to RS (no worker there) until Flower
    lists it; what Flower shows of it."""
    app.conf.task_send_sent_event = True
    deadline = time.time() + WAIT
    while time.time() < deadline:
        seen = flower_task(port, app.send_task("app.add", args=(2, 3), queue=RS).id)
        if seen:
            return seen
    return None


def exported(port):
    """Calls that succeed and fail on both workers, then what celery-prometheus-exporter
    (from PyPI, fed by the workers' events) exports of them, once it has seen them all.
    Sent once it counts both workers (its event receiver starts before its first ping)."""
    metric = re.compile(r'^(\w+)(?:\{(.*)\})? (\S+)$')

    def scrape():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                text = r.read().decode()
        except OSError:
            text = ""
        seen = {}
        for line in text.splitlines():
            found = metric.match(line)
            if found:
                name, labels, value = found.groups()
                labels = dict(re.findall(r'(\w+)="([^"]*)"', labels or ""))
                seen[(name, labels.get("state"), labels.get("name"))] = float(value)
        return seen

    deadline = time.time() + WAIT
    while time.time() < deadline and scrape().get(("celery_workers", None, None)) != 2:
        time.sleep(0.5)
    calls = [app.send_task("app.add", args=(i, i), queue=RS) for i in range(3)]
    calls += [app.send_task("py.mul", args=(i, 2), queue=PY) for i in range(2)]
    failing = [
        app.send_task("app.fail", args=("exported",), queue=RS),
        app.send_task("app.add", args=(1, 2, 3), queue=RS),  # rejected: bad arguments
        app.send_task("py.mul", args=(1, 2, 3), queue=PY),
    ]
    for call in calls:
        call.get(timeout=WAIT)
    for call in failing:
        try:
            call.get(timeout=WAIT)
        except Exception:  # the task's failure, as expected
            pass
    wanted = {
        ("celery_tasks_by_name", "SUCCESS", "app.add"): 3,
        ("celery_tasks_by_name", "SUCCESS", "py.mul"): 2,
        ("celery_tasks_by_name", "FAILURE", "app.fail"): 1,
        ("celery_tasks_by_name", "FAILURE", "app.add"): 1,
        ("celery_tasks_by_name", "FAILURE", "py.mul"): 1,
        ("celery_tasks_runtime_seconds_count", None, "app.add"): 3,
        ("celery_tasks_runtime_seconds_count", None, "py.mul"): 2,
        ("celery_workers", None, None): 2,
    }
    seen = {}
    deadline = time.time() + WAIT
    while time.time() < deadline:
        seen = scrape()
        if all(seen.get(key) == value for key, value in wanted.items()):
            break
        time.sleep(0.5)
    return {" ".join(str(k) for k in key if k): seen.get(key) for key in wanted}


def python_tasks(queue):
    """Ordinary Celery tasks (pytasks.py) sent to `queue`, run by whichever worker serves
    it: each outcome as AsyncResult reads it."""
    def outcome(name, *args, **kwargs):
        result = app.send_task(name, args=args, kwargs=kwargs, queue=queue)
        try:
            return {"value": result.get(timeout=WAIT), "state": result.state}
        except Exception as exc:
            return {"state": result.state, "type": type(exc).__name__, "message": str(exc),
                    "traceback": "raise KeyError" in (result.traceback or "")}

    whoami = app.send_task("pt.whoami", args=(1, "two"), kwargs={"k": 3}, queue=queue)
    seen = whoami.get(timeout=WAIT)
    progress = app.send_task("pt.progress", queue=queue)
    deadline = time.time() + WAIT
    while progress.state != "PROGRESS" and time.time() < deadline:
        time.sleep(0.05)
    shown = (progress.state, progress.info)
    ignored = app.send_task("pt.ignored", queue=queue)
    while ignored.state != "CUSTOM" and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(1)  # nothing recorded after Ignore: the state stays the task's own
    steps = chain(app.signature("pt.add", args=(1, 2), queue=queue), app.signature("pt.add", args=(3,), queue=queue))
    scratch = tempfile.mkdtemp()  # where pt.requeue_once marks its first run
    try:
        return {
            "add": outcome("pt.add", 2, 3),
            "whoami": {"own_id": seen["id"] == whoami.id, "retries": seen["retries"], "args": seen["args"],
                       "kwargs": seen["kwargs"], "hostname": bool(seen["hostname"]),
                       "root_is_self": seen["root_id"] == whoami.id, "parent_id": seen["parent_id"],
                       "correlation_is_id": seen["correlation_id"] == whoami.id, "eta": seen["eta"],
                       "routed_to_queue": seen["delivery_info"]["routing_key"] == queue,
                       "redelivered": seen["delivery_info"]["redelivered"]},
            "flaky": outcome("pt.flaky", 2),
            "auto": outcome("pt.auto"),
            "boom": outcome("pt.boom"),
            "abort": outcome("pt.abort"),
            "after_abort": outcome("pt.add", 20, 22),
            "progress": {"shown": list(shown), "value": progress.get(timeout=WAIT)},
            "ignored": [ignored.state, ignored.info],
            # Two children, each replaced past 150 MiB: six calls of 60 MB need a third child.
            "leak_recycled": len({app.send_task("pt.leak", queue=queue).get(timeout=WAIT) for _ in range(6)}) > 2,
            "hard": outcome("pt.hard"),
            "soft": outcome("pt.soft"),
            "soft_uncaught": outcome("pt.soft_uncaught"),
            "chain": steps.apply_async().get(timeout=WAIT),
            "chord": chord(app.signature("pt.add", args=(i, i), queue=queue) for i in range(4))(
                app.signature("pt.total", queue=queue)).get(timeout=WAIT),
            "group": group(app.signature("pt.add", args=(i, 1), queue=queue) for i in range(3)).apply_async().get(
                timeout=WAIT),
            "reject": outcome("pt.reject"),
            "requeue_once": outcome("pt.requeue_once", os.path.join(scratch, "requeued")),
            # As Python reads them back: a datetime, a UUID, a Decimal.
            "types": [repr(app.send_task("pt.types", args=(value,), queue=queue).get(timeout=WAIT)) for value in (
                datetime.datetime(2025, 5, 6, 7, 8, 9), uuid.UUID(int=7), decimal.Decimal("1.25"))],
            "unencodable": outcome("pt.unencodable"),
            "type_error": outcome("pt.type_error"),
            "bad_arguments": outcome("pt.add", 1),
            "details": outcome("pt.details"),
        }
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def three_kinds_chain(python_by_artel, python_by_celery, rust_by_artel):
    """One chain over three workers: a Python task run by artel, a Python task run by
    Celery, a Rust task run by artel: (1 + 2) * 10 + 5."""
    steps = chain(
        app.signature("pt.add", args=(1, 2), queue=python_by_artel),
        app.signature("py.mul", args=(10,), queue=python_by_celery),
        app.signature("app.add", args=(5,), queue=rust_by_artel),
    )
    return steps.apply_async().get(timeout=WAIT)


def saved_group():
    """A group of artel tasks, saved by Python; prints its id for artel to restore."""
    result = group(add(i, 100) for i in range(3)).apply_async()
    result.save()
    return result.id


def restore_group(group_id):
    """Reads a group artel saved."""
    from celery.result import GroupResult

    return GroupResult.restore(group_id, app=app).get(timeout=WAIT)


def pool(node):
    """The pool as `inspect stats` shows it, before and after `control pool_grow`."""
    control = app.control.inspect(destination=[node], timeout=2)
    before = (control.stats() or {}).get(node, {}).get("pool", {})
    grown = app.control.pool_grow(1, destination=[node], reply=True, timeout=2)
    after = (control.stats() or {}).get(node, {}).get("pool", {})
    return {
        "implementation": before.get("implementation"),
        "children": len(before.get("processes", [])),
        "max_tasks_per_child": before.get("max-tasks-per-child"),
        "before": before.get("max-concurrency"),
        "grown": grown,
        "after": after.get("max-concurrency"),
    }


if __name__ == "__main__":
    print(json.dumps(globals()[sys.argv[1]](*sys.argv[2:])))
