"""The Celery side of `bench/celery/run.sh`: one no-op task, results kept in Redis."""

import os

from celery import Celery

BROKER = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6390/0")

app = Celery("tasks", broker=BROKER, backend=BROKER)
app.conf.update(
    task_acks_late=False,
    worker_prefetch_multiplier=64,
    result_expires=600,
    broker_connection_retry_on_startup=True,
)


@app.task
def noop(x):
    return x
