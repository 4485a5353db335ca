//! The runner end to end on the committed real-MNIST fixture: reproducibility, the files a
//! run leaves, pinned losses, and every kind of bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::{fixture_spec_file, ok, runner, runner_with_env, RUNNER};

/// A spec on the fixture (1,100 training images): 2 epochs of 11 steps, a picture each epoch.
fn fixture_spec(dir: &Path, extra: &str) -> PathBuf {
    let body = format!("train:\n  epochs: 2\nsamples:\n  count: 4\n  every: 1\n{extra}");
    fixture_spec_file(dir, "tiny", "name: tiny\nseed: 5\n", &body)
}

/// The error of a run that must fail cleanly: non-zero exit, one message, no panic.
fn fails(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "runner should fail");
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
    assert!(err.starts_with("error: "), "{err}");
    err
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn a_run_leaves_a_complete_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = fixture_spec(tmp.path(), "");
    let out = runner(&[spec.to_str().unwrap(), "--run-dir", "r"], tmp.path());
    ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Epoch: 0000 D loss: ") && stdout.contains("Epoch: 0001 D loss: "),
        "{stdout}"
    );
    let run = tmp.path().join("r");
    for f in [
        "spec.yaml",
        "run.json",
        "losses.csv",
        "model.safetensors",
        "samples/000.png",
        "samples/001.png",
    ] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    let csv = String::from_utf8(read(&run.join("losses.csv"))).unwrap();
    assert!(csv.starts_with("epoch,step,d_loss,g_loss,d_real,d_fake\n"));
    assert_eq!(csv.lines().count(), 1 + 22);
    let info: serde_json::Value = serde_json::from_slice(&read(&run.join("run.json"))).unwrap();
    assert_eq!(info["status"], "completed");
    assert_eq!(info["epochs_done"], 2);
    assert_eq!(info["steps_done"], 22);
    assert_eq!(info["epoch_seconds"].as_array().unwrap().len(), 2);
    assert_eq!(
        info["model_sha256"].as_str(),
        Some(gan_rundir::sha256_hex(&read(&run.join("model.safetensors"))).as_str()),
        "run.json records the final weights' hash"
    );
    assert!(
        info["versions"]["dfdx"].is_string()
            && info["machine"]["logical_cpus"].as_u64().unwrap() >= 1
    );
    // The resolved spec reruns the same run.
    let again = runner(&["r/spec.yaml", "--run-dir", "r2", "--quiet"], tmp.path());
    ok(&again);
    assert!(again.stdout.is_empty(), "--quiet prints nothing");
    assert_eq!(
        read(&run.join("losses.csv")),
        read(&tmp.path().join("r2/losses.csv"))
    );
}

#[test]
fn identical_runs_are_byte_identical_at_any_thread_count() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = fixture_spec(tmp.path(), "");
    let spec = spec.to_str().unwrap();
    ok(&runner(
        &[spec, "--run-dir", "a", "--quiet", "--threads", "1"],
        tmp.path(),
    ));
    // RAYON_NUM_THREADS is honoured when --threads is not given.
    ok(&runner_with_env(
        &[spec, "--run-dir", "b", "--quiet"],
        tmp.path(),
        &[("RAYON_NUM_THREADS", "3")],
    ));
    let info: serde_json::Value =
        serde_json::from_slice(&read(&tmp.path().join("b/run.json"))).unwrap();
    assert_eq!(info["threads"], 3, "RAYON_NUM_THREADS=3 gives 3 threads");
    ok(&runner(
        &[spec, "--run-dir", "c", "--quiet", "--threads", "2"],
        tmp.path(),
    ));
    for f in [
        "losses.csv",
        "spec.yaml",
        "samples/000.png",
        "samples/001.png",
        "model.safetensors",
    ] {
        let a = read(&tmp.path().join("a").join(f));
        assert_eq!(
            a,
            read(&tmp.path().join("b").join(f)),
            "{f} differs between 1 and 3 threads"
        );
        assert_eq!(
            a,
            read(&tmp.path().join("c").join(f)),
            "{f} differs between 1 and 2 threads"
        );
    }
    ok(&runner(
        &[spec, "--run-dir", "d", "--quiet", "--set", "seed=6"],
        tmp.path(),
    ));
    assert_ne!(
        read(&tmp.path().join("a/losses.csv")),
        read(&tmp.path().join("d/losses.csv"))
    );
}

