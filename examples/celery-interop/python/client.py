"""Runs one interop scenario against artel and prints its outcome as JSON.

Usage: python client.py SCENARIO   (see the functions below)
"""
import json
import sys

from celery import chain, chord, group

from app import app, mul, tsum

WAIT = 30


def add(x=None, y=None):
    sig = app.signature("app.add", queue="rs")
    args = tuple(a for a in (x, y) if a is not None)
    return sig.clone(args=args) if args else sig


def call_add():
    return app.send_task("app.add", args=(2, 3), queue="rs").get(timeout=WAIT)


def call_fail():
    try:
        app.send_task("app.fail", args=("bad input",), queue="rs").get(timeout=WAIT)
    except Exception as exc:  # the re-raised task error
        return {"type": type(exc).__name__, "args": list(exc.args)}
    return "no error"


def call_flaky():
    result = app.send_task("app.flaky", args=(3,), queue="rs")
    return {"value": result.get(timeout=WAIT), "state": result.state}


def mixed_chain():
    steps = chain(add(2, 3), mul.s(10).set(queue="py"), add(1))
    return steps.apply_async().get(timeout=WAIT)


def mixed_group():
    members = [add(i, i) if i % 2 else mul.s(i, 10).set(queue="py") for i in range(6)]
    return group(members).apply_async().get(timeout=WAIT)


def mixed_chord():
    members = [add(i, 1) if i % 2 else mul.s(i, 1).set(queue="py") for i in range(10)]
    return chord(members)(tsum.s().set(queue="py")).get(timeout=WAIT)


def chord_with_rust_body():
    members = [mul.s(i, 2).set(queue="py") for i in range(5)]
    return chord(members)(app.signature("app.tsum", queue="rs")).get(timeout=WAIT)


if __name__ == "__main__":
    print(json.dumps(globals()[sys.argv[1]]()))
