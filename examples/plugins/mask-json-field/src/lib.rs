//! Example record transform: masks one field of JSON record values, e.g. a social security
//! number, before it leaves the source cluster's region.
//!
//! Configuration (`transforms = [{ uses = "mask_json_field.wasm", with = { ... } }]`):
//! - `field` (required): the field to mask, a dotted path from the top-level object
//!   (`ssn`, `customer.ssn`); every object on the path must exist for the field to be masked;
//! - `mask` (default `***`): the string that replaces the field's value, whatever its type;
//! - `on_invalid` (default `fail`): what to do with a value that is not a JSON object: `fail`
//!   hands the record to the flow's error policy (`on_error`: halt, skip or dead-letter), so
//!   nothing unmasked slips through by accident; `keep` replicates it unchanged.
//!
//! Records without the field are kept as they are (no copy). Masked records keep their key,
//! headers and timestamp; the JSON keeps its field order (serde_json `preserve_order`) and is
//! written compactly. Tombstones (null values) are kept.

use ferry_plugin_sdk::{Config, Outcome, RecordRef, Transform};
use serde_json::Value;

/// The transform's configuration.
#[derive(Debug, Default)]
pub struct MaskJsonField {
    path: Vec<String>,
    mask: String,
    keep_invalid: bool,
}

impl Transform for MaskJsonField {
    fn init(&mut self, config: &Config) -> Result<(), String> {
        let field = config.get("field").unwrap_or_default();
        self.path = field.split('.').map(str::to_owned).collect();
        if field.is_empty() || self.path.iter().any(String::is_empty) {
            return Err(format!(
                "`field` must be a field name or a dotted path such as `customer.ssn`, got {field:?}"
            ));
        }
        self.mask = config.get("mask").unwrap_or("***").to_owned();
        self.keep_invalid = match config.get("on_invalid").unwrap_or("fail") {
            "fail" => false,
            "keep" => true,
            other => return Err(format!("`on_invalid` is `fail` or `keep`, got {other:?}")),
        };
        Ok(())
    }

    fn transform<'a>(&mut self, record: RecordRef<'a>) -> Result<Outcome<'a>, String> {
        let Some(bytes) = record.value() else {
            return Ok(Outcome::Keep);
        };
        let mut document = match serde_json::from_slice::<Value>(bytes) {
            Ok(document @ Value::Object(_)) => document,
            Ok(_) if self.keep_invalid => return Ok(Outcome::Keep),
            Ok(_) => return Err("the value is JSON but not an object".to_owned()),
            Err(_) if self.keep_invalid => return Ok(Outcome::Keep),
            Err(error) => return Err(format!("the value is not JSON: {error}")),
        };
        let Some((last, parents)) = self.path.split_last() else {
            return Ok(Outcome::Keep);
        };
        let mut object = &mut document;
        for key in parents {
            match object.get_mut(key.as_str()) {
                Some(child @ Value::Object(_)) => object = child,
                _ => return Ok(Outcome::Keep),
            }
        }
        let Some(field) = object.get_mut(last.as_str()) else {
            return Ok(Outcome::Keep);
        };
        *field = Value::String(self.mask.clone());
        let masked = serde_json::to_vec(&document).map_err(|error| error.to_string())?;
        Ok(Outcome::Replace(record.edit().value(masked)))
    }
}

ferry_plugin_sdk::export_transform!(MaskJsonField);

#[cfg(test)]
mod tests {
    use ferry_plugin_sdk::testing::{TestOutcome, TestRecord, run_transform};
    use ferry_plugin_sdk::{Config, Transform};

    use super::MaskJsonField;

    fn transform(with: &[(&str, &str)]) -> Result<MaskJsonField, String> {
        let mut transform = MaskJsonField::default();
        transform.init(&Config::new(
            with.iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                .collect(),
        ))?;
        Ok(transform)
    }

    fn value(outcome: &TestOutcome) -> String {
        match outcome {
            TestOutcome::Replace(record) => {
                String::from_utf8(record.value.clone().unwrap_or_default()).unwrap()
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn masks_the_field_and_keeps_the_rest() {
        let records = [
            TestRecord::new(r#"{"id":1,"ssn":"123-45-6789","name":"Ada"}"#)
                .key("k")
                .header("h", "v"),
            TestRecord::new(r#"{"id":2}"#),
            TestRecord::new("x").tombstone(),
        ];
        let outcomes = run_transform(&mut transform(&[("field", "ssn")]).unwrap(), &records);
        assert_eq!(value(&outcomes[0]), r#"{"id":1,"ssn":"***","name":"Ada"}"#);
        let TestOutcome::Replace(masked) = &outcomes[0] else {
            unreachable!()
        };
        assert_eq!(masked.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(masked.headers, [("h".to_owned(), Some(b"v".to_vec()))]);
        assert_eq!(outcomes[1], TestOutcome::Keep);
        assert_eq!(outcomes[2], TestOutcome::Keep);
    }

    #[test]
    fn nested_path_and_custom_mask() {
        let records = [
            TestRecord::new(r#"{"customer":{"ssn":123,"id":7}}"#),
            TestRecord::new(r#"{"customer":"flat"}"#),
        ];
        let outcomes = run_transform(
            &mut transform(&[("field", "customer.ssn"), ("mask", "REDACTED")]).unwrap(),
            &records,
        );
        assert_eq!(
            value(&outcomes[0]),
            r#"{"customer":{"ssn":"REDACTED","id":7}}"#
        );
        assert_eq!(outcomes[1], TestOutcome::Keep);
    }

    #[test]
    fn invalid_values_fail_unless_kept() {
        let records = [TestRecord::new("not json"), TestRecord::new("[1,2]")];
        let outcomes = run_transform(&mut transform(&[("field", "ssn")]).unwrap(), &records);
        assert!(
            matches!(&outcomes[0], TestOutcome::Fail(message) if message.starts_with("the value is not JSON"))
        );
        assert!(matches!(&outcomes[1], TestOutcome::Fail(_)));
        let outcomes = run_transform(
            &mut transform(&[("field", "ssn"), ("on_invalid", "keep")]).unwrap(),
            &records,
        );
        assert_eq!(outcomes, [TestOutcome::Keep, TestOutcome::Keep]);
    }

    #[test]
    fn refuses_bad_configuration() {
        assert!(transform(&[]).is_err());
        assert!(transform(&[("field", "a..b")]).is_err());
        assert!(transform(&[("field", "a"), ("on_invalid", "maybe")]).is_err());
    }
}
