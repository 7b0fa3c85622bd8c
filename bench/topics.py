"""bench/topics' helper: creates many topics with a config override and fills every partition.

    topics.py BOOTSTRAP PREFIX TOPICS PARTITIONS RECORDS_PER_PARTITION
"""

import sys
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic


def main(bootstrap, prefix, topics, partitions, per_partition):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    names = [f"{prefix}.t{index:04d}" for index in range(topics)]
    for start in range(0, len(names), 200):
        batch = [
            NewTopic(name, partitions, 1, config={"retention.ms": "86400000"})
            for name in names[start : start + 200]
        ]
        for future in admin.create_topics(batch, operation_timeout=60).values():
            future.result()
    # A created topic is known to the broker that serves it only once that broker applied the
    # controller's metadata (at 8 000 partitions, many seconds later): wait for every
    # partition to have a leader before writing.
    deadline = time.monotonic() + 600
    while True:
        listed = admin.list_topics(timeout=30).topics
        ready = sum(
            1
            for name in names
            if name in listed
            and len(listed[name].partitions) == partitions
            and all(p.leader >= 0 for p in listed[name].partitions.values())
        )
        if ready == len(names):
            break
        if time.monotonic() > deadline:
            sys.exit(f"only {ready} of {len(names)} topics have leaders after 600 s")
        time.sleep(1)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50, "queue.buffering.max.messages": 1000000})
    failed = []

    def delivered(error, message):
        if error is not None:
            failed.append(error)

    # Every record must land: a write to a topic created a moment ago can wait for its
    # metadata, so flush until nothing is queued, and fail on any delivery error (an earlier
    # version returned after a fixed flush timeout and left 80 % of the partitions empty).
    for name in names:
        for partition in range(partitions):
            for index in range(per_partition):
                producer.produce(name, value=b"%d" % index, partition=partition, on_delivery=delivered)
        producer.poll(0)
    while len(producer) > 0:
        producer.flush(10)
    if failed:
        sys.exit(f"{len(failed)} records were not written, the first because: {failed[0]}")


if __name__ == "__main__":
    bootstrap, prefix = sys.argv[1:3]
    main(bootstrap, prefix, *map(int, sys.argv[3:6]))
