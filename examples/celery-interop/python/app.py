"""The Python half of the interop tests: a Celery app on the same Redis as artel.

ARTEL_TEST_PREFIX isolates each test run (kombu's global_keyprefix for the broker
and the result backend); Python tasks live on queue `py`, artel's on `rs`.
"""
import os

from celery import Celery

url = os.environ.get("ARTEL_REDIS_URL", "redis://127.0.0.1:6379/0")
prefix = os.environ.get("ARTEL_TEST_PREFIX", "")

app = Celery("interop", broker=url, backend=url)
app.conf.update(
    broker_transport_options={"global_keyprefix": prefix},
    result_backend_transport_options={"global_keyprefix": prefix},
    task_default_queue="py",
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)


@app.task(name="py.mul")
def mul(x, y):
    return x * y


@app.task(name="py.tsum")
def tsum(values):
    return sum(values)
