//! Record checks: a mirrored topic compared with what [`record`] generated, record by record
//! (content and per-partition order), with lost and duplicated records counted.

use std::collections::HashMap;

use super::records::{TestRecord, record};

/// Result of comparing a mirrored topic with what was produced.
#[derive(Debug, Default)]
pub struct Comparison {
    pub expected: u64,
    pub received: u64,
    pub lost: u64,
    pub duplicates: u64,
}

/// Checks that `records` (read from the remote topic) hold records `0..per_partition` of every
/// partition in order, each byte-equal to [`record`], allowing re-copied runs (at-least-once
/// duplicates, counted) but never a missing, reordered or altered record.
pub fn compare(records: &[TestRecord], partitions: i32, per_partition: u64) -> Comparison {
    let mut by_partition: HashMap<i32, Vec<&TestRecord>> = HashMap::new();
    for record in records {
        by_partition
            .entry(record.partition)
            .or_default()
            .push(record);
    }
    let mut comparison = Comparison {
        expected: per_partition * partitions as u64,
        received: records.len() as u64,
        ..Comparison::default()
    };
    for partition in 0..partitions {
        let received = by_partition.remove(&partition).unwrap_or_default();
        // The highest index seen so far; a record with a lower index is a duplicate run.
        let mut next = 0_u64;
        for got in received {
            let index = index_of(got).unwrap_or_else(|| panic!("unexpected record {got:?}"));
            assert_eq!(
                got,
                &record(partition, index),
                "record {partition}/{index} altered"
            );
            if index < next {
                comparison.duplicates += 1;
            } else {
                assert_eq!(
                    index, next,
                    "partition {partition}: record {next} missing or out of order (got {index})"
                );
                next += 1;
            }
        }
        comparison.lost += per_partition.saturating_sub(next);
    }
    assert!(
        by_partition.is_empty(),
        "records in unexpected partitions: {:?}",
        by_partition.keys()
    );
    comparison
}

fn index_of(record: &TestRecord) -> Option<u64> {
    let key = std::str::from_utf8(record.key.as_deref()?).ok()?;
    key.rsplit('-').next()?.parse().ok()
}
