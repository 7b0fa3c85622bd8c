//! Java library semantics that MirrorMaker 2 policies depend on, so that a policy ported from
//! Java behaves the same on every edge case.

/// Splits `input` around literal occurrences of `separator`, exactly as Java's
/// `Pattern.compile(Pattern.quote(separator)).split(input)` does (limit 0):
///
/// - matches are found left to right without overlap;
/// - a leading empty string is kept when the input starts with a non-empty separator, but a
///   zero-width match at the start (empty separator) yields no leading empty string;
/// - trailing empty strings are dropped, so the result can be empty (`"."` or `".."` split on
///   `"."`);
/// - an input without any match yields the input itself, even when it is empty.
///
/// An empty separator splits between characters, as Java's empty pattern does.
///
/// ```
/// use ferry_plugin_sdk::java::split;
/// assert_eq!(split("A.B.topic", "."), ["A", "B", "topic"]);
/// assert_eq!(split(".topic", "."), ["", "topic"]);
/// assert_eq!(split("topic.", "."), ["topic"]);
/// assert!(split("..", ".").is_empty());
/// ```
pub fn split<'a>(input: &'a str, separator: &str) -> Vec<&'a str> {
    let mut parts: Vec<&'a str> = Vec::new();
    let mut index = 0;
    let mut matched = false;
    if separator.is_empty() {
        // Java finds a zero-width match at every position; the one at 0 is skipped.
        for (position, _) in input.char_indices().skip(1) {
            parts.push(&input[index..position]);
            index = position;
            matched = true;
        }
        if !input.is_empty() {
            // The zero-width match at the end of the input.
            parts.push(&input[index..]);
            index = input.len();
            matched = true;
        }
    } else {
        for (position, found) in input.match_indices(separator) {
            parts.push(&input[index..position]);
            index = position + found.len();
            matched = true;
        }
    }
    if !matched {
        return vec![input];
    }
    parts.push(&input[index..]);
    while parts.last().is_some_and(|part| part.is_empty()) {
        parts.pop();
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::split;

    fn check(input: &str, separator: &str, expected: &[&str]) {
        assert_eq!(
            split(input, separator),
            expected,
            "split({input:?}, {separator:?})"
        );
    }

    #[test]
    fn splits_like_java_pattern_split() {
        check("topic", ".", &["topic"]);
        check("", ".", &[""]);
        check("A.topic", ".", &["A", "topic"]);
        check("A.B.topic", ".", &["A", "B", "topic"]);
        check(".topic", ".", &["", "topic"]);
        check("topic.", ".", &["topic"]);
        check("A.", ".", &["A"]);
        check(".", ".", &[]);
        check("..", ".", &[]);
        check("A..topic", ".", &["A", "", "topic"]);
        check("a.b.", ".", &["a", "b"]);
        check("..a", ".", &["", "", "a"]);
    }

    #[test]
    fn separators_are_literal_and_non_overlapping() {
        check("A->B->t", "->", &["A", "B", "t"]);
        check("a...b", "..", &["a", ".b"]);
        check("a....b", "..", &["a", "", "b"]);
        check("a*b", "*", &["a", "b"]);
        check("a.b", "*", &["a.b"]);
        check("dc-a-orders", "-", &["dc", "a", "orders"]);
    }

    #[test]
    fn empty_separator_splits_between_characters() {
        check("abc", "", &["a", "b", "c"]);
        check("a", "", &["a"]);
        check("", "", &[""]);
    }
}