#[test]
fn seeded_losses_are_pinned() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = fixture_spec(tmp.path(), "");
    ok(&runner(
        &[spec.to_str().unwrap(), "--run-dir", "r", "--quiet"],
        tmp.path(),
    ));
    let csv = String::from_utf8(read(&tmp.path().join("r/losses.csv"))).unwrap();
    // Rounded to 4 decimals: a change to the model, data order, init or optimiser shows as a
    // diff, while CPUs whose SIMD kernels sum in another order (AVX-512 vs AVX2) still agree.
    let rounded: Vec<String> = csv
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let r = |s: &str| format!("{:.4}", s.parse::<f32>().unwrap());
            format!(
                "{} {:>2} {} {} {} {}",
                f[0],
                f[1],
                r(f[2]),
                r(f[3]),
                r(f[4]),
                r(f[5])
            )
        })
        .collect();
    insta::assert_snapshot!(rounded.join("\n"));
}

#[test]
fn the_eval_section_writes_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    // A private copy of the fixture: the classifier is cached beside it, not in the repository.
    let data = tmp.path().join("mnist");
    std::fs::create_dir(&data).unwrap();
    for e in std::fs::read_dir(gan_data::fixture_dir())
        .unwrap()
        .flatten()
    {
        std::fs::copy(e.path(), data.join(e.file_name())).unwrap();
    }
    let spec = fixture_spec(tmp.path(), "eval:\n  enabled: true\n  samples: 200\n");
    let out = runner(
        &[
            spec.to_str().unwrap(),
            "--run-dir",
            "r",
            "--set",
            &format!("data.dir={}", data.display()),
        ],
        tmp.path(),
    );
    ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Metrics (200 samples"), "{stdout}");
    let m: serde_json::Value =
        serde_json::from_slice(&read(&tmp.path().join("r/metrics.json"))).unwrap();
    assert_eq!(m["samples"], 200);
    assert!(m["generated"]["parzen"]["mean_ll"].is_f64() && m["generated"]["fid"].is_f64());
    assert!(tmp
        .path()
        .join("classifier/mnist-mlp.safetensors")
        .is_file());
}

#[test]
fn bad_inputs_fail_with_one_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let spec = fixture_spec(t, "");
    let spec = spec.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["no-such-spec.yaml"],
            "cannot read spec no-such-spec.yaml",
        ),
        (
            vec![spec, "--set", "train.epoch=1"],
            "did you mean `train.epochs`?",
        ),
        (
            vec![spec, "--set", "train.batch_size=abc"],
            "--set train.batch_size=abc",
        ),
        (
            vec![spec, "--set", "train.batch_size=0"],
            "train.batch_size must be at least 1",
        ),
        (
            vec![spec, "--set", "train.lr=-1"],
            "train.lr must be a positive finite number",
        ),
        (
            vec![spec, "--set", "train.epochs=0"],
            "train.epochs must be at least 1",
        ),
        (
            vec![spec, "--set", "train.batch_size=5000"],
            "train.batch_size 5000 is larger than the 1100 training images",
        ),
        (
            vec![spec, "--set", "data.limit=50"],
            "larger than the 50 training images (data.limit is 50)",
        ),
        (
            vec![spec, "--set", "data.dir=/no/mnist/here"],
            "gan fetch-mnist",
        ),
    ];
    for (args, want) in cases {
        let err = fails(&runner(&args, t));
        assert!(err.contains(want), "{args:?}: {err}");
    }
    std::fs::write(t.join("syntax.yaml"), "train:\n  epochs: [1\n").unwrap();
    let err = fails(&runner(&["syntax.yaml"], t));
    assert!(
        err.contains("syntax.yaml: YAML syntax error at line"),
        "{err}"
    );
    std::fs::write(t.join("typo.yaml"), "seed: 1\ntrain:\n  batchsize: 10\n").unwrap();
    let err = fails(&runner(&["typo.yaml"], t));
    assert!(
        err.contains(
            "typo.yaml line 3: unknown key `train.batchsize`, did you mean `train.batch_size`?"
        ),
        "{err}"
    );
    // No run directory is left by a spec that never started.
    assert!(!t.join("runs").exists());
}

