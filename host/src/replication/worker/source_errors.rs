//! Errors the source consumer reports: out-of-range fetches (retention passed a partition's
//! next offset) and source logs that started again, handled in place; transport errors
//! retried by librdkafka; anything else ends the run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};

use super::store::checked_resume;
use super::{DRAIN_TIMEOUT, TaskError, Worker};

impl Worker {
    /// Handles an error the source consumer reported: an out-of-range fetch moves the
    /// partitions concerned in place ([`Worker::reset_out_of_range`]); a transport error of a
    /// source broker (restarting, unreachable, leadership moving) is retried by librdkafka
    /// itself, so the loop goes on; any other error stops the task.
    pub(super) fn consumer_error(&mut self, error: KafkaError) -> Result<(), TaskError> {
        use RDKafkaErrorCode as Code;
        match error.rdkafka_error_code() {
            Some(Code::AutoOffsetReset) => self.reset_out_of_range(error),
            Some(
                Code::BrokerTransportFailure
                | Code::AllBrokersDown
                | Code::OperationTimedOut
                | Code::RequestTimedOut
                | Code::NetworkException
                | Code::LeaderNotAvailable
                | Code::NotLeaderForPartition
                | Code::PreferredLeaderNotAvailable,
            ) => {
                tracing::warn!(%error, "The source reported a transient error; fetching goes on.");
                Ok(())
            }
            _ => Err(TaskError::Consume {
                task: self.task,
                source: Box::new(error),
            }),
        }
    }

    /// The source refused a fetch as out of range (`auto.offset.reset=error`: librdkafka never
    /// moves a position by itself). Each assigned partition whose next offset the log no
    /// longer holds moves as at a resume ([`checked_resume`]), in place (assigned again at the
    /// new offset). When none does, the
    /// error is not understood and stops the task (it resumes with back-off).
    fn reset_out_of_range(&mut self, error: KafkaError) -> Result<(), TaskError> {
        let mut moves: Vec<(u32, i32, Arc<str>, i64, i64)> = Vec::new();
        for (index, topic) in (0u32..).zip(self.table.topics()) {
            for (partition, state) in &topic.partitions {
                let Some(next) = state.next_offset.filter(|_| state.assigned()) else {
                    continue;
                };
                let resume = checked_resume(
                    &self.consumer,
                    &self.events,
                    &topic.source,
                    *partition,
                    next,
                );
                if resume != next {
                    moves.push((index, *partition, Arc::clone(&topic.source), next, resume));
                }
            }
        }
        if moves.is_empty() {
            return Err(TaskError::Consume {
                task: self.task,
                source: Box::new(error),
            });
        }
        for (index, partition, topic, next, resume) in moves {
            if resume < next {
                self.restart_log(index, partition, resume)?;
            } else if let Some(state) = self
                .table
                .topic_mut(index)
                .and_then(|topic| topic.partitions.get_mut(&partition))
            {
                state.next_offset = Some(resume);
            }
            // A seek is refused in the partition's error state; assigning it again is not.
            let mut list = TopicPartitionList::new();
            list.add_partition(&topic, partition);
            let assign_error = |source| TaskError::Assign {
                task: self.task,
                source: Box::new(source),
            };
            self.consumer
                .incremental_unassign(&list)
                .map_err(assign_error)?;
            let mut list = TopicPartitionList::new();
            list.add_partition_offset(&topic, partition, Offset::Offset(resume))
                .map_err(assign_error)?;
            self.consumer
                .incremental_assign(&list)
                .map_err(assign_error)?;
        }
        Ok(())
    }

    /// The source log of `partition` of topic `index` started again at `start`: waits until
    /// the target acknowledged every record of the old log in flight (bounded by the drain
    /// timeout), then tracks the partition afresh.
    pub(super) fn restart_log(
        &mut self,
        index: u32,
        partition: i32,
        start: i64,
    ) -> Result<(), TaskError> {
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        loop {
            let Some(state) = self
                .table
                .topic_mut(index)
                .and_then(|topic| topic.partitions.get_mut(&partition))
            else {
                return Ok(());
            };
            let in_flight = state.tracker.in_flight();
            if in_flight == 0 {
                state.restart_log(self.context.flow.offset_lag_max, start);
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(TaskError::Rewound {
                    partition,
                    in_flight,
                });
            }
            self.producer.poll(Duration::from_millis(10));
            self.process_acks()?;
        }
    }
}
