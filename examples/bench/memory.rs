//! A process's memory, from `/proc/<pid>/status`: the resident set now (`VmRSS`)
//! and its peak (`VmHWM`), which is reset before each run so it is that run's peak.
//! The process is this one (in-process paymirror, and the yardsticks) or paymirror's
//! own process (as deployed).

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
    proc_dir: String,
    before_kib: u64,
    reset: bool,
}

impl Sample {
    /// Resets the peak of process `pid` (this one if `None`) by writing 5 to its
    /// `clear_refs`, and reads its resident set.
    pub fn start(pid: Option<u32>) -> Sample {
        let proc_dir = pid.map_or("/proc/self".into(), |pid| format!("/proc/{pid}"));
        let reset = std::fs::write(format!("{proc_dir}/clear_refs"), "5").is_ok();
        Sample {
            before_kib: read_kib(&proc_dir, "VmRSS:").unwrap_or(0),
            proc_dir,
            reset,
        }
    }

    pub fn finish(self) -> Rss {
        Rss {
            before_kib: self.before_kib,
            after_kib: read_kib(&self.proc_dir, "VmRSS:").unwrap_or(0),
            peak_kib: read_kib(&self.proc_dir, "VmHWM:").unwrap_or(0),
            peak_is_this_run: self.reset,
        }
    }
}

/// Reads one `Name:   1234 kB` line of `<proc_dir>/status`.
fn read_kib(proc_dir: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("{proc_dir}/status")).ok()?;
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
