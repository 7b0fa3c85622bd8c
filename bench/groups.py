"""bench/groups' helper: writes records and commits many consumer groups (confluent-kafka).

    groups.py produce BOOTSTRAP TOPIC PARTITIONS RECORDS_PER_PARTITION
    groups.py commit  BOOTSTRAP TOPIC PARTITIONS GROUPS
"""

import sys
import time

from confluent_kafka import ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def produce(bootstrap, topic, partitions, per_partition):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        future.result()
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for partition in range(partitions):
        for index in range(per_partition):
            producer.produce(topic, value=f"{partition}-{index}".encode(), partition=partition)
        producer.poll(0)
    producer.flush(60)


def commit(bootstrap, topic, partitions, groups):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    # Every partition holds 100 records (produce above); group g reads up to 100 - g % 50.
    pending = []
    for group in range(groups):
        offsets = [TopicPartition(topic, p, 100 - group % 50) for p in range(partitions)]
        request = ConsumerGroupTopicPartitions(f"bench-group-{group}", offsets)
        # One group per request (librdkafka's limit); all in flight at once.
        pending.extend(admin.alter_consumer_group_offsets([request]).values())
    deadline = time.monotonic() + 300
    for future in pending:
        future.result(timeout=max(1, deadline - time.monotonic()))


if __name__ == "__main__":
    command, bootstrap, topic, partitions, count = sys.argv[1:6]
    if command == "produce":
        produce(bootstrap, topic, int(partitions), int(count))
    else:
        commit(bootstrap, topic, int(partitions), int(count))
