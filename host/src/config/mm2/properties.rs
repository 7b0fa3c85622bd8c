//! The `java.util.Properties#load` lexer: natural lines (`\n`, `\r\n`, `\r`), comment lines,
//! continuation lines, the key/value split and Java's escapes.
//!
//! This module owns the syntax of an MM2 `.properties` file and nothing of its meaning: it
//! turns text into keys, values and the lines they start on, and reports malformed escapes
//! (never quoting a secret's value). Which key means what is [`super::resolve`]'s business.

use std::collections::BTreeMap;

use crate::config::{ConfigError, is_secret_librdkafka_key};

/// One property: its value (escapes processed, leading whitespace removed) and the line where
/// its logical line starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Property {
    pub(super) value: String,
    pub(super) line: usize,
}

/// Java's whitespace in `.properties` files.
fn is_properties_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0c')
}

/// Parses `.properties` text as `java.util.Properties#load` does. A later duplicate key
/// replaces the earlier one, line included.
pub(super) fn parse_properties(text: &str) -> (BTreeMap<String, Property>, Vec<ConfigError>) {
    let lines = natural_lines(text);
    let mut props = BTreeMap::new();
    let mut errors = Vec::new();
    let mut index = 0;
    while index < lines.len() {
        let line = index + 1;
        let first = lines[index].trim_start_matches(is_properties_space);
        index += 1;
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            continue;
        }
        let mut logical = first.to_owned();
        while ends_with_odd_backslashes(&logical) {
            logical.pop();
            let Some(next) = lines.get(index) else {
                break;
            };
            logical.push_str(next.trim_start_matches(is_properties_space));
            index += 1;
        }
        let (raw_key, raw_value) = split_key_value(&logical);
        match (unescape(raw_key), unescape(raw_value)) {
            (Ok(key), Ok(value)) => {
                props.insert(key, Property { value, line });
            }
            (Err(message), _) | (_, Err(message)) => errors.push(ConfigError {
                line: Some(line),
                key: raw_key.to_owned(),
                message: if is_secret_librdkafka_key(raw_key) {
                    "malformed escape (the value is not shown because it is a secret)".to_owned()
                } else {
                    message
                },
            }),
        }
    }
    (props, errors)
}

/// Splits on `\n`, `\r\n` and `\r`, as Java's `LineReader` does.
fn natural_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    let mut position = 0;
    while position < bytes.len() {
        match bytes[position] {
            b'\n' => {
                lines.push(&text[start..position]);
                start = position + 1;
            }
            b'\r' => {
                lines.push(&text[start..position]);
                if bytes.get(position + 1) == Some(&b'\n') {
                    position += 1;
                }
                start = position + 1;
            }
            _ => {}
        }
        position += 1;
    }
    if start < text.len() {
        lines.push(&text[start..]);
    }
    lines
}

fn ends_with_odd_backslashes(text: &str) -> bool {
    text.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1
}

/// Splits a logical line into its raw (still escaped) key and value: the key ends at the first
/// unescaped `=`, `:` or whitespace; whitespace and one `=`/`:` before the value are skipped.
fn split_key_value(logical: &str) -> (&str, &str) {
    let mut preceding_backslash = false;
    let mut key_end = logical.len();
    let mut value_start = logical.len();
    let mut has_separator = false;
    for (position, c) in logical.char_indices() {
        if !preceding_backslash && (c == '=' || c == ':') {
            key_end = position;
            value_start = position + 1;
            has_separator = true;
            break;
        }
        if !preceding_backslash && is_properties_space(c) {
            key_end = position;
            value_start = position + 1;
            break;
        }
        preceding_backslash = c == '\\' && !preceding_backslash;
    }
    let mut rest = &logical[value_start..];
    while let Some(c) = rest.chars().next() {
        if is_properties_space(c) {
            rest = &rest[1..];
        } else if !has_separator && (c == '=' || c == ':') {
            has_separator = true;
            rest = &rest[1..];
        } else {
            break;
        }
    }
    (&logical[..key_end], rest)
}

