//! Interrupted runs resume bit-identically: SIGKILL at several points, Ctrl-C, a damaged
//! newest checkpoint, a completed run, a changed spec. Sweeps: shards and jobs give the same
//! run directories as one sequential sweep.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use runner::{Options, Outcome, StepHook};

mod common;
use common::{fixture_spec_file, ok, runner, RUNNER};

/// On the fixture with batch 10: 110 steps an epoch, long enough to be killed in the middle.
fn spec(dir: &Path, epochs: usize) -> PathBuf {
    let body = format!(
        "model:\n  hidden: 384\ntrain:\n  epochs: {epochs}\n  batch_size: 10\nsamples:\n  count: 3\n  every: 2\ncheckpoint:\n  keep: 2\n"
    );
    fixture_spec_file(dir, "long", "name: long\nseed: 11\n", &body)
}

fn spawn(args: &[&str], cwd: &Path) -> Child {
    Command::new(RUNNER)
        .args(args)
        .current_dir(cwd)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn steps_logged(run: &Path) -> usize {
    std::fs::read_to_string(run.join("losses.csv"))
        .map(|t| t.lines().count().saturating_sub(1))
        .unwrap_or(0)
}

/// A run's `run.json`; `None` before it exists (or while it cannot be read).
fn try_run_json(run: &Path) -> Option<serde_json::Value> {
    serde_json::from_slice(&std::fs::read(run.join("run.json")).ok()?).ok()
}

fn run_json(run: &Path) -> serde_json::Value {
    try_run_json(run).expect("run.json is readable")
}

/// Polls until `done` (or a minute has passed, which the assertions that follow then catch).
fn wait_until(done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Steps `run.json` reports (updated after each epoch's checkpoint); `None` before it exists.
fn steps_recorded(run: &Path) -> Option<u64> {
    try_run_json(run)?["steps_done"].as_u64()
}

/// Every file of a finished run that must not depend on interruptions.
fn assert_same_run(a: &Path, b: &Path) {
    let mut files = vec![
        "losses.csv".to_string(),
        "spec.yaml".into(),
        "model.safetensors".into(),
        "losses.png".into(),
    ];
    for e in std::fs::read_dir(a.join("samples")).unwrap().flatten() {
        files.push(format!("samples/{}", e.file_name().to_string_lossy()));
    }
    assert!(files.len() > 4, "the run has sample pictures");
    for f in files {
        let (x, y) = (
            std::fs::read(a.join(&f)).unwrap(),
            std::fs::read(b.join(&f)),
        );
        assert_eq!(
            Some(&x),
            y.as_ref().ok(),
            "{f} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
    assert_eq!(
        tensorboard_content(a),
        tensorboard_content(b),
        "TensorBoard logs of {} and {}",
        a.display(),
        b.display()
    );
    let info = run_json(b);
    assert_eq!(info["status"], "completed");
}

/// A run's TensorBoard events without what varies between identical runs (wall times, and
/// the hparams session records, which carry start and end times).
fn tensorboard_content(run: &Path) -> Vec<(i64, Vec<u8>)> {
    use gan_tensorboard::proto::event::What;
    let path = run.join(gan_rundir::EVENTS_FILE);
    gan_tensorboard::read_events(&path)
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.what {
            Some(What::Summary(mut s)) => {
                s.value.retain(|v| !v.tag.starts_with("_hparams_/"));
                (!s.value.is_empty()).then(|| (e.step, prost::Message::encode_to_vec(&s)))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn killed_runs_resume_to_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let spec = spec(t, 6);
    let s = spec.to_str().unwrap();
    ok(&runner(&[s, "--run-dir", "whole", "--quiet"], t));
    // Kill at different depths: before the first checkpoint, and in later epochs.
    for (i, after_steps) in [0usize, 150, 400].into_iter().enumerate() {
        let name = format!("killed{i}");
        let mut child = spawn(&[s, "--run-dir", &name, "--quiet"], t);
        let run = t.join(&name);
        wait_until(|| steps_recorded(&run).is_some() && steps_logged(&run) >= after_steps);
        child.kill().unwrap(); // SIGKILL: no chance to clean up
        let status = child.wait().unwrap();
        let info = run_json(&run);
        if info["status"] == "completed" {
            panic!("kill {i} came too late ({status:?}): the test machine is much faster than expected");
        }
        assert_eq!(info["status"], "running", "a killed run still says running");
        let out = ok(&runner(&["--resume", &name, "--quiet"], t));
        assert!(!out.contains("error"), "{out}");
        assert_same_run(&t.join("whole"), &run);
    }
    // Resuming a completed run does nothing and says so.
    let out = ok(&runner(&["--resume", "whole"], t));
    assert!(out.contains("already completed"), "{out}");
}

/// Runs `spec` into `t/dir` through the library, as if Ctrl-C came right after `step`.
fn run_interrupted_after(spec: &Path, t: &Path, dir: &str, step: u64) -> Outcome {
    let flag = Arc::new(AtomicBool::new(false));
    let raise = flag.clone();
    let opts = Options {
        spec: Some(spec.to_path_buf()),
        run_dir: Some(t.join(dir)),
        quiet: true,
        threads: Some(2),
        on_step: Some(StepHook(Arc::new(move |s| {
            if s == step {
                raise.store(true, Ordering::SeqCst);
            }
        }))),
        ..Options::default()
    };
    runner::run(&opts, &flag).unwrap()
}

/// Resumes `t/dir` through the library.
fn resume_in_process(t: &Path, dir: &str) -> Outcome {
    let opts = Options {
        resume: Some(t.join(dir)),
        quiet: true,
        ..Options::default()
    };
    runner::run(&opts, &AtomicBool::new(false)).unwrap()
}

#[test]
fn ctrl_c_checkpoints_at_the_step_and_resumes_exactly() {
    // Driven through the library: the interrupt flag (what Ctrl-C and SIGTERM raise) is set
    // after exactly step 150, in the middle of epoch 1, with no timing involved.
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let spec = spec(t, 4);
    ok(&runner(
        &[spec.to_str().unwrap(), "--run-dir", "whole", "--quiet"],
        t,
    ));
    let outcome = run_interrupted_after(&spec, t, "int", 150);
    assert_eq!(outcome, Outcome::Interrupted(t.join("int")));
    let info = run_json(&t.join("int"));
    assert_eq!(info["status"], "interrupted");
    assert_eq!(
        info["steps_done"], 150,
        "the checkpoint is at the step Ctrl-C came after"
    );
    assert_eq!(
        steps_logged(&t.join("int")),
        150,
        "every step before Ctrl-C is logged"
    );
    let outcome = resume_in_process(t, "int");
    assert_eq!(outcome, Outcome::Completed(t.join("int")));
    assert_same_run(&t.join("whole"), &t.join("int"));
}

/// A completed run made to look interrupted: `run.json` says so, the model is gone.
fn pretend_interrupted(run: &Path) {
    let mut info = run_json(run);
    info["status"] = "interrupted".into();
    std::fs::write(
        run.join("run.json"),
        serde_json::to_vec_pretty(&info).unwrap(),
    )
    .unwrap();
    let model = run.join("model.safetensors");
    if model.exists() {
        std::fs::remove_file(model).unwrap();
    }
}

/// A run's checkpoint files, oldest first (their names start with the zero-padded step).
fn checkpoint_files(run: &Path) -> Vec<PathBuf> {
    let mut cps: Vec<PathBuf> = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    cps.sort();
    cps
}

#[test]
fn a_damaged_newest_checkpoint_falls_back_to_the_previous_one() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let spec = spec(t, 3);
    let s = spec.to_str().unwrap();
    ok(&runner(&[s, "--run-dir", "whole", "--quiet"], t));
    ok(&runner(&[s, "--run-dir", "dmg", "--quiet"], t));
    pretend_interrupted(&t.join("dmg"));
    let cps = checkpoint_files(&t.join("dmg"));
    assert_eq!(cps.len(), 2, "checkpoint.keep = 2");
    let newest = cps.last().unwrap();
    let bytes = std::fs::read(newest).unwrap();
    std::fs::write(newest, &bytes[..bytes.len() / 2]).unwrap(); // truncated
    let out = ok(&runner(&["--resume", "dmg"], t));
    assert!(
        out.contains("is damaged") && out.contains("trying the previous one"),
        "{out}"
    );
    assert!(out.contains("resuming dmg at step 220"), "{out}");
    assert_same_run(&t.join("whole"), &t.join("dmg"));

    // A flipped byte (same length) is caught by the hash in the name too.
    pretend_interrupted(&t.join("dmg"));
    let cps = checkpoint_files(&t.join("dmg"));
    let mut bytes = std::fs::read(cps.last().unwrap()).unwrap();
    let at = bytes.len() - 5;
    bytes[at] ^= 0x40;
    std::fs::write(cps.last().unwrap(), &bytes).unwrap();
    let out = ok(&runner(&["--resume", "dmg"], t));
    assert!(out.contains("checksum mismatch"), "{out}");
    assert_same_run(&t.join("whole"), &t.join("dmg"));
}

#[test]
fn a_changed_spec_is_refused_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let spec = spec(t, 2);
    let s = spec.to_str().unwrap();
    ok(&runner(&[s, "--run-dir", "whole", "--quiet"], t));
    ok(&runner(&[s, "--run-dir", "r", "--quiet"], t));
    pretend_interrupted(&t.join("r"));
    // Back to before its last epoch, so that the forced resume really trains.
    let cps = checkpoint_files(&t.join("r"));
    std::fs::remove_file(cps.last().unwrap()).unwrap();
    let text = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("seed: 11", "seed: 12");
    std::fs::write(&spec, text).unwrap();
    let out = runner(&["--resume", "r"], t);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("changed since the run started")
            && err.contains("--force"),
        "{err}"
    );
    let out = ok(&runner(&["--resume", "r", "--force"], t));
    assert!(out.contains("resuming r at step 110"), "{out}");
    // The run's own spec.yaml (seed 11) was used, not the edited file (seed 12): the
    // resumed epoch gives exactly the uninterrupted seed-11 run.
    assert_same_run(&t.join("whole"), &t.join("r"));
    // Editing the run's own spec.yaml is refused too.
    pretend_interrupted(&t.join("r"));
    let own = std::fs::read_to_string(t.join("r/spec.yaml"))
        .unwrap()
        .replace("epochs: 2", "epochs: 3");
    std::fs::write(t.join("r/spec.yaml"), own).unwrap();
    let err = String::from_utf8_lossy(&runner(&["--resume", "r"], t).stderr).to_string();
    assert!(err.contains("was edited after the run started"), "{err}");
}

fn sweep_spec(dir: &Path) -> PathBuf {
    let body = "train:\n  epochs: 2\nsamples:\n  every: 1\n  count: 2\nsweep:\n  seed: [1, 2, 3]\n  train.lr: [0.0002, 0.0005]\n";
    fixture_spec_file(dir, "grid", "name: grid\n", body)
}

fn point_dirs(parent: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(parent)
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("run.json").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn shards_and_jobs_give_the_sequential_sweep_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let spec = sweep_spec(t);
    let s = spec.to_str().unwrap();
    ok(&runner(&[s, "--run-dir", "seq", "--quiet"], t));
    let names = point_dirs(&t.join("seq"));
    assert_eq!(names.len(), 6);
    assert!(
        names.contains(&"seed=2+train.lr=0.0005".to_string()),
        "{names:?}"
    );

    // Three shards at the same time into one folder.
    let shards: Vec<Child> = (0..3)
        .map(|i| {
            spawn(
                &[
                    s,
                    "--run-dir",
                    "sharded",
                    "--shard",
                    &format!("{i}/3"),
                    "--threads",
                    "1",
                ],
                t,
            )
        })
        .collect();
    for mut c in shards {
        assert!(c.wait().unwrap().success());
    }
    // Two jobs side by side.
    ok(&runner(
        &[s, "--run-dir", "jobs", "--jobs", "2", "--quiet"],
        t,
    ));
    for other in ["sharded", "jobs"] {
        assert_eq!(
            point_dirs(&t.join(other)),
            names,
            "{other}: the same points, no more, no fewer"
        );
        for n in &names {
            for f in [
                "losses.csv",
                "spec.yaml",
                "samples/001.png",
                "model.safetensors",
            ] {
                assert_eq!(
                    std::fs::read(t.join("seq").join(n).join(f)).unwrap(),
                    std::fs::read(t.join(other).join(n).join(f)).unwrap(),
                    "{other}/{n}/{f}"
                );
            }
        }
        assert_eq!(
            std::fs::read(t.join("seq/sweep.json")).unwrap(),
            std::fs::read(t.join(other).join("sweep.json")).unwrap()
        );
    }
    // A point equals the same run made without a sweep.
    let plain = std::fs::read_to_string(&spec).unwrap();
    let plain = &plain[..plain.find("sweep:").unwrap()];
    std::fs::write(t.join("plain.yaml"), plain).unwrap();
    ok(&runner(
        &[
            "plain.yaml",
            "--run-dir",
            "plain",
            "--quiet",
            "--set",
            "seed=2",
            "--set",
            "train.lr=0.0005",
        ],
        t,
    ));
    assert_eq!(
        std::fs::read(t.join("plain/losses.csv")).unwrap(),
        std::fs::read(t.join("seq/seed=2+train.lr=0.0005/losses.csv")).unwrap()
    );
}

#[test]
fn a_restarted_shard_skips_finished_points_and_resumes_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let spec = sweep_spec(t);
    let s = spec.to_str().unwrap();
    ok(&runner(
        &[s, "--run-dir", "seq", "--quiet", "--shard", "1/2"],
        t,
    ));
    assert_eq!(
        point_dirs(&t.join("seq")).len(),
        3,
        "shard 1/2 ran 3 of 6 points"
    );
    pretend_interrupted(&t.join("seq/seed=1+train.lr=0.0005"));
    let out = ok(&runner(&[s, "--run-dir", "seq", "--shard", "1/2"], t));
    assert!(out.contains("already completed, skipped"), "{out}");
    assert!(out.contains("resuming"), "{out}");
    ok(&runner(
        &[s, "--run-dir", "seq", "--shard", "0/2", "--quiet"],
        t,
    ));
    assert_eq!(point_dirs(&t.join("seq")).len(), 6);
    // A different grid in the same folder is refused.
    let other = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("[1, 2, 3]", "[1, 2]");
    std::fs::write(&spec, other).unwrap();
    let err = String::from_utf8_lossy(&runner(&[s, "--run-dir", "seq"], t).stderr).to_string();
    assert!(err.contains("already holds a different sweep"), "{err}");
}

#[test]
fn a_sweep_rerun_with_a_changed_spec_is_refused_naming_the_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let body = "train:\n  epochs: 1\n  batch_size: 50\nsamples:\n  count: 0\nsweep:\n  seed: [1, 2, 3, 4]\n";
    let spec = fixture_spec_file(t, "four", "name: four\n", body);
    let s = spec.to_str().unwrap();
    // Half the grid is finished (as if the sweep had been stopped after two points).
    ok(&runner(
        &[s, "--run-dir", "sw", "--shard", "0/2", "--quiet"],
        t,
    ));
    assert_eq!(point_dirs(&t.join("sw")).len(), 2);
    let text = std::fs::read_to_string(&spec).unwrap();
    std::fs::write(
        &spec,
        text.replace("  epochs: 1\n", "  epochs: 1\n  lr: 0.001\n"),
    )
    .unwrap();
    let out = runner(&[s, "--run-dir", "sw"], t);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success(),
        "a changed spec must not mix into the sweep"
    );
    assert!(
        err.contains("train.lr: 0.0002 -> 0.001 (4 points)") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(point_dirs(&t.join("sw")).len(), 2, "nothing was started");

    // A finished sweep whose epochs changed is not "already completed".
    std::fs::write(&spec, &text).unwrap();
    ok(&runner(&[s, "--run-dir", "sw", "--quiet"], t));
    std::fs::write(&spec, text.replace("epochs: 1", "epochs: 2")).unwrap();
    let err = String::from_utf8_lossy(&runner(&[s, "--run-dir", "sw"], t).stderr).to_string();
    assert!(err.contains("train.epochs: 1 -> 2 (4 points)"), "{err}");

    // --force goes on, says so, and keeps the finished points as they are.
    let before = std::fs::read(t.join("sw/seed=1/losses.csv")).unwrap();
    let out = ok(&runner(&[s, "--run-dir", "sw", "--force"], t));
    assert!(
        out.contains("warning: --force") && out.contains("already completed"),
        "{out}"
    );
    assert_eq!(
        std::fs::read(t.join("sw/seed=1/losses.csv")).unwrap(),
        before
    );
    // --force means nothing for a plain new run: refused rather than ignored.
    let plain = fixture_spec_file(t, "plain", "name: plain\n", "train:\n  epochs: 1\n");
    let err = String::from_utf8_lossy(
        &runner(&[plain.to_str().unwrap(), "--force", "--run-dir", "p"], t).stderr,
    )
    .to_string();
    assert!(err.contains("--force applies to --resume"), "{err}");
}

#[test]
fn a_forced_resume_refuses_a_spec_its_checkpoint_cannot_continue() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let spec = spec(t, 2);
    let s = spec.to_str().unwrap();
    ok(&runner(&[s, "--run-dir", "r", "--quiet"], t));
    let own = std::fs::read_to_string(t.join("r/spec.yaml")).unwrap();
    let edit = |from: &str, to: &str| {
        pretend_interrupted(&t.join("r"));
        std::fs::write(t.join("r/spec.yaml"), own.replace(from, to)).unwrap();
        let out = runner(&["--resume", "r", "--force"], t);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!out.status.success(), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        err
    };
    let err = edit("hidden: 384", "hidden: 128");
    assert!(
        err.contains("cannot continue under the run's spec.yaml")
            && err.contains("G hidden [384]")
            && err.contains("the spec says")
            && err.contains("G hidden [128]"),
        "{err}"
    );
    let err = edit("epochs: 2", "epochs: 1");
    assert!(
        err.contains("past the spec's train.epochs = 1") && err.contains("at least 2"),
        "{err}"
    );
    assert_eq!(
        run_json(&t.join("r"))["status"],
        "interrupted",
        "left as it was"
    );
}

#[test]
fn a_run_is_written_by_one_process_at_a_time() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let spec = spec(t, 4);
    let s = spec.to_str().unwrap();
    let mut first = spawn(&[s, "--run-dir", "r", "--quiet"], t);
    let run = t.join("r");
    let lock = run.join(".lock");
    let held_by = |pid: u32| {
        std::fs::read_to_string(&lock).is_ok_and(|p| p == pid.to_string())
            && try_run_json(&run).is_some()
    };
    wait_until(|| held_by(first.id()));
    // A second writer while the first trains: refused, naming the first.
    let out = runner(&["--resume", "r"], t);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains(&format!("in use by pid {}", first.id())),
        "{err}"
    );
    wait_until(|| steps_recorded(&run).unwrap_or(0) >= 110);
    first.kill().unwrap(); // SIGKILL: the OS releases the lock with the process
    first.wait().unwrap();
    // Two resumes started together: exactly one trains, the other names it.
    let piped = |args: &[&str]| {
        Command::new(RUNNER)
            .args(args)
            .current_dir(t)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (piped(&["--resume", "r"]), piped(&["--resume", "r"]));
    let (pa, pb) = (a.id(), b.id());
    let (oa, ob) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let (winner, loser) = match (oa.status.success(), ob.status.success()) {
        (true, false) => (pa, ob),
        (false, true) => (pb, oa),
        both => panic!("exactly one resume may write the run, got {both:?}"),
    };
    let err = String::from_utf8_lossy(&loser.stderr);
    assert!(err.contains(&format!("in use by pid {winner}")), "{err}");
    assert_eq!(run_json(&run)["status"], "completed");
}

