"""The Python side of bench/celery_transport.py: the two tasks artel has built in, and a
1 ms CPU task; `artel worker --python celery_tasks:app` runs these same functions."""
import os
import time

from celery import Celery

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
PREFIX = os.environ.get("BENCH_PREFIX", "")

app = Celery("bench", broker=URL, backend=URL)
app.conf.update(
    broker_transport_options={"global_keyprefix": PREFIX},
    result_backend_transport_options={"global_keyprefix": PREFIX},
    worker_hijack_root_logger=False,
)


@app.task(name="noop")
def noop():
    return None


@app.task(name="sleep")
def sleep(seconds):
    time.sleep(seconds)
    return seconds


@app.task(name="spin")
def spin(seconds):
    """Busy for `seconds` of CPU."""
    until = time.process_time() + seconds
    while time.process_time() < until:
        pass
    return seconds
