//! Kafka's config providers (KIP-297) in an MM2 file: `config.providers = file,env,directory`,
//! each with `config.providers.<name>.class`, and `${<name>:[<path>:]<key>}` references in
//! values, substituted before resolution as MM2's `MirrorMakerConfig#transform` does.
//!
//! This module owns the three providers Kafka ships, read the way Kafka reads them:
//! `FileConfigProvider` (`${file:/path/x.properties:key}`: a key of a Java properties file),
//! `EnvVarConfigProvider` (`${env:VAR}`) and `DirectoryConfigProvider`
//! (`${directory:/path/dir:file}`: the content of a file in the directory), with their
//! `allowed.paths` and `allowlist.pattern` parameters. Kafka leaves a reference it cannot
//! resolve in the value as written; Ferry reports it, naming the key and its line, since a
//! literal `${...}` password or file name is never what the operator meant. Substituted values
//! are never put into a message: every piece is returned so that messages about the key can
//! mask it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

use fancy_regex::Regex;

use super::properties::{Property, parse_properties};
use crate::config::ConfigError;
use crate::config::interpolate::Env;

/// The top-level key listing the providers.
const PROVIDERS_KEY: &str = "config.providers";
const FILE_PROVIDER: &str = "org.apache.kafka.common.config.provider.FileConfigProvider";
const ENV_PROVIDER: &str = "org.apache.kafka.common.config.provider.EnvVarConfigProvider";
const DIRECTORY_PROVIDER: &str = "org.apache.kafka.common.config.provider.DirectoryConfigProvider";

/// What substitution did: the provider keys it read and, by key, the substituted pieces.
#[derive(Debug, Default)]
pub(super) struct Provided {
    /// The `config.providers*` keys read.
    pub(super) used: HashSet<String>,
    /// Every key whose value took something from a provider, with what it took (to be masked
    /// in messages).
    pub(super) values: HashMap<String, Vec<String>>,
}

/// One of Kafka's providers, configured.
enum Provider {
    File { allowed: Option<Vec<PathBuf>> },
    Env { allowlist: Option<Regex> },
    Directory { allowed: Option<Vec<PathBuf>> },
}

