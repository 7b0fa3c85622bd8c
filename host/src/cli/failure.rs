//! How a command fails: the exit code and the lines to print, shared by every command.

/// A start-up failure, with its exit code.
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) lines: Vec<String>,
}

impl Failure {
    /// Exit code 2: the configuration or a plugin is invalid.
    pub(crate) fn config(lines: Vec<String>) -> Failure {
        Failure { code: 2, lines }
    }

    /// Exit code 1: a runtime failure.
    pub(crate) fn runtime(line: String) -> Failure {
        Failure {
            code: 1,
            lines: vec![line],
        }
    }
}