#[test]
fn missing_default_data_is_fetched_and_a_failed_fetch_is_explained() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("s.yaml"), "train:\n  epochs: 1\n").unwrap();
    let out = Command::new(RUNNER)
        .args(["s.yaml", "--quiet"])
        .current_dir(tmp.path())
        .env("MNIST_MIRROR", tmp.path().join("no-mirror-here"))
        .output()
        .unwrap();
    let err = fails(&out);
    assert!(
        err.contains("fetching MNIST failed") && err.contains("gan fetch-mnist"),
        "{err}"
    );
    assert!(
        err.contains("no-mirror-here"),
        "names the source it tried: {err}"
    );
    assert!(!tmp.path().join("data").exists() && !tmp.path().join("runs").exists());
}

#[test]
fn an_existing_run_directory_is_never_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = fixture_spec(tmp.path(), "");
    let spec = spec.to_str().unwrap();
    std::fs::create_dir(tmp.path().join("taken")).unwrap();
    std::fs::write(tmp.path().join("taken/keep.txt"), "precious").unwrap();
    let err = fails(&runner(
        &[spec, "--run-dir", "taken", "--quiet"],
        tmp.path(),
    ));
    assert!(err.contains("taken already exists"), "{err}");
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("taken/keep.txt")).unwrap(),
        "precious"
    );
    // Default names never collide either.
    ok(&runner(&[spec, "--quiet"], tmp.path()));
    ok(&runner(&[spec, "--quiet"], tmp.path()));
    let runs: Vec<_> = std::fs::read_dir(tmp.path().join("runs"))
        .unwrap()
        .collect();
    assert_eq!(runs.len(), 2);
}

#[test]
fn a_diverging_run_is_marked_failed_with_the_step() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = fixture_spec(tmp.path(), "");
    let err = fails(&runner(
        &[
            spec.to_str().unwrap(),
            "--run-dir",
            "r",
            "--quiet",
            "--set",
            "train.lr=1e30",
        ],
        tmp.path(),
    ));
    assert!(err.contains("diverged at step"), "{err}");
    let info: serde_json::Value =
        serde_json::from_slice(&read(&tmp.path().join("r/run.json"))).unwrap();
    assert_eq!(info["status"], "failed");
    assert!(info["error"].as_str().unwrap().contains("diverged at step"));
    let csv = String::from_utf8(read(&tmp.path().join("r/losses.csv"))).unwrap();
    assert!(
        !csv.contains("NaN") && !csv.contains("inf"),
        "no non-finite rows: {csv}"
    );
}

#[test]
fn help_documents_every_flag_and_key() {
    let out = Command::new(RUNNER).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in ["--set", "--run-dir", "--threads", "--quiet", "docs/spec.md"] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
    for key in gan_spec::KEYS {
        assert!(help.contains(key.key), "{} missing from --help", key.key);
    }
    // docs/spec.md lists exactly these keys with their defaults: tests/docs.rs.
}