/// Substitutes every `${provider:path:key}` reference in the values of `props`, reporting
/// what cannot be resolved into `errors`.
pub(super) fn substitute(
    props: &mut BTreeMap<String, Property>,
    env: Env<'_>,
    errors: &mut Vec<ConfigError>,
) -> Provided {
    let mut provided = Provided::default();
    let mut report = |key: &str, line: Option<usize>, message: String| {
        errors.push(ConfigError {
            line,
            key: key.to_owned(),
            message,
        });
    };
    let line_of = |props: &BTreeMap<String, Property>, key: &str| props.get(key).map(|p| p.line);

    // The providers: `None` for one whose configuration is wrong (already reported).
    let mut providers: BTreeMap<String, Option<Provider>> = BTreeMap::new();
    if let Some(listed) = props.get(PROVIDERS_KEY) {
        provided.used.insert(PROVIDERS_KEY.to_owned());
        let names: Vec<String> = listed
            .value
            .split(',')
            .map(|name| name.trim().to_owned())
            .filter(|name| !name.is_empty())
            .collect();
        for name in names {
            let class_key = format!("{PROVIDERS_KEY}.{name}.class");
            let param = |param: &str| format!("{PROVIDERS_KEY}.{name}.param.{param}");
            let Some(class) = props.get(&class_key).map(|p| p.value.trim().to_owned()) else {
                report(
                    PROVIDERS_KEY,
                    line_of(props, PROVIDERS_KEY),
                    format!("provider `{name}` needs `{class_key}`"),
                );
                providers.insert(name, None);
                continue;
            };
            provided.used.insert(class_key.clone());
            let paths_key = param("allowed.paths");
            let mut allowed_paths = || {
                props.get(&paths_key).map(|property| {
                    provided.used.insert(paths_key.clone());
                    property
                        .value
                        .split(',')
                        .map(str::trim)
                        .filter(|path| !path.is_empty())
                        .map(|path| normalize(Path::new(path)))
                        .collect::<Vec<_>>()
                })
            };
            let provider = match class.as_str() {
                FILE_PROVIDER => Some(Provider::File {
                    allowed: allowed_paths(),
                }),
                DIRECTORY_PROVIDER => Some(Provider::Directory {
                    allowed: allowed_paths(),
                }),
                ENV_PROVIDER => {
                    let pattern_key = param("allowlist.pattern");
                    match props.get(&pattern_key).map(|p| p.value.trim().to_owned()) {
                        None => Some(Provider::Env { allowlist: None }),
                        Some(pattern) => {
                            provided.used.insert(pattern_key.clone());
                            match Regex::new(&format!("^(?:{pattern})$")) {
                                Ok(regex) => Some(Provider::Env {
                                    allowlist: Some(regex),
                                }),
                                Err(error) => {
                                    report(
                                        &pattern_key,
                                        line_of(props, &pattern_key),
                                        format!("invalid regex: {error}"),
                                    );
                                    None
                                }
                            }
                        }
                    }
                }
                other => {
                    report(
                        &class_key,
                        line_of(props, &class_key),
                        format!(
                            "unsupported config provider class `{other}` (expected {FILE_PROVIDER}, {ENV_PROVIDER} or {DIRECTORY_PROVIDER})"
                        ),
                    );
                    None
                }
            };
            providers.insert(name, provider);
        }
    }

    let mut files: HashMap<PathBuf, Result<BTreeMap<String, Property>, String>> = HashMap::new();
    let keys: Vec<String> = props
        .keys()
        .filter(|key| !key.starts_with(PROVIDERS_KEY))
        .cloned()
        .collect();
    for key in keys {
        let Some(property) = props.get(&key) else {
            continue;
        };
        let line = property.line;
        let value = property.value.clone();
        let mut substituted = String::with_capacity(value.len());
        let mut pieces = Vec::new();
        let mut rest = value.as_str();
        let mut failed = false;
        while let Some((before, reference, after)) = next_reference(rest) {
            substituted.push_str(before);
            rest = after;
            let text = reference.text;
            let resolved = match providers.get(reference.provider) {
                None => {
                    let listed = if providers.is_empty() {
                        "no provider is listed".to_owned()
                    } else {
                        format!(
                            "listed: {}",
                            providers.keys().cloned().collect::<Vec<_>>().join(", ")
                        )
                    };
                    Err(format!(
                        "`{text}` names config provider `{}`, which `config.providers` does not list ({listed})",
                        reference.provider
                    ))
                }
                // The provider's configuration is wrong, and that was reported.
                Some(None) => {
                    failed = true;
                    continue;
                }
                Some(Some(provider)) => resolve(provider, &reference, env, &mut files)
                    .map_err(|message| format!("`{text}`: {message}")),
            };
            match resolved {
                Ok(piece) => {
                    substituted.push_str(&piece);
                    pieces.push(piece);
                }
                Err(message) => {
                    report(&key, Some(line), message);
                    failed = true;
                }
            }
        }
        substituted.push_str(rest);
        if !pieces.is_empty()
            && !failed
            && let Some(property) = props.get_mut(&key)
        {
            property.value = substituted;
        }
        if !pieces.is_empty() {
            provided.values.insert(key, pieces);
        }
    }
    provided
}

/// A `${provider:[path:]key}` reference.
struct Reference<'v> {
    /// The whole reference, `${...}`, for messages (it names no secret, only where one is).
    text: &'v str,
    provider: &'v str,
    path: Option<&'v str>,
    key: &'v str,
}

/// The first reference in `value`, with the text before and after it. Kafka's pattern is
/// `\$\{([^}]*?):(([^}]*?):)?([^}]*?)\}`: the provider ends at the first `:`, the path at the
/// second, and the key is the rest; `${...}` without a `:` is not a reference.
fn next_reference(value: &str) -> Option<(&str, Reference<'_>, &str)> {
    let mut from = 0;
    loop {
        let start = from + value[from..].find("${")?;
        let inner_start = start + 2;
        let end = inner_start + value[inner_start..].find('}')?;
        let inner = &value[inner_start..end];
        if let Some((provider, rest)) = inner.split_once(':') {
            let (path, key) = match rest.split_once(':') {
                Some((path, key)) => (Some(path), key),
                None => (None, rest),
            };
            let reference = Reference {
                text: &value[start..=end],
                provider,
                path,
                key,
            };
            return Some((&value[..start], reference, &value[end + 1..]));
        }
        from = inner_start;
    }
}

