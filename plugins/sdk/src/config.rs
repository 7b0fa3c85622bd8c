//! The configuration a plugin receives in `init`: owns key lookup with MirrorMaker 2's semantics
//! (a later key overrides an earlier one, as in a Java `Map`), and Java's boolean parsing.

/// The `init` configuration: the flow's `with` table in file order, followed by the keys the host
/// adds (`source.cluster.alias`, `target.cluster.alias`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    entries: Vec<(String, String)>,
}

impl Config {
    /// Wraps the key-value pairs `init` received.
    pub fn new(entries: Vec<(String, String)>) -> Config {
        Config { entries }
    }

    /// The value of `key`; when the key appears more than once, the last value wins, as it does
    /// when MM2 builds its config map.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .rev()
            .find(|(candidate, _)| candidate == key)
            .map(|(_, value)| value.as_str())
    }

    /// Whether `key` is present (MM2: `props.containsKey(key)`).
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The value of `key` parsed as Java's `Boolean.parseBoolean` does: `true` when the value is
    /// `true` in any case, `false` for any other value; `None` when the key is absent.
    pub fn get_bool(&self, key: &str) -> Option<bool> {
        self.get(key)
            .map(|value| value.eq_ignore_ascii_case("true"))
    }

    /// All entries, in the order `init` received them.
    pub fn entries(&self) -> &[(String, String)] {
        &self.entries
    }
}

impl From<Vec<(String, String)>> for Config {
    fn from(entries: Vec<(String, String)>) -> Config {
        Config::new(entries)
    }
}

impl<const N: usize> From<[(&str, &str); N]> for Config {
    fn from(entries: [(&str, &str); N]) -> Config {
        Config::new(
            entries
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::Config;

    #[test]
    fn last_key_wins() {
        let config = Config::from([("a", "1"), ("b", "2"), ("a", "3")]);
        assert_eq!(config.get("a"), Some("3"));
        assert_eq!(config.get("b"), Some("2"));
        assert_eq!(config.get("c"), None);
        assert!(config.contains_key("b"));
        assert!(!config.contains_key("c"));
    }

    #[test]
    fn booleans_parse_like_java() {
        let check = |value: &str, expected: bool| {
            let config = Config::from([("k", value)]);
            assert_eq!(config.get_bool("k"), Some(expected), "value {value:?}");
        };
        check("true", true);
        check("TRUE", true);
        check("True", true);
        check("false", false);
        check("yes", false);
        check("1", false);
        check("", false);
        check(" true", false);
        assert_eq!(Config::default().get_bool("k"), None);
    }
}
