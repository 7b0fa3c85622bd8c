//! Example record filter: drops the records that carry a given header.
//!
//! Configuration (`filters = [{ uses = "drop_by_header.wasm", with = { ... } }]`):
//! - `header` (required): the header name, e.g. `env`;
//! - `value` (optional): drop only when the header has this value (UTF-8 bytes compared
//!   exactly); without it, any record carrying the header is dropped. Kafka headers may repeat:
//!   a record is dropped when any of its headers with that name matches.
//!
//! A record that is dropped is not replicated; its source position still advances. The Python
//! twin, `examples/python/drop_by_header`, passes the same integration test.

use ferry_plugin_sdk::{Config, Filter, RecordRef};

/// The filter's configuration.
#[derive(Debug, Default)]
pub struct DropByHeader {
    header: String,
    value: Option<Vec<u8>>,
}

impl Filter for DropByHeader {
    fn init(&mut self, config: &Config) -> Result<(), String> {
        self.header = match config.get("header") {
            Some(header) if !header.is_empty() => header.to_owned(),
            _ => return Err("`header` is required: the name of the header to drop by".into()),
        };
        self.value = config.get("value").map(|value| value.as_bytes().to_vec());
        Ok(())
    }

    fn keep(&mut self, record: RecordRef<'_>) -> Result<bool, String> {
        let matches = record.headers().any(|header| {
            header.key() == self.header
                && match &self.value {
                    None => true,
                    Some(value) => header.value() == Some(value.as_slice()),
                }
        });
        Ok(!matches)
    }
}

ferry_plugin_sdk::export_filter!(DropByHeader);

#[cfg(test)]
mod tests {
    use ferry_plugin_sdk::testing::{TestOutcome, TestRecord, run_filter};
    use ferry_plugin_sdk::{Config, Filter};

    use super::DropByHeader;

    fn filter(with: &[(&str, &str)]) -> Result<DropByHeader, String> {
        let mut filter = DropByHeader::default();
        filter.init(&Config::new(
            with.iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                .collect(),
        ))?;
        Ok(filter)
    }

    #[test]
    fn drops_records_with_the_header_value() {
        let records = [
            TestRecord::new("a").header("env", "prod"),
            TestRecord::new("b").header("env", "test"),
            TestRecord::new("c"),
            TestRecord::new("d")
                .header("env", "prod")
                .header("env", "test"),
        ];
        let outcomes = run_filter(
            &mut filter(&[("header", "env"), ("value", "test")]).unwrap(),
            &records,
        );
        use TestOutcome::{Drop, Keep};
        assert_eq!(outcomes, [Keep, Drop, Keep, Drop]);
    }

    #[test]
    fn without_value_any_such_header_drops() {
        let records = [
            TestRecord::new("a").header("env", "prod"),
            TestRecord::new("b"),
        ];
        let outcomes = run_filter(&mut filter(&[("header", "env")]).unwrap(), &records);
        assert_eq!(outcomes, [TestOutcome::Drop, TestOutcome::Keep]);
    }

    #[test]
    fn header_is_required() {
        assert!(filter(&[]).is_err());
        assert!(filter(&[("header", "")]).is_err());
    }
}
