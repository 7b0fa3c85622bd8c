//! The `sasl.jaas.config` parser: one login module, its control flag and its `name=value`
//! options, of which Ferry keeps the username and password.
//!
//! This module owns the JAAS syntax Kafka clients accept and the class names of the login
//! modules Ferry maps (PLAIN and SCRAM). Its messages never quote an option's value, which may
//! be a secret.

/// The login module of SASL `PLAIN`.
pub(super) const PLAIN_LOGIN_MODULE: &str =
    "org.apache.kafka.common.security.plain.PlainLoginModule";
/// The login module of SASL `SCRAM-SHA-256` and `SCRAM-SHA-512`.
pub(super) const SCRAM_LOGIN_MODULE: &str =
    "org.apache.kafka.common.security.scram.ScramLoginModule";

/// The login module and credentials of a `sasl.jaas.config` value.
pub(super) struct Jaas {
    pub(super) module: String,
    pub(super) username: String,
    pub(super) password: String,
}

/// Parses `<LoginModule> <flag> key="value" ... ;` (one login module, as Kafka clients
/// require). Messages never quote option values, which may be secrets.
pub(super) fn parse_jaas(text: &str) -> Result<Jaas, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut position = 0;
    let skip_space = |position: &mut usize| {
        while chars.get(*position).is_some_and(|c| c.is_whitespace()) {
            *position += 1;
        }
    };
    let word = |position: &mut usize| -> String {
        let start = *position;
        while chars
            .get(*position)
            .is_some_and(|c| !c.is_whitespace() && *c != ';' && *c != '=' && *c != '"')
        {
            *position += 1;
        }
        chars[start..*position].iter().collect()
    };
    skip_space(&mut position);
    let module = word(&mut position);
    if module.is_empty() {
        return Err(
            "expected `<LoginModule> required username=\"...\" password=\"...\";`".to_owned(),
        );
    }
    skip_space(&mut position);
    let flag = word(&mut position);
    if !["required", "requisite", "sufficient", "optional"]
        .iter()
        .any(|known| flag.eq_ignore_ascii_case(known))
    {
        return Err(format!(
            "expected a control flag (required, requisite, sufficient or optional) after `{module}`"
        ));
    }
    let mut username = None;
    let mut password = None;
    loop {
        skip_space(&mut position);
        match chars.get(position) {
            None => return Err("missing the `;` that ends the login module".to_owned()),
            Some(';') => {
                position += 1;
                break;
            }
            Some(_) => {}
        }
        let name = word(&mut position);
        skip_space(&mut position);
        if name.is_empty() || chars.get(position) != Some(&'=') {
            return Err("expected `name=value` options after the control flag".to_owned());
        }
        position += 1;
        skip_space(&mut position);
        let value = if chars.get(position) == Some(&'"') {
            position += 1;
            let mut value = String::new();
            loop {
                match chars.get(position) {
                    None => return Err(format!("option `{name}` has an unterminated quote")),
                    Some('"') => {
                        position += 1;
                        break;
                    }
                    Some('\\') => {
                        if let Some(escaped) = chars.get(position + 1) {
                            value.push(*escaped);
                        }
                        position += 2;
                    }
                    Some(c) => {
                        value.push(*c);
                        position += 1;
                    }
                }
            }
            value
        } else {
            word(&mut position)
        };
        match name.as_str() {
            "username" => username = Some(value),
            "password" => password = Some(value),
            _ => {}
        }
    }
    skip_space(&mut position);
    if position < chars.len() {
        return Err("only one login module is allowed".to_owned());
    }
    match (username, password) {
        (Some(username), Some(password)) if !username.is_empty() && !password.is_empty() => {
            Ok(Jaas {
                module,
                username,
                password,
            })
        }
        _ => Err("the login module needs non-empty `username` and `password` options".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaas_parsing() {
        let jaas = parse_jaas(
            "org.apache.kafka.common.security.scram.ScramLoginModule required\n username=u password=\"p \\\"q\\\"\" ;",
        )
        .unwrap();
        assert_eq!(jaas.module, SCRAM_LOGIN_MODULE);
        assert_eq!(
            (jaas.username.as_str(), jaas.password.as_str()),
            ("u", "p \"q\"")
        );
        assert!(parse_jaas("x required username=\"u\" password=\"p\"").is_err());
        assert!(parse_jaas("x maybe username=\"u\" password=\"p\";").is_err());
        let error = parse_jaas("x required username=\"u\" password=\"secret")
            .err()
            .unwrap();
        assert!(!error.contains("secret\""), "{error}");
    }
}