/// Changes one digit of data row `row` (1-based) of a loss log, keeping it parseable.
fn garble_row(run: &Path, row: usize) {
    let path = run.join("losses.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let cells: Vec<&str> = lines[row].split(',').collect();
    let mut d_loss = cells[2].to_string();
    let last = d_loss.pop().unwrap();
    d_loss.push(if last == '1' { '2' } else { '1' });
    let new = [cells[0], cells[1], &d_loss, cells[3], cells[4], cells[5]].join(",");
    lines[row] = new;
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
}

#[test]
fn a_changed_row_of_losses_csv_is_computed_again_on_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let spec = spec(t, 3);
    let s = spec.to_str().unwrap();
    ok(&runner(&[s, "--run-dir", "whole", "--quiet"], t));
    ok(&runner(&[s, "--run-dir", "g", "--quiet"], t));
    let run = t.join("g");
    // Checkpoints at steps 220 and 330: a row after 220 sends the resume back to 220.
    pretend_interrupted(&run);
    garble_row(&run, 250);
    let out = ok(&runner(&["--resume", "g"], t));
    assert!(
        out.contains("losses.csv is not what the run had written by step 330")
            && out.contains("resuming g at step 220"),
        "{out}"
    );
    assert_same_run(&t.join("whole"), &run);
    // A row before every checkpoint: the run starts over and every row is computed again.
    pretend_interrupted(&run);
    garble_row(&run, 5);
    let out = ok(&runner(&["--resume", "g"], t));
    assert!(out.contains("starting the run over"), "{out}");
    assert_same_run(&t.join("whole"), &run);
}