/// The value `reference` stands for, or why it cannot be read (never quoting a value).
fn resolve(
    provider: &Provider,
    reference: &Reference<'_>,
    env: Env<'_>,
    files: &mut HashMap<PathBuf, Result<BTreeMap<String, Property>, String>>,
) -> Result<String, String> {
    let path = reference.path.unwrap_or_default();
    match provider {
        Provider::Env { allowlist } => {
            if !path.is_empty() {
                return Err(format!(
                    "the env provider takes no path: write `${{env:{}}}`",
                    reference.key
                ));
            }
            let name = reference.key;
            if let Some(allowlist) = allowlist
                && !allowlist.is_match(name).unwrap_or(false)
            {
                return Err(format!(
                    "environment variable `{name}` is not allowed by the provider's allowlist.pattern"
                ));
            }
            env(name).ok_or_else(|| format!("environment variable `{name}` is not set"))
        }
        Provider::File { allowed } => {
            let path = checked_path(path, allowed.as_deref(), "file")?;
            let properties = files
                .entry(path.clone())
                .or_insert_with(|| read_properties(&path));
            let properties = properties.as_ref().map_err(Clone::clone)?;
            properties
                .get(reference.key)
                .map(|property| property.value.clone())
                .ok_or_else(|| format!("`{}` has no key `{}`", path.display(), reference.key))
        }
        Provider::Directory { allowed } => {
            let directory = checked_path(path, allowed.as_deref(), "directory")?;
            let name = reference.key;
            if name.is_empty() || name.contains(['/', '\\']) || name == "." || name == ".." {
                return Err(format!(
                    "`{name}` is not the name of a file in `{}`",
                    directory.display()
                ));
            }
            let file = directory.join(name);
            std::fs::read_to_string(&file)
                .map_err(|error| format!("cannot read `{}`: {error}", file.display()))
        }
    }
}

/// The provider's path, checked against its `allowed.paths` (Kafka normalizes both and
/// requires the path to start with one of them).
fn checked_path(path: &str, allowed: Option<&[PathBuf]>, what: &str) -> Result<PathBuf, String> {
    if path.is_empty() {
        return Err(format!(
            "a {what} reference needs a path: `${{<provider>:<path>:<key>}}`"
        ));
    }
    let normalized = normalize(Path::new(path));
    if let Some(allowed) = allowed
        && !allowed.iter().any(|root| normalized.starts_with(root))
    {
        return Err(format!(
            "`{path}` is not under the provider's allowed.paths"
        ));
    }
    Ok(normalized)
}

/// `Path#normalize`: `.` removed, `..` applied, lexically.
fn normalize(path: &Path) -> PathBuf {
    let mut normalized = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !normalized.pop() {
                    normalized.push("..");
                }
            }
            other => normalized.push(other),
        }
    }
    normalized
}

