//! Environment-variable interpolation.
//!
//! This module owns the `${VAR}` syntax. It rewrites the **string values** of the parsed
//! document, before serde sees them:
//!
//! | written              | becomes                                                         |
//! |----------------------|-----------------------------------------------------------------|
//! | `${VAR}`             | the value of `VAR`; an error if `VAR` is not set                |
//! | `${VAR:-default}`    | the value of `VAR`, or `default` if `VAR` is unset or empty     |
//! | `${VAR:?message}`    | the value of `VAR`; an error with `message` if unset or empty   |
//! | `$$`                 | a literal `$`                                                   |
//! | any other `$`        | itself (so the regex `prod.*.global$` needs no escaping)        |
//!
//! Interpolating parsed strings rather than the raw file text means a value can never change
//! the TOML structure: a password containing `"`, `\` or `#` arrives byte for byte, comments
//! are never interpolated, and every line number stays that of the original file. The price is
//! that only strings are interpolated, not keys, numbers or booleans. A value that contains a
//! line break is rejected, since no setting of this file takes one.
//!
//! Error messages name the variable, never its value.

use std::borrow::Cow;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::location::KeyPath;

/// Looks up an environment variable; `None` means unset.
pub(crate) type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment. A variable whose value is not UTF-8 counts as unset.
pub(crate) fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Why a `$` expression could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum InterpolationError {
    /// `${VAR}` with `VAR` unset.
    #[error("environment variable `{name}` is not set (use `${{{name}:-default}}` for a default)")]
    Missing {
        /// The variable.
        name: String,
    },
    /// `${VAR:?message}` with `VAR` unset or empty.
    #[error("environment variable `{name}` is not set or empty: {message}")]
    Required {
        /// The variable.
        name: String,
        /// The message written after `:?`.
        message: String,
    },
    /// The variable's value contains a line break.
    #[error("the value of environment variable `{name}` contains a line break")]
    LineBreak {
        /// The variable.
        name: String,
    },
    /// `${` without a closing `}`.
    #[error("unterminated `${{` (write `$$` for a literal `$`)")]
    Unterminated,
    /// Something between `${` and `}` that is not one of the three forms.
    #[error(
        "invalid variable reference (expected `${{NAME}}`, `${{NAME:-default}}` or `${{NAME:?message}}`, where NAME is letters, digits and `_`)"
    )]
    Invalid,
}

/// Expands every `$` expression of `input`.
///
/// # Errors
///
/// Returns every expression that could not be expanded.
pub(crate) fn interpolate(input: &str, env: Env<'_>) -> Result<String, Vec<InterpolationError>> {
    let mut output = String::with_capacity(input.len());
    let mut errors = Vec::new();
    let mut rest = input;
    while let Some(dollar) = rest.find('$') {
        output.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            output.push('$');
            rest = tail;
        } else if let Some(expression_start) = after.strip_prefix('{') {
            let Some(close) = expression_start.find('}') else {
                errors.push(InterpolationError::Unterminated);
                rest = "";
                break;
            };
            match expand(&expression_start[..close], env) {
                Ok(value) => output.push_str(&value),
                Err(error) => errors.push(error),
            }
            rest = &expression_start[close + 1..];
        } else {
            output.push('$');
            rest = after;
        }
    }
    output.push_str(rest);
    if errors.is_empty() {
        Ok(output)
    } else {
        Err(errors)
    }
}

/// Expands the text between `${` and `}`.
fn expand(expression: &str, env: Env<'_>) -> Result<String, InterpolationError> {
    let name_end = expression
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(expression.len());
    let (name, operator) = expression.split_at(name_end);
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(InterpolationError::Invalid);
    }
    let value = env(name);
    let set_and_non_empty = value.as_deref().filter(|value| !value.is_empty());
    let expanded = if operator.is_empty() {
        value.ok_or_else(|| InterpolationError::Missing {
            name: name.to_owned(),
        })?
    } else if let Some(default) = operator.strip_prefix(":-") {
        match set_and_non_empty {
            Some(value) => value.to_owned(),
            None => return Ok(default.to_owned()),
        }
    } else if let Some(message) = operator.strip_prefix(":?") {
        match set_and_non_empty {
            Some(value) => value.to_owned(),
            None => {
                return Err(InterpolationError::Required {
                    name: name.to_owned(),
                    message: if message.is_empty() {
                        "required".to_owned()
                    } else {
                        message.to_owned()
                    },
                });
            }
        }
    } else {
        return Err(InterpolationError::Invalid);
    };
    if expanded.contains(['\n', '\r']) {
        return Err(InterpolationError::LineBreak {
            name: name.to_owned(),
        });
    }
    Ok(expanded)
}

