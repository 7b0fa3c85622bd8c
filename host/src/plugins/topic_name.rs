//! [`is_legal_topic_name`]: Kafka's rule for topic names. The policy checks its answers with it,
//! the configuration its fixed topic names.

/// Kafka's rule for topic names (`org.apache.kafka.common.internals.Topic#validate`): 1 to 249
/// characters of `[a-zA-Z0-9._-]`, and neither `.` nor `..`.
pub fn is_legal_topic_name(name: &str) -> bool {
    (1..=249).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::is_legal_topic_name;

    #[test]
    fn topic_name_rules() {
        let check = |name: &str, expected: bool| {
            assert_eq!(is_legal_topic_name(name), expected, "{name:?}")
        };
        check("orders", true);
        check("A.orders_v2-x", true);
        check(&"a".repeat(249), true);
        check(&"a".repeat(250), false);
        check("", false);
        check(".", false);
        check("..", false);
        check("...", true);
        check("bad/name", false);
        check("with space", false);
        check("ünïcode", false);
    }
}