/// A Java properties file, as `FileConfigProvider` reads it.
fn read_properties(path: &Path) -> Result<BTreeMap<String, Property>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read `{}`: {error}", path.display()))?;
    let (properties, errors) = parse_properties(&text);
    match errors.first() {
        None => Ok(properties),
        Some(error) => Err(format!(
            "`{}` line {}: malformed escape",
            path.display(),
            error.line.unwrap_or_default()
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "MM2_PASSWORD" => Some("env-s3cret".to_owned()),
            "OTHER" => Some("other".to_owned()),
            _ => None,
        }
    }

    /// A directory with a properties file and a secret file, unique to `test`.
    fn secrets_dir(test: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("ferry-providers-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("secrets.properties"),
            "# credentials\nsasl.password = file-s3cret\nuser: mm2\n",
        )
        .unwrap();
        std::fs::write(dir.join("password"), "dir-s3cret\n").unwrap();
        dir
    }

    fn run(text: &str) -> (BTreeMap<String, Property>, Provided, Vec<ConfigError>) {
        let (mut props, mut errors) = parse_properties(text);
        let provided = substitute(&mut props, &env, &mut errors);
        (props, provided, errors)
    }

    const PROVIDERS: &str = "config.providers = file, env, directory
config.providers.file.class = org.apache.kafka.common.config.provider.FileConfigProvider
config.providers.env.class = org.apache.kafka.common.config.provider.EnvVarConfigProvider
config.providers.directory.class = org.apache.kafka.common.config.provider.DirectoryConfigProvider
";

    #[test]
    fn file_env_and_directory_values_are_substituted() {
        let dir = secrets_dir("substituted");
        let dir = dir.display();
        let (props, provided, errors) = run(&format!(
            "{PROVIDERS}a = ${{file:{dir}/secrets.properties:sasl.password}}\n\
             b = u=${{file:{dir}/secrets.properties:user}} p=${{env:MM2_PASSWORD}};\n\
             c = ${{directory:{dir}:password}}\n\
             d = ${{nocolon}} stays\n"
        ));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(props["a"].value, "file-s3cret");
        assert_eq!(props["b"].value, "u=mm2 p=env-s3cret;");
        assert_eq!(props["c"].value, "dir-s3cret\n");
        assert_eq!(props["d"].value, "${nocolon} stays");
        assert_eq!(provided.values["b"], ["mm2", "env-s3cret"]);
        assert!(!provided.values.contains_key("d"));
        for key in [
            "config.providers",
            "config.providers.file.class",
            "config.providers.env.class",
            "config.providers.directory.class",
        ] {
            assert!(provided.used.contains(key), "{key}");
        }
    }

    #[test]
    fn unresolved_references_name_key_and_line() {
        let dir = secrets_dir("unresolved");
        let dir = dir.display();
        let (_, _, errors) = run(&format!(
            "{PROVIDERS}a = ${{file:{dir}/secrets.properties:missing}}\n\
             b = ${{file:{dir}/nothing.properties:x}}\n\
             c = ${{env:UNSET}}\n\
             d = ${{vault:secret/mm2:password}}\n\
             e = ${{directory:{dir}:../etc}}\n\
             f = ${{env:/x:OTHER}}\n"
        ));
        let found: Vec<(&str, Option<usize>)> = errors
            .iter()
            .map(|error| (error.key.as_str(), error.line))
            .collect();
        assert_eq!(
            found,
            [
                ("a", Some(5)),
                ("b", Some(6)),
                ("c", Some(7)),
                ("d", Some(8)),
                ("e", Some(9)),
                ("f", Some(10)),
            ]
        );
        assert!(
            errors[0].message.contains("has no key `missing`"),
            "{}",
            errors[0].message
        );
        assert!(
            errors[1].message.contains("cannot read"),
            "{}",
            errors[1].message
        );
        assert!(errors[2].message.contains("`UNSET` is not set"));
        assert!(
            errors[3]
                .message
                .contains("names config provider `vault`, which `config.providers` does not list (listed: directory, env, file)"),
            "{}",
            errors[3].message
        );
        assert!(errors[4].message.contains("not the name of a file"));
        assert!(errors[5].message.contains("takes no path"));
        for error in &errors {
            assert!(!error.message.contains("s3cret"), "{}", error.message);
        }
    }

    #[test]
    fn provider_configuration_is_checked() {
        let (_, _, errors) = run("config.providers = vault, env, file\n\
             config.providers.vault.class = com.example.VaultConfigProvider\n\
             config.providers.env.class = org.apache.kafka.common.config.provider.EnvVarConfigProvider\n\
             config.providers.env.param.allowlist.pattern = MM2_.*\n\
             a = ${vault:x:y}\n\
             b = ${env:OTHER}\n\
             c = ${env:MM2_PASSWORD}\n");
        let mut errors = errors;
        errors.sort_by_key(|error| error.line);
        let found: Vec<(&str, Option<usize>)> = errors
            .iter()
            .map(|error| (error.key.as_str(), error.line))
            .collect();
        assert_eq!(
            found,
            [
                ("config.providers", Some(1)),
                ("config.providers.vault.class", Some(2)),
                ("b", Some(6)),
            ]
        );
        assert!(
            errors[0]
                .message
                .contains("provider `file` needs `config.providers.file.class`")
        );
        assert!(
            errors[1]
                .message
                .contains("com.example.VaultConfigProvider")
        );
        assert!(errors[2].message.contains("allowlist.pattern"));
    }

    #[test]
    fn allowed_paths_restrict_files() {
        let dir = secrets_dir("allowed");
        let (_, _, errors) = run(&format!(
            "config.providers = file\n\
             config.providers.file.class = org.apache.kafka.common.config.provider.FileConfigProvider\n\
             config.providers.file.param.allowed.paths = {}/sub\n\
             a = ${{file:{}/secrets.properties:user}}\n\
             b = ${{file:{}/sub/../secrets.properties:user}}\n",
            dir.display(),
            dir.display(),
            dir.display(),
        ));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors
                .iter()
                .all(|error| error.message.contains("allowed.paths"))
        );
        assert_eq!(normalize(Path::new("/a/./b/../c")), Path::new("/a/c"));
    }
}
