//! What the operating system says about this process: peak memory and bytes written.
//!
//! Linux only, read from `/proc/self`; elsewhere every figure is `None`.
//!
//! * **Peak memory** is the kernel's high-water mark of the process's resident set
//!   (`VmHWM` in `/proc/self/status`). [`reset_peak`] writes `5` to `/proc/self/clear_refs`,
//!   which resets that mark to the current resident size, so a peak read after a workload is
//!   the peak *during* it. It is the whole process: the engine, its caches and background
//!   threads, and the benchmark's own latency histogram (a few hundred KiB).
//! * **Bytes written** is `wchar` in `/proc/self/io`: every byte this process passed to a
//!   `write`-family system call, whether or not it reached the disk yet. The engines count
//!   the bytes they append through [`kv_shared::Fs`]; the two should agree, and the report
//!   flags an engine where they differ by more than [`IO_TOLERANCE`]. (`write_bytes`, the
//!   bytes that reached the block layer, is not used: it counts whole pages when they are
//!   first dirtied, so small appends into one page are counted once.)

/// The largest relative difference between an engine's own count of bytes written and the
/// operating system's before the report flags it (issue 7: 5 %).
pub const IO_TOLERANCE: f64 = 0.05;

/// Below this many bytes written in a workload, the comparison is not made: the few bytes
/// the benchmark itself writes (the progress bar) would dominate it.
pub const IO_CHECK_MIN_BYTES: u64 = 256 * 1024;

/// Resets the peak-memory mark to the current resident size. Returns false where that is
/// not possible (not Linux, or `/proc` not writable), in which case [`peak_rss_bytes`] is the
/// peak since the process started.
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The peak resident set size since the last [`reset_peak`], in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    status_kib("VmHWM:").map(|kib| kib * 1024)
}

/// The current resident set size, in bytes.
pub fn rss_bytes() -> Option<u64> {
    status_kib("VmRSS:").map(|kib| kib * 1024)
}

/// Bytes this process has passed to `write` calls since it started (`wchar`).
pub fn os_bytes_written() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    field(&io, "wchar:")
}

/// True when two counts of the same bytes written differ by more than [`IO_TOLERANCE`] of
/// the larger; `false` when both are under [`IO_CHECK_MIN_BYTES`].
pub fn io_mismatch(engine_bytes: u64, os_bytes: u64) -> bool {
    let larger = engine_bytes.max(os_bytes);
    if larger < IO_CHECK_MIN_BYTES {
        return false;
    }
    engine_bytes.abs_diff(os_bytes) as f64 > IO_TOLERANCE * larger as f64
}

fn status_kib(name: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    field(&status, name)
}

/// The number after `name` on the line that starts with it (`VmHWM:   1234 kB`).
fn field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_parse() {
        let status = "Name:\tkvbench\nVmHWM:\t   2048 kB\nVmRSS:\t 1024 kB\n";
        assert_eq!(field(status, "VmHWM:"), Some(2048));
        assert_eq!(field(status, "VmRSS:"), Some(1024));
        assert_eq!(field(status, "VmSwap:"), None);
        assert_eq!(field("wchar: 77\n", "wchar:"), Some(77));
    }

    #[test]
    fn mismatch_needs_enough_bytes_and_a_real_difference() {
        assert!(!io_mismatch(1000, 0));
        assert!(!io_mismatch(10 << 20, (10 << 20) + 100));
        assert!(io_mismatch(10 << 20, 12 << 20));
        assert!(io_mismatch(0, 1 << 20));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn proc_figures_are_read_on_linux() {
        assert!(peak_rss_bytes().expect("VmHWM") > 0);
        assert!(rss_bytes().expect("VmRSS") > 0);
        let before = os_bytes_written().expect("wchar");
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("f"), [0u8; 4096]).unwrap();
        assert!(os_bytes_written().unwrap() >= before + 4096);
    }
}
