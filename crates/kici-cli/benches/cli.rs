//! Benchmark of the author CLI: wall time and peak RSS (median of 5 runs, after one warm-up) of
//! `kici compile` on the test repository and of `kici run local` of hello world, and the
//! latency of `kici compile --watch` from saving a workflow to the lock file changing (median of
//! 5 saves, after one warm-up; the 200 ms debounce included).
//!
//! Run with `cargo bench -p kici-cli --bench cli` (a release build). Peak RSS is the kernel's
//! `ru_maxrss` for the command as `wait4` reports it: the largest resident set of `kici` and the
//! Node processes it waited for.

#![allow(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 5;

/// The TypeScript original on this machine class (from the issue): seconds and MB.
const REFERENCE_COMPILE: (f64, f64) = (1.26, 222.0);
const REFERENCE_RUN_LOCAL: (f64, f64) = (1.23, 225.0);

struct Sample {
    wall: Duration,
    max_rss_kb: i64,
}

fn measure(dir: &Path, args: &[&str]) -> Sample {
    let started = Instant::now();
    // Reaped with `wait4` below, which also returns its resource usage.
    #[allow(clippy::zombie_processes)]
    let child = Command::new(env!("CARGO_BIN_EXE_kici"))
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("kici starts");
    let mut status = 0;
    // SAFETY: `usage` is a plain C struct the kernel fills in; the pid is our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    assert!(
        pid > 0 && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "kici {args:?} failed (status {status})"
    );
    Sample {
        wall,
        max_rss_kb: usage.ru_maxrss,
    }
}

fn median<T: Copy + Ord>(mut values: Vec<T>) -> T {
    values.sort();
    values[values.len() / 2]
}

fn bench(name: &str, dir: &Path, args: &[&str], reference: (f64, f64)) {
    measure(dir, args);
    let samples: Vec<Sample> = (0..RUNS).map(|_| measure(dir, args)).collect();
    let wall = median(samples.iter().map(|s| s.wall).collect());
    let rss_mb = median(samples.iter().map(|s| s.max_rss_kb).collect()) as f64 / 1024.0;
    println!(
        "{name:<28} wall {:>7.1} ms  peak RSS {:>6.1} MB   (TypeScript original: {:.0} ms, {:.0} MB; {:.1}x faster)",
        wall.as_secs_f64() * 1000.0,
        rss_mb,
        reference.0 * 1000.0,
        reference.1,
        reference.0 / wall.as_secs_f64()
    );
}

/// Median time from writing a workflow file to `kici compile --watch` replacing the lock file.
fn bench_watch(dir: &Path) {
    let workflow = dir.join(".kici/workflows/hello-world.ts");
    let lock = dir.join(".kici/kici.lock.json");
    let original = std::fs::read_to_string(&workflow).expect("workflow");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kici"))
        .args(["compile", "--watch"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("kici starts");
    let read_lock = || std::fs::read_to_string(&lock).ok();
    let until_changed = |before: Option<String>| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let now = read_lock();
            if now.is_some() && now != before {
                return;
            }
            assert!(Instant::now() < deadline, "the lock file did not change");
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    until_changed(None);
    let mut latencies = Vec::new();
    for save in 0..=RUNS {
        let before = read_lock();
        let started = Instant::now();
        std::fs::write(&workflow, format!("{original}// save {save}\n")).expect("save");
        until_changed(before);
        latencies.push(started.elapsed());
    }
    latencies.remove(0);
    // Best effort: the watcher may be gone already, and the directory is removed anyway.
    let _ = child.kill();
    let _ = child.wait();
    println!(
        "{:<28} save → lock {:>7.1} ms   (200 ms of it is the debounce)",
        "kici compile --watch",
        median(latencies).as_secs_f64() * 1000.0
    );
}

/// A committed copy of `fixture` in a temporary git repository.
fn repository(fixture: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("kici-bench-")
        .tempdir()
        .expect("temp dir");
    let source: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(fixture);
    let status = Command::new("cp")
        .arg("-r")
        .arg(format!("{}/.", source.display()))
        .arg(dir.path())
        .status()
        .expect("cp");
    assert!(status.success());
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["add", "-A"],
        &[
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@kici.local",
            "commit",
            "-q",
            "-m",
            "bench",
        ],
    ] {
        let status = Command::new("git")
            .args(args)
            .current_dir(dir.path())
            .status()
            .expect("git");
        assert!(status.success());
    }
    dir
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    println!(
        "kici benchmarks: median of {RUNS} runs ({} cores)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let tests = repository("tests/repo");
    bench(
        "kici compile (test repository)",
        tests.path(),
        &["compile"],
        REFERENCE_COMPILE,
    );
    let hello = repository("examples/hello");
    bench(
        "kici run local hello-world",
        hello.path(),
        &["run", "local", "push"],
        REFERENCE_RUN_LOCAL,
    );
    bench_watch(hello.path());
}
