//! What run.json records about the code and the machine.

use std::collections::BTreeMap;
use std::process::Command;

use gan_rundir::{GitInfo, Machine};

/// The runner's own version, rustc's, and those of the crates that decide the numbers.
pub fn versions() -> BTreeMap<String, String> {
    let mut v = BTreeMap::new();
    v.insert("runner".to_string(), env!("CARGO_PKG_VERSION").to_string());
    v.insert(
        "rustc".to_string(),
        env!("RUNNER_RUSTC_VERSION").to_string(),
    );
    for pair in env!("RUNNER_CRATE_VERSIONS")
        .split(';')
        .filter(|p| !p.is_empty())
    {
        if let Some((name, version)) = pair.split_once('=') {
            // Several versions of one crate can be linked (dfdx brings gemm 0.15): keep all.
            v.entry(name.to_string())
                .and_modify(|e: &mut String| {
                    e.push_str(", ");
                    e.push_str(version)
                })
                .or_insert_with(|| version.to_string());
        }
    }
    v
}

/// The commit of the repository the runner is started in, and whether tracked files changed.
pub fn git() -> Option<GitInfo> {
    let run = |args: &[&str]| -> Option<String> {
        let out = Command::new("git").args(args).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let commit = run(&["rev-parse", "HEAD"])?;
    let dirty = !run(&["status", "--porcelain", "--untracked-files=no"])?.is_empty();
    Some(GitInfo { commit, dirty })
}

pub fn machine() -> Machine {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_default();
    Machine {
        hostname: gan_rundir::hostname(),
        os: std::env::consts::OS.to_string(),
        arch: std::env::consts::ARCH.to_string(),
        cpu,
        logical_cpus: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
    }
}
