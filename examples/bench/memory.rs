//! This process's memory, from `/proc/self/status`: the resident set now (`VmRSS`)
//! and its peak (`VmHWM`), which is reset before each run so it is that run's peak.

/// Resident memory around one run, in KiB.
#[derive(Debug, Clone, Copy)]
pub struct Rss {
    pub before_kib: u64,
    pub after_kib: u64,
    /// The highest resident set during the run (since the reset), if the kernel
    /// allowed the reset; else the process's peak since it started.
    pub peak_kib: u64,
    pub peak_is_this_run: bool,
}

/// What was resident before a run; [`Sample::finish`] completes it.
pub struct Sample {
    before_kib: u64,
    reset: bool,
}

impl Sample {
    /// Resets the peak (writing 5 to `/proc/self/clear_refs`) and reads the resident set.
    pub fn start() -> Sample {
        let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
        Sample {
            before_kib: read_kib("VmRSS:").unwrap_or(0),
            reset,
        }
    }

    pub fn finish(self) -> Rss {
        Rss {
            before_kib: self.before_kib,
            after_kib: read_kib("VmRSS:").unwrap_or(0),
            peak_kib: read_kib("VmHWM:").unwrap_or(0),
            peak_is_this_run: self.reset,
        }
    }
}

/// Reads one `Name:   1234 kB` line of `/proc/self/status`.
fn read_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// KiB as MiB with one decimal.
pub fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}
