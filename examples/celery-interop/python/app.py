"""The Python half of the interop tests: a Celery app on the same broker as artel.

The broker is ARTEL_TEST_BROKER (Redis by default, or RabbitMQ); results are always in
Redis. ARTEL_TEST_PREFIX isolates each test run (kombu's global_keyprefix for the Redis
broker and the result backend); Python tasks live on queue PY, artel's on RS.
"""
import os
import time

from celery import Celery

url = os.environ.get("ARTEL_REDIS_URL", "redis://127.0.0.1:6379/0")
broker = os.environ.get("ARTEL_TEST_BROKER", url)
prefix = os.environ.get("ARTEL_TEST_PREFIX", "")
# The queues artel (RS) and Python (PY) workers serve.
RS = os.environ.get("ARTEL_RS_QUEUE", "rs")
PY = os.environ.get("ARTEL_PY_QUEUE", "py")

app = Celery("interop", broker=broker, backend=url)
app.conf.update(
    broker_transport_options={"global_keyprefix": prefix},
    result_backend_transport_options={"global_keyprefix": prefix},
    task_default_queue=PY,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)


@app.task(name="py.mul")
def mul(x, y):
    return x * y


@app.task(name="py.tsum")
def tsum(values):
    return sum(values)


@app.task(name="py.sleep")
def sleep(seconds):
    time.sleep(seconds)
    return seconds