#[test]
fn an_interrupt_after_the_last_step_skips_evaluation_but_keeps_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    // A copy of the fixture: a regression that evaluated anyway would cache its classifier
    // in the temporary folder.
    let data = common::fixture_copy(t);
    let spec = t.join("ev.yaml");
    let text = format!(
        "name: ev\ndata:\n  dir: {}\ntrain:\n  epochs: 1\n  batch_size: 50\nsamples:\n  count: 0\neval:\n  enabled: true\n  samples: 100\n",
        data.display()
    );
    std::fs::write(&spec, text).unwrap();
    let flag = Arc::new(AtomicBool::new(false));
    let raise = flag.clone();
    let opts = Options {
        spec: Some(spec),
        run_dir: Some(t.join("r")),
        quiet: true,
        on_step: Some(StepHook(Arc::new(move |step| {
            if step == 22 {
                raise.store(true, Ordering::SeqCst); // Ctrl-C during the last step
            }
        }))),
        ..Options::default()
    };
    let outcome = runner::run(&opts, &flag).unwrap();
    assert_eq!(outcome, Outcome::Completed(t.join("r")));
    let info = run_json(&t.join("r"));
    assert_eq!(info["status"], "completed");
    assert!(t.join("r/model.safetensors").is_file());
    assert!(!t.join("r/metrics.json").exists(), "evaluation was skipped");
}

