//! Topic selection lists with MirrorMaker 2 semantics.
//!
//! MM2 (`MirrorUtils.compilePatternList`) joins the entries of a list with `|` into one Java
//! regex and requires it to match the **whole** topic name (`Matcher#matches`); an empty list
//! matches nothing. [`TopicPatterns`] does the same with `^(?:a|b)$` and `fancy-regex`, which
//! supports Java's lookarounds and backreferences.

use std::fmt;

use fancy_regex::Regex;

/// A compiled topic list: matches a topic when any entry matches the whole name.
#[derive(Clone)]
pub struct TopicPatterns {
    /// The entries as written.
    patterns: Vec<String>,
    /// `^(?:a|b)$`, or `None` for an empty list (which matches nothing).
    regex: Option<Regex>,
}

impl TopicPatterns {
    /// Compiles a list of regexes (the array form, `topics = ["a.*", "b"]`).
    ///
    /// # Errors
    ///
    /// Returns a message naming the first entry that is empty or not a valid regex.
    pub fn parse_list(items: &[String]) -> Result<TopicPatterns, String> {
        for item in items {
            if item.is_empty() {
                return Err(
                    "an empty regex matches no topic; use an empty list to select nothing"
                        .to_owned(),
                );
            }
            // Compiled alone first, so that the message names the entry at fault.
            Regex::new(item).map_err(|error| format!("invalid regex `{item}`: {error}"))?;
        }
        let regex = if items.is_empty() {
            None
        } else {
            let joined = format!("^(?:{})$", items.join("|"));
            let regex = Regex::new(&joined)
                .map_err(|error| format!("invalid regex list `{}`: {error}", items.join(", ")))?;
            Some(regex)
        };
        Ok(TopicPatterns {
            patterns: items.to_vec(),
            regex,
        })
    }

    /// Compiles an MM2-style list (`topics = "a.*, b"`): split on commas, entries trimmed.
    /// Empty entries are dropped: in MM2 they only match the empty topic name, which Kafka
    /// does not allow. As in MM2, a regex cannot contain a comma (`{1,3}` is split).
    ///
    /// # Errors
    ///
    /// Returns a message naming the first entry that is not a valid regex.
    pub fn parse_mm2(comma_list: &str) -> Result<TopicPatterns, String> {
        let items: Vec<String> = comma_list
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::to_owned)
            .collect();
        Self::parse_list(&items)
    }

    /// Whether `topic` is selected. A match that exceeds the regex engine's backtracking limit
    /// counts as no match.
    pub fn matches(&self, topic: &str) -> bool {
        self.regex
            .as_ref()
            .is_some_and(|regex| regex.is_match(topic).unwrap_or(false))
    }

    /// The entries as written.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }
}

impl fmt::Debug for TopicPatterns {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_tuple("TopicPatterns")
            .field(&self.patterns)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mm2(list: &str) -> TopicPatterns {
        TopicPatterns::parse_mm2(list).unwrap()
    }

    /// `(list, topic, expected)`.
    fn check(patterns: &TopicPatterns, cases: &[(&str, bool)]) {
        for (topic, expected) in cases {
            assert_eq!(
                patterns.matches(topic),
                *expected,
                "{:?} matching {topic:?}",
                patterns.patterns()
            );
        }
    }

    #[test]
    fn full_match() {
        check(
            &mm2("prod.*.global$"),
            &[
                ("prod.orders.global", true),
                ("xprod.orders.global", false),
                ("prod.orders.globalx", false),
                ("prod.orders.global.x", false),
            ],
        );
        check(
            &mm2("orders"),
            &[("orders", true), ("orders2", false), ("my-orders", false)],
        );
        check(&mm2(".*"), &[("anything", true), ("", true)]);
    }

    #[test]
    fn lists_join_with_or() {
        let patterns = mm2(" a.* , b ,");
        assert_eq!(patterns.patterns(), ["a.*", "b"]);
        check(
            &patterns,
            &[("abc", true), ("b", true), ("bc", false), ("c", false)],
        );
        let from_array = TopicPatterns::parse_list(&["a.*".to_owned(), "b".to_owned()]).unwrap();
        check(&from_array, &[("abc", true), ("b", true), ("bc", false)]);
        // An entry with its own alternation stays inside the anchors.
        check(&mm2("x|y"), &[("x", true), ("y", true), ("xy", false)]);
    }

    #[test]
    fn empty_list_matches_nothing() {
        for patterns in [
            mm2(""),
            mm2("  "),
            mm2(" , "),
            TopicPatterns::parse_list(&[]).unwrap(),
        ] {
            assert!(patterns.patterns().is_empty());
            check(
                &patterns,
                &[("", false), ("a", false), ("__consumer_offsets", false)],
            );
        }
    }

    #[test]
    fn mm2_default_excludes() {
        check(
            &mm2(r".*[\-\.]internal, .*\.replica, __.*"),
            &[
                ("mm2-offsets.A.internal", true),
                ("mm2-configs.A.internal", true),
                ("foo-internal", true),
                ("__consumer_offsets", true),
                ("__transaction_state", true),
                ("x.replica", true),
                ("internal", false),
                ("foointernal", false),
                ("x.replica2", false),
                ("orders", false),
                ("heartbeats", false),
            ],
        );
    }

    #[test]
    fn java_lookarounds() {
        check(
            &mm2("(?!test\\.).*"),
            &[("orders", true), ("test.orders", false)],
        );
    }

    #[test]
    fn invalid_regexes() {
        let cases: [(&[&str], &str); 3] = [
            (&["a", "(b"], "invalid regex `(b`: "),
            (&[""], "an empty regex matches no topic"),
            (&["[z-a]"], "invalid regex `[z-a]`: "),
        ];
        for (items, expected) in cases {
            let items: Vec<String> = items.iter().map(|item| (*item).to_owned()).collect();
            let error = TopicPatterns::parse_list(&items).unwrap_err();
            assert!(error.starts_with(expected), "{items:?}: {error}");
        }
    }
}
