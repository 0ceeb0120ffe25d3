//! The facts of the machine `kici-admin` runs on, for `system/info.json` when the
//! orchestrator's `system-info` cannot be read (often the same machine). Linux facts come from
//! `/proc`; a fact that cannot be read is `null`. Blocking reads of tiny files.

use serde_json::{Value, json};

/// The same fields as `GET /api/v1/admin/system-info` where this machine can tell them, and
/// `source` saying whose facts these are.
pub fn system_info() -> Value {
    let meminfo = read("/proc/meminfo");
    let memory = |field: &str| meminfo.as_deref().and_then(|text| meminfo_bytes(text, field));
    json!({
        "source": "kici-admin (the machine the bundle was made on; the orchestrator's system-info could not be read)",
        "platform": std::env::consts::OS,
        "release": read("/proc/sys/kernel/osrelease"),
        "arch": std::env::consts::ARCH,
        "hostname": read("/proc/sys/kernel/hostname"),
        "cpuCount": std::thread::available_parallelism().ok().map(|count| count.get()),
        "totalMemory": memory("MemTotal"),
        "freeMemory": memory("MemAvailable"),
        "uptime": read("/proc/uptime").as_deref().and_then(uptime_seconds),
    })
}

/// A trimmed file, or `None` when it cannot be read (not Linux, no /proc).
fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|text| text.trim().to_string())
}

/// `MemTotal:  16309260 kB` → bytes.
fn meminfo_bytes(meminfo: &str, field: &str) -> Option<u64> {
    meminfo.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        let kilobytes: u64 = rest.split_whitespace().next()?.parse().ok()?;
        Some(kilobytes * 1024)
    })
}

/// `/proc/uptime`'s first number, in whole seconds.
fn uptime_seconds(text: &str) -> Option<u64> {
    let seconds: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some(seconds as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_formats() {
        let meminfo = "MemTotal:       16309260 kB\nMemFree:         1000 kB\nMemAvailable:    8000000 kB\n";
        assert_eq!(meminfo_bytes(meminfo, "MemTotal"), Some(16_309_260 * 1024));
        assert_eq!(meminfo_bytes(meminfo, "MemAvailable"), Some(8_000_000 * 1024));
        assert_eq!(meminfo_bytes(meminfo, "Mem"), None);
        assert_eq!(uptime_seconds("12345.67 2345.00"), Some(12345));
        let info = system_info();
        assert_eq!(info["platform"], std::env::consts::OS);
        assert!(info["cpuCount"].as_u64().is_some_and(|count| count >= 1));
    }
}