/// A PNG's width and height: the first fields of its header chunk.
fn png_size(path: &Path) -> (u32, u32) {
    let png = std::fs::read(path).unwrap();
    let field = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    (field(16), field(20))
}

/// Runs `spec` whole into `t/whole` and, interrupted after `step` and resumed, into
/// `t/int`: the two runs are byte-identical.
fn resumes_like_the_whole_run(spec: &Path, t: &Path, step: u64) {
    ok(&runner(
        &[spec.to_str().unwrap(), "--run-dir", "whole", "--quiet"],
        t,
    ));
    assert_eq!(
        run_interrupted_after(spec, t, "int", step),
        Outcome::Interrupted(t.join("int"))
    );
    resume_in_process(t, "int");
    assert_same_run(&t.join("whole"), &t.join("int"));
}

#[test]
fn a_deeper_model_trains_resumes_exactly_and_samples() {
    // Two hidden layers each, LeakyReLU, a tanh generator, dropout in D, the least-squares
    // loss with two D updates a step and G's own learning rate: interrupted mid-epoch
    // through the library and resumed, the run is byte-identical to an uninterrupted one.
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let body = "model:\n  g_hidden: [64, 128]\n  d_hidden: [128, 64]\n  g_activation: leaky_relu\n  d_activation: leaky_relu\n  g_output: tanh\n  d_dropout: 0.3\ntrain:\n  epochs: 3\n  batch_size: 50\n  loss: least_squares\n  d_steps: 2\n  lr_g: 0.001\nsamples:\n  count: 4\n  every: 1\ncheckpoint:\n  keep: 2\n";
    let spec = fixture_spec_file(t, "deep", "name: deep\nseed: 4\n", body);
    resumes_like_the_whole_run(&spec, t, 30);
    // The weights carry their architecture: sampling needs no spec, and a tanh generator's
    // pictures are in [0, 1] like any other's.
    let gan = gan_model::checkpoint::load_gan(&t.join("whole/model.safetensors")).unwrap();
    assert_eq!(gan.generator.sizes, [128, 64, 128, 784]);
    assert_eq!(gan.discriminator.sizes, [784, 128, 64, 1]);
    assert_eq!(gan.generator.output, gan_model::Output::Tanh);
    let images = gan.generator.generate(&vec![0.5; 3 * 128]);
    assert!(images.iter().all(|p| (0.0..=1.0).contains(p)));
    let spec_text = std::fs::read_to_string(t.join("whole/spec.yaml")).unwrap();
    assert!(spec_text.contains("g_hidden:") && spec_text.contains("leaky_slope: 0.2"));
}

