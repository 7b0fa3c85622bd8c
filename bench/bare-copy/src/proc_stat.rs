//! A process's CPU time and peak RSS, from `/proc/<pid>`.

/// User + system CPU seconds of `pid` so far (every thread, live or exited).
pub fn cpu_seconds(pid: u32) -> Result<f64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|error| format!("/proc/{pid}/stat: {error}"))?;
    // The command name (field 2) is in parentheses and may hold spaces: fields after the last ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or("unexpected /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3, utime field 14, stime field 15.
    let ticks = |index: usize| -> Result<f64, String> {
        fields
            .get(index - 3)
            .and_then(|field| field.parse::<f64>().ok())
            .ok_or_else(|| "unexpected /proc stat".to_owned())
    };
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok((ticks(14)? + ticks(15)?) / per_second)
}

/// Peak resident set size of `pid` in KiB (`VmHWM`).
pub fn peak_rss_kib(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|error| format!("/proc/{pid}/status: {error}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmHWM".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_cpu_and_memory() {
        let pid = std::process::id();
        assert!(cpu_seconds(pid).is_ok_and(|cpu| cpu >= 0.0));
        assert!(peak_rss_kib(pid).is_ok_and(|kib| kib > 0));
    }
}
