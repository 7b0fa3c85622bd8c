//! The `sasl.jaas.config` parser: one login module, its control flag and its `name=value`
//! options.
//!
//! This module owns the JAAS syntax Kafka clients accept and the class names of the login
//! modules Ferry maps (PLAIN, SCRAM and OAUTHBEARER). Its messages never quote an option's
//! value, which may be a secret.

/// The login module of SASL `PLAIN`.
pub(super) const PLAIN_LOGIN_MODULE: &str =
    "org.apache.kafka.common.security.plain.PlainLoginModule";
/// The login module of SASL `SCRAM-SHA-256` and `SCRAM-SHA-512`.
pub(super) const SCRAM_LOGIN_MODULE: &str =
    "org.apache.kafka.common.security.scram.ScramLoginModule";
/// The login module of SASL `OAUTHBEARER`.
pub(super) const OAUTHBEARER_LOGIN_MODULE: &str =
    "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule";

/// The login module and options of a `sasl.jaas.config` value.
pub(super) struct Jaas {
    pub(super) module: String,
    /// The options in file order; a later duplicate wins in [`Jaas::option`].
    pub(super) options: Vec<(String, String)>,
}

impl Jaas {
    /// The value of option `name`, if given.
    pub(super) fn option(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|(option, _)| option == name)
            .map(|(_, value)| value.as_str())
    }

    /// The non-empty `username` and `password` options (PLAIN and SCRAM).
    pub(super) fn credentials(&self) -> Result<(String, String), String> {
        match (self.option("username"), self.option("password")) {
            (Some(username), Some(password)) if !username.is_empty() && !password.is_empty() => {
                Ok((username.to_owned(), password.to_owned()))
            }
            _ => {
                Err("the login module needs non-empty `username` and `password` options".to_owned())
            }
        }
    }
}

/// Parses `<LoginModule> <flag> name="value" ... ;` (one login module, as Kafka clients
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
    let mut options = Vec::new();
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
        options.push((name, value));
    }
    skip_space(&mut position);
    if position < chars.len() {
        return Err("only one login module is allowed".to_owned());
    }
    Ok(Jaas { module, options })
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
            jaas.credentials().unwrap(),
            ("u".to_owned(), "p \"q\"".to_owned())
        );
        let oauth = parse_jaas(
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required clientId=\"c\" clientSecret=\"s\" scope=\"a b\" extension_logicalCluster=\"lkc-1\";",
        )
        .unwrap();
        assert_eq!(oauth.module, OAUTHBEARER_LOGIN_MODULE);
        assert_eq!(oauth.option("scope"), Some("a b"));
        assert_eq!(oauth.option("extension_logicalCluster"), Some("lkc-1"));
        assert!(oauth.credentials().is_err());
        assert!(parse_jaas("x required username=\"u\" password=\"p\"").is_err());
        assert!(parse_jaas("x maybe username=\"u\" password=\"p\";").is_err());
        let error = parse_jaas("x required username=\"u\" password=\"secret")
            .err()
            .unwrap();
        assert!(!error.contains("secret\""), "{error}");
    }
}
