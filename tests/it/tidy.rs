//! Repository rules that a reader of the tree relies on, checked as tests (no broker needed).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            found.push(path);
        }
    }
}

/// The module path of a file of `host/src` (`flow::swap` for `flow/swap.rs`, `flow` for
/// `flow/mod.rs`, the empty path for `lib.rs`).
fn module_of(root: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(root).unwrap().with_extension("");
    let mut parts: Vec<String> = relative
        .components()
        .map(|part| part.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts
        .last()
        .is_some_and(|last| last == "mod" || last == "lib")
    {
        parts.pop();
    }
    parts
}

/// The `crate::…` and `super::…` paths named in `text`, outside comments and unit tests.
fn named_paths(text: &str) -> Vec<Vec<String>> {
    let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    let mut paths = Vec::new();
    for line in code.lines() {
        let line = line.split("//").next().unwrap_or("");
        let bytes = line.as_bytes();
        let mut start = 0;
        while let Some(offset) = line[start..].find(['c', 's']) {
            let at = start + offset;
            start = at + 1;
            let boundary = at == 0
                || !(bytes[at - 1].is_ascii_alphanumeric()
                    || bytes[at - 1] == b'_'
                    || bytes[at - 1] == b':');
            let rest = &line[at..];
            if !boundary || !(rest.starts_with("crate::") || rest.starts_with("super::")) {
                continue;
            }
            let path: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            paths.push(
                path.split("::")
                    .filter(|segment| !segment.is_empty())
                    .map(str::to_owned)
                    .collect(),
            );
        }
    }
    paths
}

/// Resolves `path` named in module `from` to the longest existing module it names.
fn resolve(
    modules: &BTreeSet<Vec<String>>,
    from: &[String],
    path: &[String],
) -> Option<Vec<String>> {
    let mut base: Vec<String> = Vec::new();
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => rest = &rest[1..],
        Some("super") => {
            base = from.to_vec();
            while rest.first().is_some_and(|segment| segment == "super") {
                base.pop();
                rest = &rest[1..];
            }
        }
        _ => return None,
    }
    (0..=rest.len()).rev().find_map(|length| {
        let mut candidate = base.clone();
        candidate.extend_from_slice(&rest[..length]);
        modules.contains(&candidate).then_some(candidate)
    })
}

/// Issue 12: no import cycle between files that are not one concept. A folder is one concept:
/// a file importing from its own ancestors (`super::…` in `worker/store.rs` naming
/// `worker::Worker`) is how a folder's files share their parent's types, and is allowed; any
/// other cycle in the graph of `crate::` / `super::` imports is reported with its members.
#[test]
fn no_import_cycles_between_concepts() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let sources: BTreeMap<Vec<String>, String> = files
        .iter()
        .filter(|file| !file.ends_with("main.rs"))
        .map(|file| {
            (
                module_of(&root, file),
                std::fs::read_to_string(file).unwrap(),
            )
        })
        .collect();
    let modules: BTreeSet<Vec<String>> = sources.keys().cloned().collect();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (module, text) in &sources {
        let targets = edges.entry(module.clone()).or_default();
        for path in named_paths(text) {
            if let Some(target) = resolve(&modules, module, &path)
                && !target.is_empty()
                && target != *module
                && !module.starts_with(&target)
            {
                targets.insert(target);
            }
        }
    }
    // A cycle exists when some module reaches itself.
    let mut cycles = Vec::new();
    for start in edges.keys() {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<Vec<String>> = edges[start].iter().cloned().collect();
        while let Some(next) = stack.pop() {
            if next == *start {
                cycles.push(start.join("::"));
                break;
            }
            if seen.insert(next.clone()) {
                stack.extend(edges.get(&next).into_iter().flatten().cloned());
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "modules that import themselves through others: {cycles:?}"
    );
    // The check must see the tree: the record path imports the MM2 rules.
    let store = ["replication", "worker", "store"]
        .map(str::to_owned)
        .to_vec();
    assert!(
        edges[&store].contains(&vec!["mm2".to_owned(), "translation".to_owned()]),
        "the import graph was not read"
    );
}