#[test]
fn a_conditional_dropout_run_resumes_exactly_and_draws_a_row_per_digit() {
    // The label goes into both networks; D drops units. Interrupted mid-epoch and resumed,
    // the run is byte-identical to an uninterrupted one (losses, pictures, weights, log).
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let body = "model:\n  conditional: true\n  d_dropout: 0.2\n  g_output: tanh\ntrain:\n  epochs: 2\n  batch_size: 50\n  g_ema: 0.99\nsamples:\n  count: 3\n  every: 1\ncheckpoint:\n  keep: 2\n";
    let spec = fixture_spec_file(t, "cond", "name: cond\nseed: 6\n", body);
    resumes_like_the_whole_run(&spec, t, 25);
    let gan = gan_model::checkpoint::load_gan(&t.join("whole/model.safetensors")).unwrap();
    assert_eq!(gan.classes(), 10);
    assert_eq!(gan.generator.sizes, [138, 256, 784]);
    assert_eq!(gan.discriminator.sizes, [794, 256, 1]);
    // The picture: ten rows (digits 0-9) of samples.count images, 28-pixel cells.
    let size = |name: &str| png_size(&t.join("whole/samples").join(name));
    let (w, h) = size("000.png");
    assert_eq!((w, h), size("001.png"));
    assert!(h > 3 * w, "ten rows of three: {w} x {h}");

    // Its checkpoint cannot continue under an unconditional spec: a clear refusal.
    let err = resume_without_the_digits(t);
    assert!(err.contains("10 classes (conditional)"), "{err}");
}