fn samples_written(run: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(run.join("samples"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn pictures_follow_the_tutorials_schedule() {
    // Epoch 0 and every 5th epoch (0-based 4, 9), as ts_GAN.py's `epoch == 0 or (epoch + 1) % 10`.
    let tmp = tempfile::tempdir().unwrap();
    let body = "  limit: 200\ntrain:\n  epochs: 12\nsamples:\n  count: 2\n  every: 5\n";
    let spec = fixture_spec_file(tmp.path(), "sched", "name: sched\n", body);
    let s = spec.to_str().unwrap();
    ok(&runner(&[s, "--run-dir", "r", "--quiet"], tmp.path()));
    assert_eq!(
        samples_written(&tmp.path().join("r")),
        ["000.png", "004.png", "009.png"]
    );
    ok(&runner(
        &[
            s,
            "--run-dir",
            "none",
            "--quiet",
            "--set",
            "samples.count=0",
        ],
        tmp.path(),
    ));
    assert!(samples_written(&tmp.path().join("none")).is_empty());
}

/// Resident memory of a process in MB, from /proc.
fn rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

#[cfg(target_os = "linux")]
#[test]
fn a_huge_epoch_count_keeps_memory_flat_and_stops_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let body = "  limit: 200\nsamples:\n  count: 2\n  every: 10\n";
    let spec = fixture_spec_file(tmp.path(), "huge", "name: huge\n", body);
    let mut child = Command::new(RUNNER)
        .args([spec.to_str().unwrap(), "--run-dir", "r", "--quiet"])
        .args(["--set", "train.epochs=1000000000000", "--threads", "1"])
        .current_dir(tmp.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let losses = tmp.path().join("r/losses.csv");
    let rows = || {
        std::fs::read_to_string(&losses)
            .map(|t| t.lines().count().saturating_sub(1))
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut peak = 0.0f64;
    while rows() < 40 && std::time::Instant::now() < deadline {
        peak = peak.max(rss_mb(child.id()).unwrap_or(0.0));
        if peak >= 300.0 {
            // Stop a regression before it takes the test machine's memory with it.
            let _ = child.kill();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(
        rows() >= 40,
        "training started and went on (peak {peak:.0} MB)"
    );
    peak = peak.max(rss_mb(child.id()).unwrap_or(0.0));
    assert!(peak < 300.0, "resident memory reached {peak:.0} MB");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "SIGTERM stops the run like Ctrl-C"
    );
    let info: serde_json::Value =
        serde_json::from_slice(&read(&tmp.path().join("r/run.json"))).unwrap();
    assert_eq!(info["status"], "interrupted");
    assert_eq!(info["epochs_planned"], 1_000_000_000_000u64);
}

#[test]
fn a_spec_that_cannot_fit_in_memory_is_refused_before_the_run_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = fixture_spec(tmp.path(), "");
    let s = spec.to_str().unwrap();
    for (set, key) in [
        ("model.hidden=100000000", "lower model.hidden"),
        ("samples.count=100000000", "lower samples.count"),
    ] {
        let err = fails(&runner(&[s, "--run-dir", "r", "--set", set], tmp.path()));
        assert!(
            err.contains("this spec needs about") && err.contains(key),
            "{set}: {err}"
        );
        assert!(
            !tmp.path().join("r").exists(),
            "{set}: no run directory is made"
        );
    }
    // A resumed run whose spec was made too big is refused the same way, and left as it was.
    ok(&runner(&[s, "--run-dir", "r", "--quiet"], tmp.path()));
    let run = tmp.path().join("r");
    let mut info: serde_json::Value = serde_json::from_slice(&read(&run.join("run.json"))).unwrap();
    info["status"] = "interrupted".into();
    std::fs::write(run.join("run.json"), serde_json::to_vec(&info).unwrap()).unwrap();
    let own = std::fs::read_to_string(run.join("spec.yaml")).unwrap();
    std::fs::write(
        run.join("spec.yaml"),
        own.replace("count: 4", "count: 100000000"),
    )
    .unwrap();
    let err = fails(&runner(&["--resume", "r", "--force"], tmp.path()));
    assert!(err.contains("lower samples.count"), "{err}");
    let after: serde_json::Value = serde_json::from_slice(&read(&run.join("run.json"))).unwrap();
    assert_eq!(after["status"], "interrupted");
}
