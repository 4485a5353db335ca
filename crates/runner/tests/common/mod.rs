//! Helpers shared by the runner's integration tests.

#![allow(dead_code)] // each test file uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const RUNNER: &str = env!("CARGO_BIN_EXE_runner");

/// Runs the runner in `cwd` and waits for it.
pub fn runner(args: &[&str], cwd: &Path) -> Output {
    runner_with_env(args, cwd, &[])
}

/// Runs the runner in `cwd` with extra environment variables and waits for it.
pub fn runner_with_env(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Output {
    Command::new(RUNNER)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(cwd)
        .output()
        .expect("runner starts")
}

/// Asserts success; returns stdout and stderr together.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "runner failed ({:?}): {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A spec file `name.yaml` in `dir` reading the committed fixture: `body` is appended after
/// the `data.dir` line.
pub fn fixture_spec_file(dir: &Path, name: &str, head: &str, body: &str) -> PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    let text = format!(
        "{head}data:\n  dir: {}\n{body}",
        gan_data::fixture_dir().display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// A copy of the committed MNIST fixture in `<dir>/mnist`, so that whatever a test caches
/// beside its data (the classifier) lands in the temporary folder, not in the source tree.
pub fn fixture_copy(dir: &Path) -> PathBuf {
    let data = dir.join("mnist");
    std::fs::create_dir_all(&data).unwrap();
    for e in std::fs::read_dir(gan_data::fixture_dir())
        .unwrap()
        .flatten()
    {
        std::fs::copy(e.path(), data.join(e.file_name())).unwrap();
    }
    data
}
