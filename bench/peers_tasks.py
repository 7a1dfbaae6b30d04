"""The same two workloads for every Python peer: a no-op, or a 100 ms sleep.

Each task increments a Redis counter (PEER_COUNTER) when it is done, so the driver
(redis_peers.py) can tell when the whole batch has been processed. That is one extra
INCR per task for the peers, far below their own per-task cost.
"""

import os
import time

import dramatiq
import redis
from celery import Celery
from dramatiq.brokers.redis import RedisBroker

REDIS_URL = os.environ.get("PEER_REDIS_URL", "redis://127.0.0.1:6379/0")
COUNTER = os.environ.get("PEER_COUNTER", "peerbench:done")
SLEEP = float(os.environ.get("PEER_SLEEP", "0"))

_redis = redis.Redis.from_url(REDIS_URL)


def work():
    if SLEEP:
        time.sleep(SLEEP)
    _redis.incr(COUNTER)


# Celery: Redis broker and Redis result backend, JSON, as a typical deployment.
celery_app = Celery("peers", broker=REDIS_URL, backend=REDIS_URL)
celery_app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    # Results under the run's own prefix, so the driver removes exactly this run's keys.
    result_backend_transport_options={"global_keyprefix": os.environ.get("PEER_KEYPREFIX", "")},
)


@celery_app.task(name="peers.work")
def celery_work():
    work()


# RQ: a plain function; the worker imports it by name.
def rq_work():
    work()


# Dramatiq: Redis broker, default middleware.
dramatiq.set_broker(RedisBroker(url=REDIS_URL))


@dramatiq.actor(queue_name=os.environ.get("PEER_QUEUE", "default"), max_retries=0)
def dramatiq_work():
    work()