/// The stderr of resuming the interrupted run `t/int` (a conditional GAN's) under its spec
/// with `conditional: false`, which must fail without a panic.
fn resume_without_the_digits(t: &std::path::Path) -> String {
    pretend_interrupted(&t.join("int"));
    let own = std::fs::read_to_string(t.join("int/spec.yaml")).unwrap();
    assert!(own.contains("conditional: true"), "{own}");
    std::fs::write(
        t.join("int/spec.yaml"),
        own.replace("conditional: true", "conditional: false"),
    )
    .unwrap();
    let out = runner(&["--resume", "int", "--force", "--quiet"], t);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success() && !err.contains("panicked"), "{err}");
    err
}

#[test]
fn a_dcgan_run_resumes_exactly_and_its_checkpoint_refuses_an_mlp_spec() {
    // A small DCGAN with the moving average of G: interrupted mid-epoch and resumed, the run
    // is byte-identical to an uninterrupted one (losses, pictures, weights, log).
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let body = "model:\n  arch: dcgan\n  noise_dim: 16\n  g_channels: [8, 4]\n  d_channels: [4, 8]\n  d_activation: leaky_relu\n  g_output: tanh\n  init_std: 0.02\ntrain:\n  epochs: 2\n  batch_size: 50\n  beta1: 0.5\n  g_ema: 0.99\nsamples:\n  count: 3\n  every: 1\ncheckpoint:\n  keep: 2\n";
    let spec = fixture_spec_file(t, "dcgan", "name: dcgan\nseed: 3\n", body);
    resumes_like_the_whole_run(&spec, t, 25);
    // The weights carry their architecture: sampling needs no spec.
    let model = gan_model::checkpoint::load_model(&t.join("whole/model.safetensors")).unwrap();
    let gan_model::Model::Dcgan(gan) = &model else {
        panic!("a DCGAN's weights read back as {model:?}")
    };
    assert_eq!(
        (gan.generator.channels, gan.discriminator.channels),
        ([8, 4], [4, 8])
    );
    let images = model.generator().generate(&[0.5; 3 * 16]);
    assert!(images.len() == 3 * 784 && images.iter().all(|p| (0.0..=1.0).contains(p)));

    // Its checkpoint cannot continue as an MLP, nor with other widths: clear refusals.
    pretend_interrupted(&t.join("int"));
    let own = std::fs::read_to_string(t.join("int/spec.yaml")).unwrap();
    // As an MLP the channel keys go back to their defaults (an mlp spec refuses others).
    let as_mlp = own
        .replace("arch: dcgan", "arch: mlp")
        .replace("- 8\n  - 4", "- 128\n  - 64")
        .replace("- 4\n  - 8", "- 64\n  - 128");
    let narrower = own.replace("- 8\n  - 4", "- 8\n  - 2");
    for (changed, says) in [(as_mlp, "G hidden [256]"), (narrower, "G channels [8, 2]")] {
        assert_ne!(changed, own);
        std::fs::write(t.join("int/spec.yaml"), changed).unwrap();
        let out = runner(&["--resume", "int", "--force", "--quiet"], t);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success()
                && !err.contains("panicked")
                && err.contains("it holds a DCGAN: noise_dim 16, G channels [8, 4]")
                && err.contains(says),
            "{err}"
        );
    }
}

