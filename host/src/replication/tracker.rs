//! `CommitTracker`: which source offsets of one partition may be stored as replicated.
//!
//! Records are produced in source-offset order and acknowledged by the target in any order.
//! The tracker advances the committable position only over a **contiguous** run of
//! acknowledged records, so a stored position never skips a record the target has not
//! acknowledged. Source offsets may have gaps (compaction, transaction markers); the run is
//! contiguous in produce order, not in offset arithmetic.
//!
//! Steady state allocates nothing: the in-flight queue is a reused `VecDeque`.

use std::collections::VecDeque;

/// Tracks in-flight records of one source partition.
#[derive(Debug, Default)]
pub(crate) struct CommitTracker {
    /// Source offsets produced and not yet released, in produce (= offset) order, with their
    /// acknowledgement state.
    in_flight: VecDeque<(i64, bool)>,
    /// The last source offset whose record, and every record produced before it, the target
    /// acknowledged. `None` until the first release.
    last_released: Option<i64>,
}

/// Why an acknowledgement could not be applied. Each is a bug or a protocol violation; the
/// caller stops the task and resumes from the stored position, so nothing is lost.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TrackError {
    /// An offset was produced that is not above the previous one.
    #[error("offset {offset} produced after offset {previous}")]
    OutOfOrder { offset: i64, previous: i64 },
    /// An acknowledgement arrived for an offset that is not in flight.
    #[error("acknowledgement for offset {offset}, which is not in flight")]
    UnknownAck { offset: i64 },
}

impl CommitTracker {
    /// Records that the record at `offset` was handed to the producer.
    pub(crate) fn produced(&mut self, offset: i64) -> Result<(), TrackError> {
        let previous = self
            .in_flight
            .back()
            .map(|(o, _)| *o)
            .or(self.last_released);
        if let Some(previous) = previous
            && offset <= previous
        {
            return Err(TrackError::OutOfOrder { offset, previous });
        }
        self.in_flight.push_back((offset, false));
        Ok(())
    }

    /// Records that the target acknowledged the record at `offset`. Acknowledgements usually
    /// arrive in order, which costs O(1); out-of-order ones cost a binary search.
    pub(crate) fn acknowledged(&mut self, offset: i64) -> Result<(), TrackError> {
        let index = match self.in_flight.front() {
            Some((front, _)) if *front == offset => 0,
            _ => self
                .in_flight
                .binary_search_by_key(&offset, |(o, _)| *o)
                .map_err(|_| TrackError::UnknownAck { offset })?,
        };
        if let Some(entry) = self.in_flight.get_mut(index) {
            entry.1 = true;
        }
        while let Some((front_offset, true)) = self.in_flight.front().copied() {
            self.last_released = Some(front_offset);
            self.in_flight.pop_front();
        }
        Ok(())
    }

    /// The last source offset that may be stored as replicated (MM2 stores exactly this and
    /// resumes at `offset + 1`), or `None` when nothing was acknowledged yet.
    pub(crate) fn last_replicated(&self) -> Option<i64> {
        self.last_released
    }

    /// Number of records produced and not yet released.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Forgets the records from `offset` on, acknowledged or not (the partition stops before
    /// `offset` and will produce them again); earlier records stay in flight.
    pub(crate) fn withdraw_from(&mut self, offset: i64) {
        let keep = self.in_flight.partition_point(|(o, _)| *o < offset);
        self.in_flight.truncate(keep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Applies `produced` then `acked` and returns the releasable offset after each ack.
    fn check(produced: &[i64], acked: &[i64], expected: &[Option<i64>]) {
        let mut tracker = CommitTracker::default();
        for offset in produced {
            tracker.produced(*offset).unwrap();
        }
        let got: Vec<Option<i64>> = acked
            .iter()
            .map(|offset| {
                tracker.acknowledged(*offset).unwrap();
                tracker.last_replicated()
            })
            .collect();
        assert_eq!(got, expected, "produced {produced:?} acked {acked:?}");
    }

    #[test]
    fn in_order_acks_release_each_record() {
        check(&[0, 1, 2], &[0, 1, 2], &[Some(0), Some(1), Some(2)]);
    }

    #[test]
    fn a_hole_holds_back_later_acks() {
        check(
            &[0, 1, 2, 3],
            &[1, 2, 0, 3],
            &[None, None, Some(2), Some(3)],
        );
        check(&[5, 6, 7], &[7, 6, 5], &[None, None, Some(7)]);
    }

    #[test]
    fn offset_gaps_are_contiguous_in_produce_order() {
        check(
            &[10, 13, 20],
            &[10, 20, 13],
            &[Some(10), Some(10), Some(20)],
        );
    }

    #[test]
    fn protocol_violations_are_errors() {
        let mut tracker = CommitTracker::default();
        tracker.produced(4).unwrap();
        assert_eq!(
            tracker.produced(4),
            Err(TrackError::OutOfOrder {
                offset: 4,
                previous: 4
            })
        );
        assert_eq!(
            tracker.acknowledged(9),
            Err(TrackError::UnknownAck { offset: 9 })
        );
        tracker.acknowledged(4).unwrap();
        assert_eq!(
            tracker.produced(3),
            Err(TrackError::OutOfOrder {
                offset: 3,
                previous: 4
            })
        );
        assert_eq!(tracker.in_flight(), 0);
    }

    #[test]
    fn withdrawn_records_can_be_produced_again() {
        let mut tracker = CommitTracker::default();
        for offset in [3, 4, 5, 6] {
            tracker.produced(offset).unwrap();
        }
        tracker.acknowledged(6).unwrap();
        tracker.withdraw_from(5);
        assert_eq!(tracker.in_flight(), 2);
        assert_eq!(
            tracker.acknowledged(6),
            Err(TrackError::UnknownAck { offset: 6 })
        );
        tracker.acknowledged(3).unwrap();
        tracker.acknowledged(4).unwrap();
        assert_eq!(tracker.last_replicated(), Some(4));
        tracker.produced(5).unwrap();
        tracker.acknowledged(5).unwrap();
        assert_eq!(tracker.last_replicated(), Some(5));
    }

    /// Model check: for random ack orders, the released offset is always the largest offset
    /// whose record and all earlier ones were acknowledged.
    #[test]
    fn matches_a_simple_model_for_shuffled_acks() {
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        for round in 0..200 {
            let count = 1 + (round % 40);
            let offsets: Vec<i64> = (0..count as i64).map(|i| i * 3 + (i % 2)).collect();
            let mut order: Vec<usize> = (0..offsets.len()).collect();
            for i in (1..order.len()).rev() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                order.swap(i, (seed % (i as u64 + 1)) as usize);
            }
            let mut tracker = CommitTracker::default();
            for offset in &offsets {
                tracker.produced(*offset).unwrap();
            }
            let mut acked = vec![false; offsets.len()];
            for index in order {
                tracker.acknowledged(offsets[index]).unwrap();
                acked[index] = true;
                let prefix = acked.iter().take_while(|a| **a).count();
                let model = prefix.checked_sub(1).map(|i| offsets[i]);
                assert_eq!(tracker.last_replicated(), model);
            }
            assert_eq!(tracker.in_flight(), 0);
        }
    }
}