/// Java's `loadConvert`: `\t \n \r \f`, `\uXXXX` (UTF-16 code units, so surrogate pairs
/// combine), and `\c` for any other `c`.
fn unescape(raw: &str) -> Result<String, String> {
    let mut units: Vec<u16> = Vec::with_capacity(raw.len());
    let mut chars = raw.chars();
    let mut buffer = [0u16; 2];
    while let Some(c) = chars.next() {
        if c != '\\' {
            units.extend_from_slice(c.encode_utf16(&mut buffer));
            continue;
        }
        let Some(escaped) = chars.next() else {
            break;
        };
        let unit = match escaped {
            't' => u16::from(b'\t'),
            'n' => u16::from(b'\n'),
            'r' => u16::from(b'\r'),
            'f' => 0x0c,
            'u' => {
                let digits: String = chars.by_ref().take(4).collect();
                if digits.len() != 4 || !digits.chars().all(|d| d.is_ascii_hexdigit()) {
                    return Err(format!(
                        "malformed \\uxxxx escape `\\u{digits}`: four hexadecimal digits are needed"
                    ));
                }
                u16::from_str_radix(&digits, 16)
                    .map_err(|_| format!("malformed \\uxxxx escape `\\u{digits}`"))?
            }
            other => {
                units.extend_from_slice(other.encode_utf16(&mut buffer));
                continue;
            }
        };
        units.push(unit);
    }
    String::from_utf16(&units)
        .map_err(|_| "a \\uxxxx escape is an unpaired utf-16 surrogate".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::mm2::tests::errors;

    fn props(text: &str) -> BTreeMap<String, Property> {
        let (props, errors) = parse_properties(text);
        assert!(errors.is_empty(), "{errors:?}");
        props
    }

    fn value(props: &BTreeMap<String, Property>, key: &str) -> (String, usize) {
        let property = &props[key];
        (property.value.clone(), property.line)
    }

    #[test]
    fn separators_and_comments() {
        let props = props(
            "# comment\n! also a comment\n\n  a=1\nb : 2\nc 3\nd\t=\t4\ne\nf = x # not a comment\ng==5\nh:\n",
        );
        assert_eq!(value(&props, "a"), ("1".to_owned(), 4));
        assert_eq!(value(&props, "b"), ("2".to_owned(), 5));
        assert_eq!(value(&props, "c"), ("3".to_owned(), 6));
        assert_eq!(value(&props, "d"), ("4".to_owned(), 7));
        assert_eq!(value(&props, "e"), (String::new(), 8));
        assert_eq!(value(&props, "f").0, "x # not a comment");
        assert_eq!(value(&props, "g").0, "=5");
        assert_eq!(value(&props, "h").0, "");
        assert_eq!(props.len(), 8);
    }

    #[test]
    fn continuations_keep_the_first_line() {
        let props = props(
            "topics = a, \\\n    b, \\\r\n\tc\nnext = 1\n# comment \\\nafter = 2\nodd = x\\\\\nlast = y\\",
        );
        assert_eq!(value(&props, "topics"), ("a, b, c".to_owned(), 1));
        assert_eq!(value(&props, "next"), ("1".to_owned(), 4));
        // A comment line is never continued.
        assert_eq!(value(&props, "after"), ("2".to_owned(), 6));
        // An even number of backslashes is an escaped backslash, not a continuation.
        assert_eq!(value(&props, "odd"), ("x\\".to_owned(), 7));
        assert_eq!(value(&props, "last"), ("y".to_owned(), 8));
    }

    #[test]
    fn escapes() {
        let props =
            props("a\\ key\\=x = tab\\there\\nnew\\u0041\\u00e9\\\\ \\q\nemoji = \\ud83d\\ude00\n");
        assert_eq!(value(&props, "a key=x").0, "tab\there\nnewAé\\ q");
        assert_eq!(value(&props, "emoji").0, "😀");
    }

    #[test]
    fn later_duplicates_win_with_their_line() {
        let props = props("a = 1\nb = 2\na = 3\n");
        assert_eq!(value(&props, "a"), ("3".to_owned(), 3));
    }

    #[test]
    fn malformed_unicode_escape_names_its_line() {
        let (_, errors) = parse_properties("ok = 1\nbad = \\u12x4\n");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, Some(2));
        assert_eq!(errors[0].key, "bad");
    }

    #[test]
    fn secret_escape_errors_hide_the_value() {
        let errors = errors("clusters = A\nsasl.jaas.config = x password=\"\\uzzzz\";\n");
        let error = errors
            .iter()
            .find(|error| error.key == "sasl.jaas.config")
            .unwrap();
        assert_eq!(error.line, Some(2));
        assert!(!error.message.contains("zzzz"), "{}", error.message);
    }
}