#[test]
fn a_conditional_dcgan_run_resumes_exactly_and_draws_a_row_per_digit() {
    // The digit goes into G's input and D's projection (here beside a dense layer in D), and
    // the average of G gets standing statistics for every digit: interrupted mid-epoch and
    // resumed, the run is byte-identical to an uninterrupted one.
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let body = "model:\n  arch: dcgan\n  conditional: true\n  noise_dim: 16\n  g_channels: [8, 4]\n  d_channels: [4, 8]\n  d_dense: 6\n  d_activation: leaky_relu\n  g_output: tanh\n  init_std: 0.02\ntrain:\n  epochs: 2\n  batch_size: 50\n  beta1: 0.5\n  g_ema: 0.99\nsamples:\n  count: 3\n  every: 1\ncheckpoint:\n  keep: 2\n";
    let spec = fixture_spec_file(t, "cdcgan", "name: cdcgan\nseed: 4\n", body);
    resumes_like_the_whole_run(&spec, t, 25);
    let model = gan_model::checkpoint::load_model(&t.join("whole/model.safetensors")).unwrap();
    let gan_model::Model::Dcgan(gan) = &model else {
        panic!("a DCGAN's weights read back as {model:?}")
    };
    assert_eq!((gan.generator.classes, gan.discriminator.classes), (10, 10));
    assert_eq!(model.generator().input_size(), 26);
    // The picture: ten rows (digits 0-9) of samples.count images.
    let (w, h) = png_size(&t.join("whole/samples/001.png"));
    assert!(h > 3 * w, "ten rows of three: {w} x {h}");

    // Its checkpoint cannot continue without the digits: a clear refusal.
    let err = resume_without_the_digits(t);
    assert!(
        err.contains("it holds a DCGAN: 10 classes (conditional)"),
        "{err}"
    );
}

#[test]
fn a_self_conditioned_dcgan_run_resumes_exactly_and_asks_for_its_clusters() {
    // k-means of the training images gives the labels; G is asked for each cluster as often
    // as the data has it (also for the average's standing statistics). Interrupted
    // mid-epoch and resumed (k-means runs again), the run is byte-identical to an
    // uninterrupted one.
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let body = "model:\n  arch: dcgan\n  clusters: 7\n  noise_dim: 16\n  g_channels: [8, 4]\n  d_channels: [4, 8]\n  d_activation: leaky_relu\n  g_output: tanh\n  init_std: 0.02\ntrain:\n  epochs: 2\n  batch_size: 50\n  beta1: 0.5\n  g_ema: 0.99\nsamples:\n  count: 3\n  every: 1\ncheckpoint:\n  keep: 2\n";
    let spec = fixture_spec_file(t, "selfcond", "name: selfcond\nseed: 5\n", body);
    resumes_like_the_whole_run(&spec, t, 25);
    let model = gan_model::checkpoint::load_model(&t.join("whole/model.safetensors")).unwrap();
    let g = model.generator();
    assert_eq!((g.classes(), g.input_size()), (7, 23));
    // The counts are the clusters' sizes: every training image of the fixture in one.
    let train = gan_data::load_training(&gan_data::fixture_dir()).unwrap().0;
    let counts = g.label_counts();
    assert_eq!(counts.len(), 7);
    assert_eq!(counts.iter().sum::<u32>() as usize, train.len());
    assert!(counts.iter().all(|&c| c > 0), "{counts:?}");
    // The picture is one row of samples.count images, not a row per cluster.
    let (w, h) = png_size(&t.join("whole/samples/001.png"));
    assert!(w > h, "one row: {w} x {h}");

    // Other training images give other clusters: the checkpoint refuses to continue with
    // them, and so does a spec with another number of clusters.
    pretend_interrupted(&t.join("int"));
    let own = std::fs::read_to_string(t.join("int/spec.yaml")).unwrap();
    for (from, to, says) in [
        ("limit: null", "limit: 1000", "training images, but k-means"),
        (
            "clusters: 7",
            "clusters: 6",
            "it holds a DCGAN: 7 clusters (self-conditioned)",
        ),
    ] {
        assert!(own.contains(from), "{own}");
        std::fs::write(t.join("int/spec.yaml"), own.replace(from, to)).unwrap();
        let out = runner(&["--resume", "int", "--force", "--quiet"], t);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && !err.contains("panicked") && err.contains(says),
            "{err}"
        );
    }
}

/// Two data folders whose paths differ only in `/` against `_` are two grid points with two
/// run directories, each trained on its own folder (their names used to collide, and the
/// second point was "already completed, skipped").
#[test]
fn sweep_points_whose_values_look_alike_never_share_a_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    for folder in ["x/mn", "x_mn"] {
        let dir = t.join(folder);
        std::fs::create_dir_all(&dir).unwrap();
        for e in std::fs::read_dir(gan_data::fixture_dir())
            .unwrap()
            .flatten()
        {
            std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
        }
    }
    let (a, b) = (t.join("x/mn"), t.join("x_mn"));
    let spec = t.join("dirs.yaml");
    std::fs::write(
        &spec,
        format!(
            "name: dirs\ntrain:\n  epochs: 1\nsamples:\n  count: 2\neval:\n  enabled: false\n\
             sweep:\n  data.dir: [{}, {}]\n",
            a.display(),
            b.display()
        ),
    )
    .unwrap();
    let out = ok(&runner(
        &[spec.to_str().unwrap(), "--run-dir", "s", "--quiet"],
        t,
    ));
    assert!(!out.contains("skipped"), "{out}");
    let names = point_dirs(&t.join("s"));
    assert_eq!(names.len(), 2, "{names:?}");
    for (name, data) in names.iter().zip([&a, &b]) {
        let spec = std::fs::read_to_string(t.join("s").join(name).join("spec.yaml")).unwrap();
        assert!(
            spec.contains(&format!("dir: {}", data.display())),
            "{name}: {spec}"
        );
    }
}