/// Interpolates every string value of `table` (the document, or a table at `path`) in place,
/// appending failures with the path of the string they occurred in. Failed strings are left as
/// written.
pub(crate) fn interpolate_table(
    table: &mut DeTable<'_>,
    path: &KeyPath,
    env: Env<'_>,
    errors: &mut Vec<(KeyPath, InterpolationError)>,
) {
    for (key, value) in table.iter_mut() {
        interpolate_value(value, &path.key(key.get_ref()), env, errors);
    }
}

fn interpolate_value(
    value: &mut Spanned<DeValue<'_>>,
    path: &KeyPath,
    env: Env<'_>,
    errors: &mut Vec<(KeyPath, InterpolationError)>,
) {
    match value.get_mut() {
        DeValue::String(text) => {
            if !text.contains('$') {
                return;
            }
            match interpolate(text, env) {
                Ok(expanded) => *text = Cow::Owned(expanded),
                Err(failures) => {
                    errors.extend(failures.into_iter().map(|error| (path.clone(), error)));
                }
            }
        }
        DeValue::Array(array) => {
            for (position, element) in array.iter_mut().enumerate() {
                interpolate_value(element, &path.index(position), env, errors);
            }
        }
        DeValue::Table(table) => interpolate_table(table, path, env, errors),
        DeValue::Integer(_) | DeValue::Float(_) | DeValue::Boolean(_) | DeValue::Datetime(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("kafka:9092".to_owned()),
            "EMPTY" => Some(String::new()),
            "QUOTED" => Some(r#"p"a\s#s"#.to_owned()),
            "MULTI" => Some("a\nb".to_owned()),
            _ => None,
        }
    }

    fn check(input: &str, expected: Result<&str, &[&str]>) {
        let actual = interpolate(input, &env)
            .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>());
        let expected = expected
            .map(str::to_owned)
            .map_err(|errors| errors.iter().map(|e| (*e).to_owned()).collect::<Vec<_>>());
        assert_eq!(actual, expected, "input: {input:?}");
    }

    #[test]
    fn expands() {
        check("", Ok(""));
        check("plain", Ok("plain"));
        check("${HOST}", Ok("kafka:9092"));
        check("a ${HOST} b ${HOST}", Ok("a kafka:9092 b kafka:9092"));
        check("${QUOTED}", Ok(r#"p"a\s#s"#));
        check("${EMPTY}", Ok(""));
        check("${UNSET:-fallback}", Ok("fallback"));
        check("${EMPTY:-fallback}", Ok("fallback"));
        check("${HOST:-fallback}", Ok("kafka:9092"));
        check("${UNSET:-}", Ok(""));
        check("${UNSET:-a:b-c}", Ok("a:b-c"));
        check("${HOST:?needed}", Ok("kafka:9092"));
        check("$$", Ok("$"));
        check("$${HOST}", Ok("${HOST}"));
        check("$$$$", Ok("$$"));
        check("prod.*.global$", Ok("prod.*.global$"));
        check("^a$|^b$", Ok("^a$|^b$"));
        check("$HOST", Ok("$HOST"));
        check("a$", Ok("a$"));
    }

    #[test]
    fn rejects() {
        check(
            "${UNSET}",
            Err(&[
                "environment variable `UNSET` is not set (use `${UNSET:-default}` for a default)",
            ]),
        );
        check(
            "${UNSET:?set it to the broker list}",
            Err(&["environment variable `UNSET` is not set or empty: set it to the broker list"]),
        );
        check(
            "${EMPTY:?}",
            Err(&["environment variable `EMPTY` is not set or empty: required"]),
        );
        check(
            "${MULTI}",
            Err(&["the value of environment variable `MULTI` contains a line break"]),
        );
        check(
            "x ${HOST",
            Err(&["unterminated `${` (write `$$` for a literal `$`)"]),
        );
        let invalid = "invalid variable reference (expected `${NAME}`, `${NAME:-default}` or `${NAME:?message}`, where NAME is letters, digits and `_`)";
        check("${}", Err(&[invalid]));
        check("${1A}", Err(&[invalid]));
        check("${A B}", Err(&[invalid]));
        check("${A-b}", Err(&[invalid]));
        check(
            "${UNSET} and ${OTHER}",
            Err(&[
                "environment variable `UNSET` is not set (use `${UNSET:-default}` for a default)",
                "environment variable `OTHER` is not set (use `${OTHER:-default}` for a default)",
            ]),
        );
    }
}
