//! The message for an unknown key: the keys expected in its table, as the `raw` structs declare
//! them, and the nearest one when the key looks like a typo.

use crate::config::location::{KeyPath, Segment};
use crate::config::raw::{
    self, ChainPluginConfig, ClusterConfig, FlowConfig, PluginConfig, RawConfig,
};

/// The message for an unknown key: what was expected there, and the nearest known key.
pub(super) fn unknown_key_message(path: &KeyPath) -> String {
    let expected = path.parent().and_then(|parent| expected_keys(&parent));
    let Some(expected) = expected else {
        return "unknown key".to_owned();
    };
    let suggestion = path
        .last_key()
        .and_then(|key| closest(key, expected))
        .map_or_else(String::new, |closest| {
            format!(", did you mean `{closest}`?")
        });
    format!(
        "unknown key{suggestion} (expected one of: {})",
        expected.join(", ")
    )
}

/// The keys a table at `parent` accepts, as declared by the `raw` structs.
fn expected_keys(parent: &KeyPath) -> Option<&'static [&'static str]> {
    use Segment::{Index, Key};
    let fields = match parent.segments() {
        [] => raw::field_names::<RawConfig>(),
        [Key(clusters), Key(_)] if clusters == "clusters" => raw::field_names::<ClusterConfig>(),
        [Key(clusters), Key(_), Key(table)] if clusters == "clusters" && table == "sasl" => {
            raw::field_names::<raw::SaslConfig>()
        }
        [Key(clusters), Key(_), Key(table)] if clusters == "clusters" && table == "ssl" => {
            raw::field_names::<raw::SslConfig>()
        }
        [Key(flows), Index(_)] if flows == "flows" => raw::field_names::<FlowConfig>(),
        [Key(flows), Index(_), Key(table)] if flows == "flows" && table == "policy" => {
            raw::field_names::<PluginConfig>()
        }
        [Key(flows), Index(_), Key(table), Index(_)]
            if flows == "flows" && (table == "filters" || table == "transforms") =>
        {
            raw::field_names::<ChainPluginConfig>()
        }
        [Key(flows), Index(_), Key(table)]
            if flows == "flows"
                && matches!(
                    table.as_str(),
                    "topic_filter" | "group_filter" | "config_property_filter"
                ) =>
        {
            raw::field_names::<ChainPluginConfig>()
        }
        _ => return None,
    };
    (!fields.is_empty()).then_some(fields)
}

/// The expected key nearest to `key`, if it is near enough to be a typo (`topic`, `topics-exclude`,
/// `topics.exclude` all suggest a key).
fn closest(key: &str, expected: &[&'static str]) -> Option<&'static str> {
    let normalize = |text: &str| text.to_ascii_lowercase().replace(['-', '.'], "_");
    let key = normalize(key);
    expected
        .iter()
        .map(|candidate| (edit_distance(&key, &normalize(candidate)), *candidate))
        .filter(|(distance, _)| *distance <= 2.max(key.len() / 4))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance.
fn edit_distance(left: &str, right: &str) -> usize {
    let right: Vec<char> = right.chars().collect();
    let mut previous: Vec<usize> = (0..=right.len()).collect();
    for (i, left_char) in left.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, right_char) in right.iter().enumerate() {
            let substitution = previous[j] + usize::from(left_char != *right_char);
            let insertion = current[j] + 1;
            let deletion = previous[j + 1] + 1;
            current.push(substitution.min(insertion).min(deletion));
        }
        previous = current;
    }
    previous[right.len()]
}