/// A folder holding another point's run (as an older, ambiguous naming could leave one) is
/// refused by name, never skipped or resumed as this point's, even with --force (which keeps
/// finished points whose spec changed, not runs of other points).
#[test]
fn a_sweep_never_takes_one_points_run_for_another() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let body = "train:\n  epochs: 1\nsamples:\n  count: 2\neval:\n  enabled: false\nsweep:\n  seed: [1, 2]\n";
    let spec = fixture_spec_file(t, "two", "name: two\n", body);
    let s = spec.to_str().unwrap();
    ok(&runner(&[s, "--run-dir", "g", "--quiet"], t));
    let g = t.join("g");
    std::fs::remove_dir_all(g.join("seed=2")).unwrap();
    std::fs::rename(g.join("seed=1"), g.join("seed=2")).unwrap();
    let out = runner(&[s, "--run-dir", "g", "--quiet"], t);
    assert!(!out.status.success());
    let out = runner(&[s, "--run-dir", "g", "--quiet", "--force"], t);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(
            "seed=2 holds the run of another grid point (seed is 1 there, 2 in this point)"
        ),
        "{err}"
    );
}

/// Ctrl-C while the run is prepared (data, k-means for model.clusters) stops it there and
/// leaves no run behind: no run directory, no step-0 checkpoint marked `interrupted` (which
/// the interrupt used to leave after k-means had finished regardless). A sweep stops before
/// making a point's folder.
#[test]
fn ctrl_c_during_preparation_leaves_no_run_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let body = "model:\n  clusters: 4\ntrain:\n  epochs: 1\neval:\n  enabled: false\n";
    let spec = fixture_spec_file(t, "clustered", "", body);
    let raised = AtomicBool::new(true);
    let opts = Options {
        spec: Some(spec.clone()),
        run_dir: Some(t.join("r")),
        quiet: true,
        ..Options::default()
    };
    let outcome = runner::run(&opts, &raised).unwrap();
    assert!(
        matches!(&outcome, Outcome::NotStarted(what) if what.contains("before training started")),
        "{outcome:?}"
    );
    assert!(!t.join("r").exists(), "a run directory was left");
    let grid = fixture_spec_file(
        t,
        "grid",
        "name: grid\n",
        &format!("{body}sweep:\n  seed: [1, 2]\n"),
    );
    let opts = Options {
        spec: Some(grid),
        run_dir: Some(t.join("g")),
        quiet: true,
        ..Options::default()
    };
    assert_eq!(
        runner::run(&opts, &raised).unwrap(),
        Outcome::Interrupted(t.join("g"))
    );
    assert!(point_dirs(&t.join("g")).is_empty());
    // From the command line: one line saying so, and the interrupt's exit code.
    let out = Command::new(RUNNER)
        .args([spec.to_str().unwrap(), "--run-dir", "c", "--quiet"])
        .current_dir(t)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "not interrupted: it runs");
}

/// A sample picture deleted or damaged before a resume is drawn again from the checkpoint
/// taken right after its epoch: the finished run (pictures and TensorBoard log included)
/// equals an uninterrupted one. Without such a checkpoint the resume says the picture stays
/// missing.
#[test]
fn missing_or_damaged_pictures_are_drawn_again_on_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let body = "model:\n  hidden: 384\ntrain:\n  epochs: 3\n  batch_size: 10\nsamples:\n  count: 3\n  every: 1\ncheckpoint:\n  keep: 10\n";
    let spec = fixture_spec_file(t, "pics", "name: pics\nseed: 5\n", body);
    ok(&runner(
        &[spec.to_str().unwrap(), "--run-dir", "whole", "--quiet"],
        t,
    ));
    assert_eq!(
        run_interrupted_after(&spec, t, "int", 250),
        Outcome::Interrupted(t.join("int"))
    );
    let samples = t.join("int/samples");
    std::fs::remove_file(samples.join("000.png")).unwrap();
    std::fs::write(samples.join("001.png"), b"no png").unwrap();
    let out = ok(&runner(&["--resume", "int"], t));
    assert!(
        out.contains("000.png was missing or damaged: drawn again"),
        "{out}"
    );
    assert_same_run(&t.join("whole"), &t.join("int"));

    // With only the newest checkpoints kept, nothing holds epoch 0's weights: reported.
    let few = fixture_spec_file(
        t,
        "few",
        "name: few\nseed: 5\n",
        &body.replace("keep: 10", "keep: 1"),
    );
    run_interrupted_after(&few, t, "few", 250);
    std::fs::remove_file(t.join("few/samples/000.png")).unwrap();
    let out = ok(&runner(&["--resume", "few"], t));
    assert!(
        out.contains("000.png is missing or damaged, and no kept checkpoint holds the weights"),
        "{out}"
    );
}
