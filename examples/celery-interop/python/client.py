"""Runs one interop scenario against artel and prints its outcome as JSON.

Usage: python client.py SCENARIO   (see the functions below)
"""
import json
import sys
import time
import urllib.request

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


def flower(port, node):
    """Once Flower lists the artel worker, runs tasks on it and asks Flower what it saw."""
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
    ids = [app.send_task("app.add", args=(i, i), queue=RS) for i in range(3)]
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


def saved_group():
    """A group of artel tasks, saved by Python; prints its id for artel to restore."""
    result = group(add(i, 100) for i in range(3)).apply_async()
    result.save()
    return result.id


def restore_group(group_id):
    """Reads a group artel saved."""
    from celery.result import GroupResult

    return GroupResult.restore(group_id, app=app).get(timeout=WAIT)


def delete_queues():
    """Removes this run's queues and their exchanges from RabbitMQ."""
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        for queue in (RS, PY):
            channel.queue_delete(queue)
            channel.exchange_delete(queue)
    return "deleted"


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
