//! The value layout of the benchmark's records: bytes 0..8 the send time (microseconds since
//! the Unix epoch, little endian), byte 8 the kind (`WARMUP` or `MEASURED`), then padding up to
//! the record size. Copiers copy values as they are, so the latency consumer reads the send time
//! back on the target.

use std::time::{SystemTime, UNIX_EPOCH};

/// The record is not counted in the latency percentiles.
pub const WARMUP: u8 = 0;
/// The record is counted in the latency percentiles.
pub const MEASURED: u8 = 1;

/// Microseconds since the Unix epoch now (0 if the clock is before it).
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_micros() as u64)
}

/// Writes the send time and kind into `value` (at least 9 bytes long).
pub fn stamp(value: &mut [u8], kind: u8) {
    value[..8].copy_from_slice(&now_micros().to_le_bytes());
    value[8] = kind;
}

/// The send time and kind of a value, if it is long enough.
pub fn read(value: &[u8]) -> Option<(u64, u8)> {
    let time = u64::from_le_bytes(value.get(..8)?.try_into().ok()?);
    Some((time, *value.get(8)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamped_value_reads_back() {
        let mut value = vec![7u8; 16];
        let before = now_micros();
        stamp(&mut value, MEASURED);
        let (time, kind) = read(&value).unwrap_or_default();
        assert!(time >= before && time <= now_micros());
        assert_eq!(kind, MEASURED);
        assert_eq!(value[9..], [7u8; 7]);
        assert_eq!(read(&value[..8]), None);
    }
}
