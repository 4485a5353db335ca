//! The `gan` tools (the same code as `cargo xtask runs`, `compare`, ...) on small run
//! directories built here (no training): identical runs, diverging runs, runs of different lengths, a failed run, a stale run and
//! a directory with a corrupt losses.csv.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

use gan_rundir::{LossRow, LossWriter, Machine, RunDir, RunInfo, Status};

/// The installed tools binary; `cargo xtask` runs the same code (gan-tools).
const GAN: &str = env!("CARGO_BIN_EXE_gan");

fn info(name: &str, seed: u64, status: Status, epochs: usize) -> RunInfo {
    RunInfo {
        format: gan_rundir::RUN_FORMAT.into(),
        name: name.into(),
        status,
        error: (status == Status::Failed).then(|| "training diverged at step 7".into()),
        seed,
        started_at: format!("2026-11-0{}T10:00:00Z", seed.min(9)),
        ended_at: None,
        epochs_planned: 3,
        epochs_done: epochs,
        steps_done: epochs as u64 * 4,
        epoch_seconds: vec![1.5; epochs],
        threads: 2,
        pid: std::process::id(),
        machine: Machine::default(),
        git: None,
        versions: Default::default(),
        spec_source: None,
        overrides: Vec::new(),
        sweep_point: None,
        spec_sha256: String::new(),
        resumed_at: Vec::new(),
        model_sha256: None,
    }
}

/// A run with `epochs` epochs of 4 steps; `bump` changes the losses from step `bump` on.
fn make_run(
    root: &Path,
    dir: &str,
    seed: u64,
    epochs: usize,
    bump: Option<u64>,
    status: Status,
) -> PathBuf {
    let path = root.join(dir);
    let run = RunDir::create(&path).unwrap();
    let spec = format!("name: toy\nseed: {seed}\ntrain:\n  epochs: 3\n  lr: 0.0002\n");
    std::fs::write(run.file(gan_rundir::SPEC_FILE), spec).unwrap();
    run.write_info(&info("toy", seed, status, epochs)).unwrap();
    let mut w = LossWriter::create(&run.file(gan_rundir::LOSSES_FILE)).unwrap();
    for step in 1..=(epochs as u64 * 4) {
        let extra = match bump {
            Some(b) if step >= b => 0.25 + step as f32 * 0.01,
            _ => 0.0,
        };
        w.write(&LossRow {
            epoch: ((step - 1) / 4) as usize,
            step,
            d_loss: -1.0 + step as f32 * 0.01 + extra,
            g_loss: -0.7 - step as f32 * 0.02,
            d_real: 0.5,
            d_fake: 0.4,
        })
        .unwrap();
    }
    w.flush().unwrap();
    for e in 0..epochs {
        let img = vec![0.1 * (e as f32 + if bump.is_some() { 1.0 } else { 0.0 }); 2 * 784];
        let png = gan_plot::SampleGrid::default().encode_png(&img).unwrap();
        std::fs::write(run.sample_path(e), png).unwrap();
    }
    path
}

fn run_gan(args: &[&str]) -> Output {
    Command::new(GAN).args(args).output().expect("gan starts")
}

fn stdout_of(out: &Output) -> String {
    assert!(
        out.status.success(),
        "gan failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn compare_reports_identical_diverging_and_shorter_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path();
    let a = make_run(r, "a", 1, 3, None, Status::Completed);
    let b = make_run(r, "b", 1, 3, None, Status::Completed);
    let c = make_run(r, "c", 2, 3, Some(6), Status::Completed);
    let d = make_run(r, "d", 1, 2, None, Status::Completed);
    let out_dir = r.join("cmp");
    let s = |p: &PathBuf| p.to_str().unwrap().to_string();
    let text = stdout_of(&run_gan(&[
        "compare",
        &s(&a),
        &s(&b),
        &s(&c),
        &s(&d),
        "--out",
        &s(&out_dir),
    ]));
    assert!(
        text.contains("a vs b") && text.contains("bit-identical (12 steps)"),
        "{text}"
    );
    assert!(text.contains("all 3 pictures identical"), "{text}");
    assert!(text.contains("diverge at step 6: d_loss"), "{text}");
    assert!(
        text.contains("identical for the 8 steps both have; a has 4 more"),
        "{text}"
    );
    assert!(
        text.contains(" seed "),
        "the differing key is shown: {text}"
    );
    assert!(text.contains("keys agree"), "{text}");
    for f in ["losses.png", "samples.png", "report.md"] {
        assert!(out_dir.join(f).is_file(), "{f} written");
    }

    let json = stdout_of(&run_gan(&[
        "compare",
        &s(&a),
        &s(&b),
        "--out",
        &s(&out_dir),
        "--format",
        "json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["pairs"][0]["bit_identical_losses"], true);
    assert_eq!(
        v["seed_groups"].as_array().unwrap().len(),
        0,
        "same seed: no seed statistics"
    );
    let md = stdout_of(&run_gan(&[
        "compare",
        &s(&a),
        &s(&c),
        "--out",
        &s(&out_dir),
        "--format",
        "markdown",
    ]));
    assert!(
        md.contains("## Reproducibility") && md.contains("| pair"),
        "{md}"
    );
    let csv = stdout_of(&run_gan(&[
        "compare",
        &s(&a),
        &s(&c),
        "--out",
        &s(&out_dir),
        "--format",
        "csv",
    ]));
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.lines().next().unwrap().ends_with(",seed"), "{csv}");
}

#[test]
fn runs_differing_only_in_seed_get_mean_and_std() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path();
    let runs: Vec<String> = (1..=3)
        .map(|seed| {
            make_run(
                r,
                &format!("s{seed}"),
                seed,
                3,
                (seed > 1).then_some(seed * 3),
                Status::Completed,
            )
        })
        .map(|p| p.to_str().unwrap().to_string())
        .collect();
    let out = r.join("cmp").to_str().unwrap().to_string();
    let json = stdout_of(&run_gan(&[
        "compare", &runs[0], &runs[1], &runs[2], "--out", &out, "--format", "json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let groups = v["seed_groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1);
    let (mean, std) = (
        groups[0]["stats"]["final epoch g_loss"][0]
            .as_f64()
            .unwrap(),
        groups[0]["stats"]["final epoch g_loss"][1]
            .as_f64()
            .unwrap(),
    );
    // g_loss does not depend on the bump: all three runs agree, std 0.
    assert!(
        (mean - (-0.7 - 0.02 * 10.5)).abs() < 1e-5 && std.abs() < 1e-6,
        "{mean} {std}"
    );
    let d_std = groups[0]["stats"]["final epoch d_loss"][1]
        .as_f64()
        .unwrap();
    assert!(d_std > 0.1, "d_loss differs between the seeds: {d_std}");
}

#[test]
fn runs_lists_every_kind_of_run_and_survives_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path();
    make_run(r, "good", 1, 3, None, Status::Completed);
    make_run(r, "failed", 2, 1, None, Status::Failed);
    let corrupt = make_run(r, "corrupt", 3, 2, None, Status::Completed);
    std::fs::write(corrupt.join("losses.csv"), "epoch,step,d_loss\n0,1,x,y\n").unwrap();
    std::fs::create_dir(r.join("stray-folder")).unwrap();
    // A run marked running on this machine whose process is gone.
    let stale = make_run(r, "stale", 4, 1, None, Status::Running);
    let mut child = Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    child.wait().unwrap();
    let mut i = info("toy", 4, Status::Running, 1);
    i.pid = dead_pid;
    i.machine.hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    RunDir::open(&stale).unwrap().write_info(&i).unwrap();

    let text = stdout_of(&run_gan(&["runs", r.to_str().unwrap()]));
    let line = |name: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing:\n{text}"))
    };
    assert!(
        line("good").contains("completed") && line("good").contains("3/3"),
        "{text}"
    );
    assert!(line("failed").contains("failed"), "{text}");
    assert!(
        line("corrupt").contains("damaged") && line("corrupt").contains("losses.csv"),
        "{text}"
    );
    assert!(
        line("stray-folder").contains("not a run directory"),
        "{text}"
    );
    assert!(line("stale").contains("stale"), "{text}");
    // Newest first: started_at follows the seed here.
    let order: Vec<&str> = text
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        &order[..4],
        &["stale", "corrupt", "failed", "good"],
        "{text}"
    );

    let cmp = stdout_of(&run_gan(&[
        "compare",
        corrupt.to_str().unwrap(),
        r.join("good").to_str().unwrap(),
        "--out",
        r.join("c").to_str().unwrap(),
    ]));
    assert!(
        cmp.contains("no loss log to compare") && cmp.contains("corrupt:"),
        "{cmp}"
    );
    // Folders that are not runs are named and refused, alone or beside real runs.
    let stray = r.join("stray-folder");
    let specs = r.join("experiments");
    std::fs::create_dir_all(&specs).unwrap();
    std::fs::write(specs.join("a.yaml"), "seed: 1\n").unwrap();
    for args in [
        vec![specs.to_str().unwrap()],
        vec![stray.to_str().unwrap(), r.join("good").to_str().unwrap()],
    ] {
        let out = run_gan(&[&["compare"], &args[..]].concat());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{err}");
        assert!(
            err.contains("not a run directory or sweep folder") && err.contains(args[0]),
            "{err}"
        );
    }
}

#[test]
fn sample_writes_an_idx_file_any_tool_can_read() {
    let tmp = tempfile::tempdir().unwrap();
    let run = run_with_model(tmp.path(), "r", &Default::default(), None);
    let seven_from_seed_3 = |out: &Path| {
        let (run, out) = (run.to_str().unwrap(), out.to_str().unwrap());
        stdout_of(&run_gan(&[
            "sample", run, "--count", "7", "--seed", "3", "--out", out,
        ]))
    };
    let out = tmp.path().join("s.idx");
    let text = seven_from_seed_3(&out);
    assert!(text.contains("7 images"), "{text}");
    let idx = gan_data::read_idx(&out, 3).unwrap();
    assert_eq!(idx.dims, vec![7, 28, 28]);
    // The same seed gives the same file; gzip by extension.
    let gz = tmp.path().join("s.idx.gz");
    seven_from_seed_3(&gz);
    assert_eq!(gan_data::read_idx(&gz, 3).unwrap(), idx);
    let err = run_gan(&[
        "sample",
        tmp.path().join("nope").to_str().unwrap(),
        "--count",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        !err.status.success()
            && String::from_utf8_lossy(&err.stderr).contains("not a run directory")
    );
}

#[test]
fn sample_asks_a_conditional_generator_for_every_digit_equally() {
    let tmp = tempfile::tempdir().unwrap();
    let conditional = gan_model::ModelConfig {
        classes: 10,
        ..gan_model::ModelConfig::default()
    };
    let run = run_with_model(tmp.path(), "c", &conditional, None);
    let (images, labels) = (tmp.path().join("c.idx"), tmp.path().join("c-labels.idx"));
    let (r, i, l) = (
        run.to_str().unwrap(),
        images.to_str().unwrap(),
        labels.to_str().unwrap(),
    );
    let text = stdout_of(&run_gan(&[
        "sample",
        r,
        "--count",
        "40",
        "--out",
        i,
        "--labels-out",
        l,
    ]));
    assert!(text.contains("their digits written"), "{text}");
    assert_eq!(
        gan_data::read_idx(&images, 3).unwrap().dims,
        vec![40, 28, 28]
    );
    let idx = gan_data::read_idx(&labels, 1).unwrap();
    assert_eq!(idx.dims, vec![40]);
    for digit in 0..10u8 {
        assert_eq!(
            idx.data.iter().filter(|&&d| d == digit).count(),
            4,
            "digit {digit}"
        );
    }

    // An unconditional run has no digits to write: a clear refusal, nothing written.
    let plain = run_with_model(tmp.path(), "u", &Default::default(), None);
    let other = tmp.path().join("u-labels.idx");
    let out = run_gan(&[
        "sample",
        plain.to_str().unwrap(),
        "--count",
        "5",
        "--out",
        tmp.path().join("u.idx").to_str().unwrap(),
        "--labels-out",
        other.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("unconditional"),
        "{err}"
    );
    assert!(!other.exists());
}

#[test]
fn cluster_scripts_fan_a_sweep_out_by_shard() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("grid.yaml");
    std::fs::write(&spec, "name: grid\nsweep:\n  seed: [1, 2, 3, 4]\n").unwrap();
    let s = spec.to_str().unwrap();
    let script = stdout_of(&run_gan(&[
        "slurm",
        s,
        "--shards",
        "2",
        "--partition",
        "cpu",
    ]));
    assert!(script.starts_with("#!/usr/bin/env bash"), "{script}");
    for want in [
        "#SBATCH --array=0-1",
        "#SBATCH --partition=cpu",
        "--shard \"${SLURM_ARRAY_TASK_ID}/2\"",
        "--run-dir runs/grid",
    ] {
        assert!(script.contains(want), "{want} missing:\n{script}");
    }
    let yaml = stdout_of(&run_gan(&["k8s", s, "--image", "img:1"]));
    let job: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
    assert_eq!(job["kind"], "Job");
    assert_eq!(job["spec"]["completionMode"], "Indexed");
    assert_eq!(job["spec"]["completions"], 4);
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "img:1");
    assert!(container["args"][0]
        .as_str()
        .unwrap()
        .contains("--shard \"$JOB_COMPLETION_INDEX/4\""));
    let plain = tmp.path().join("plain.yaml");
    std::fs::write(&plain, "seed: 1\n").unwrap();
    let out = run_gan(&["slurm", plain.to_str().unwrap()]);
    assert!(
        !out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains("no `sweep:` section")
    );
}

/// A completed run `root/dir` whose model.safetensors (freshly initialised `model`) is
/// written and recorded as the runner does.
fn run_with_model(
    root: &Path,
    dir: &str,
    model: &gan_model::ModelConfig,
    nan_at: Option<usize>,
) -> PathBuf {
    let path = make_run(root, dir, 1, 1, None, Status::Completed);
    let mut gan = gan_model::Gan::init(model, &mut gan_model::stream(1, gan_model::Stream::Init));
    if let Some(i) = nan_at {
        let bias = gan.generator.slots()[3].range.start;
        gan.generator.params[bias + i] = f32::NAN;
    }
    let run = RunDir::open(&path).unwrap();
    let mut info = run.read_info().unwrap();
    info.model_sha256 = Some(
        run.write_model(&gan_model::checkpoint::encode_gan(&gan))
            .unwrap(),
    );
    run.write_info(&info).unwrap();
    path
}

fn stderr_of_failure(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "expected a failure: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn a_damaged_or_broken_model_is_refused_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    // Data without a cached classifier: any eval that got past its inputs would train one.
    let data = common::fixture_copy(tmp.path());
    let data = data.to_str().unwrap();
    let run = run_with_model(tmp.path(), "m", &Default::default(), None);
    let r = run.to_str().unwrap();
    let out = tmp.path().join("s.idx");
    let o = out.to_str().unwrap();
    stdout_of(&run_gan(&["sample", r, "--count", "2", "--out", o]));

    // One flipped byte: caught by the hash run.json recorded.
    let model = run.join(gan_rundir::MODEL_FILE);
    let mut bytes = std::fs::read(&model).unwrap();
    let at = bytes.len() - 3;
    bytes[at] ^= 1;
    std::fs::write(&model, &bytes).unwrap();
    for args in [
        vec!["sample", r, "--count", "2", "--out", o],
        vec!["eval", r, "--data", data],
    ] {
        let err = stderr_of_failure(&run_gan(&args));
        assert!(err.contains("does not match the SHA-256"), "{err}");
        assert!(!err.contains("training"), "inputs are checked first: {err}");
    }
    // No model at all: said at once, naming the run's status.
    std::fs::remove_file(&model).unwrap();
    let err = stderr_of_failure(&run_gan(&["eval", r, "--data", data]));
    assert!(
        err.contains("model.safetensors: missing") && !err.contains("training"),
        "{err}"
    );
    assert!(
        !tmp.path().join("classifier").exists(),
        "no classifier was trained for inputs that cannot be scored"
    );
    // Too few samples for the metrics: refused by the argument parser, not by a panic.
    for n in ["0", "5"] {
        let err = stderr_of_failure(&run_gan(&["eval", r, "--samples", n, "--data", data]));
        assert!(err.contains("at least 10"), "{err}");
    }
}

#[test]
fn a_generator_with_a_nan_weight_is_refused_not_scored() {
    let tmp = tempfile::tempdir().unwrap();
    let data = common::fixture_copy(tmp.path());
    let run = run_with_model(tmp.path(), "m", &Default::default(), Some(17));
    let err = stderr_of_failure(&run_gan(&[
        "eval",
        run.to_str().unwrap(),
        "--samples",
        "10",
        "--data",
        data.to_str().unwrap(),
    ]));
    assert!(
        err.contains("weight generator.2.bias[17] is NaN") && err.contains("refusing to score it"),
        "{err}"
    );
    assert!(!run.join(gan_rundir::METRICS_FILE).exists());
}

#[test]
fn tensorboard_backfills_runs_and_leaves_running_ones_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let done = make_run(tmp.path(), "done", 1, 2, None, Status::Completed);
    let busy = make_run(tmp.path(), "busy", 2, 2, None, Status::Running);
    let _held = RunDir::open(&busy).unwrap().lock().unwrap();
    let out = stdout_of(&run_gan(&[
        "tensorboard",
        done.to_str().unwrap(),
        busy.to_str().unwrap(),
    ]));
    assert!(
        out.contains("skipped") && out.contains("in use by pid"),
        "{out}"
    );
    let events = gan_tensorboard::read_events(&done.join(gan_rundir::EVENTS_FILE)).unwrap();
    let steps = events
        .iter()
        .filter(|e| matches!(&e.what, Some(gan_tensorboard::proto::event::What::Summary(s)) if s.value[0].tag == "step/d_loss"))
        .count();
    assert_eq!(steps, 8, "2 epochs of 4 steps");
    assert!(!busy.join(gan_rundir::EVENTS_FILE).exists());
}

#[test]
fn every_gan_command_has_its_help() {
    let top = stdout_of(&run_gan(&["--help"]));
    let tools = gan_tools::Command::names();
    assert!(
        tools.len() >= 9 && tools.contains(&"tensorboard".to_string()),
        "{tools:?}"
    );
    for tool in &tools {
        assert!(top.contains(tool), "`gan --help` lists {tool}: {top}");
        let help = stdout_of(&run_gan(&[tool.as_str(), "--help"]));
        assert!(help.contains(&format!("Usage: gan {tool}")), "{help}");
    }
    assert!(
        top.contains("runner"),
        "points to runner for training: {top}"
    );
}

#[cfg(unix)]
#[test]
fn a_closed_pipe_ends_gan_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let tmp = tempfile::tempdir().unwrap();
    for i in 0..30 {
        make_run(tmp.path(), &format!("r{i}"), i, 1, None, Status::Completed);
    }
    // `gan runs DIR | head -0`: the reader is gone before gan writes its table.
    let mut child = Command::new(GAN)
        .args(["runs", tmp.path().to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{err}"
    );
    assert!(
        out.status.success() || out.status.signal() == Some(libc_sigpipe()),
        "{:?}",
        out.status
    );
}

#[cfg(unix)]
fn libc_sigpipe() -> i32 {
    13 // SIGPIPE on Linux and the BSDs
}

/// `gan eval --generator <checkpoint> --average`: each way the file can be unfit is one
/// message, said before any classifier is trained.
#[test]
fn eval_average_refuses_what_holds_no_average() {
    use gan_model::{
        dcgan::DcganTrainer, AnyState, Arch, DcganShape, ModelConfig, Step, TrainConfig,
    };
    let tmp = tempfile::tempdir().unwrap();
    let data = common::fixture_copy(tmp.path());
    let data = data.to_str().unwrap();
    let cfg = TrainConfig {
        model: ModelConfig {
            noise_dim: 8,
            arch: Arch::Dcgan(DcganShape {
                g_channels: [8, 4],
                d_channels: [4, 8],
                d_batch_norm: true,
                d_dense: 0,
            }),
            ..ModelConfig::default()
        },
        batch_size: 4,
        ..TrainConfig::tutorial()
    };
    let state = AnyState::Dcgan(DcganTrainer::new(cfg, 1).state());
    let bytes = gan_model::checkpoint::encode_any_state(&state, &Default::default());
    let run = make_run(tmp.path(), "r", 1, 1, None, Status::Completed);
    std::fs::create_dir_all(run.join("checkpoints")).unwrap();
    let inside = run.join("checkpoints/step-1.safetensors");
    let outside = tmp.path().join("step-1.safetensors");
    for path in [&inside, &outside] {
        std::fs::write(path, &bytes).unwrap();
    }
    let eval = |path: &Path| {
        stderr_of_failure(&run_gan(&[
            "eval",
            "--generator",
            path.to_str().unwrap(),
            "--average",
            "--data",
            data,
        ]))
    };
    let err = eval(&outside);
    assert!(err.contains("needs the run's spec.yaml"), "{err}");
    std::fs::write(run.join("spec.yaml"), "seed: 1\n").unwrap();
    let err = eval(&inside);
    assert!(err.contains("holds no moving average of G"), "{err}");
    let model = run_with_model(tmp.path(), "m", &Default::default(), None);
    let err = eval(&model.join(gan_rundir::MODEL_FILE));
    assert!(
        err.contains("is saved weights, not a training checkpoint"),
        "{err}"
    );
    assert!(!tmp.path().join("classifier").exists());
}

/// Counts no machine can hold are refused at once, naming the flag and the limit, before
/// anything is generated (they used to abort: `sample` at once, `eval` after a minute).
#[test]
fn sample_and_eval_refuse_counts_beyond_the_machine_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let run = run_with_model(tmp.path(), "r", &Default::default(), None);
    let (r, out) = (
        run.to_str().unwrap(),
        tmp.path().join("x.idx").to_string_lossy().into_owned(),
    );
    let started = std::time::Instant::now();
    let sample = run_gan(&["sample", r, "--count", "100000000000", "--out", &out]);
    let err = String::from_utf8_lossy(&sample.stderr);
    assert_eq!(sample.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--count 100000000000: an IDX file holds at most 4294967295 images"),
        "{err}"
    );
    let eval = run_gan(&["eval", r, "--samples", "1000000000"]);
    let err = String::from_utf8_lossy(&eval.stderr);
    assert_eq!(eval.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--samples 1000000000: evaluating that many images needs about")
            && err.contains("lower --samples"),
        "{err}"
    );
    assert!(
        started.elapsed().as_secs_f64() < 20.0,
        "{:?}",
        started.elapsed()
    );
}

/// Paths with spaces (and quotes) reach the runner as one argument each from both cluster
/// scripts, and a control character in a flag is refused instead of starting a line of
/// its own in the script.
#[test]
fn cluster_scripts_quote_every_value_they_interpolate() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("sp ace");
    std::fs::create_dir_all(&folder).unwrap();
    let spec = folder.join("my 'sweep'.yaml");
    std::fs::write(&spec, "name: grid\nsweep:\n  seed: [1, 2]\n").unwrap();
    let (s, run_dir) = (spec.to_str().unwrap(), "/tmp/run s");
    // What a shell hands the runner, one argument a line.
    let arguments = |line: &str, env: &str| -> Vec<String> {
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!("{env}; printf '%s\\n' {line}"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(String::from)
            .collect()
    };
    let want = |index: &str| -> Vec<String> {
        [
            s,
            "--run-dir",
            run_dir,
            "--shard",
            index,
            "--threads",
            "2",
            "--quiet",
        ]
        .map(String::from)
        .to_vec()
    };
    let script = stdout_of(&run_gan(&["slurm", s, "--run-dir", run_dir]));
    let srun = script
        .lines()
        .find_map(|l| l.strip_prefix("srun runner "))
        .expect("an srun line");
    assert_eq!(
        arguments(srun, "SLURM_ARRAY_TASK_ID=1 SLURM_CPUS_PER_TASK=2"),
        want("1/2"),
        "{script}"
    );
    let yaml = stdout_of(&run_gan(&["k8s", s, "--run-dir", run_dir]));
    let job: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
    let command = job["spec"]["template"]["spec"]["containers"][0]["args"][0]
        .as_str()
        .unwrap()
        .to_string();
    let line = command.strip_prefix("runner ").expect("runs the runner");
    assert_eq!(
        arguments(line, "JOB_COMPLETION_INDEX=0"),
        want("0/2"),
        "{yaml}"
    );
    for (tool, flags) in [
        ("slurm", ["--partition", "x\nrm -rf ~"]),
        ("slurm", ["--time", "01:00:00\n#SBATCH --x"]),
        ("slurm", ["--run-dir", "a\tb"]),
        ("k8s", ["--image", "img\n  command: [sh]"]),
        ("k8s", ["--pvc", "runs\nx"]),
        ("k8s", ["--run-dir", "a\tb"]),
    ] {
        let out = run_gan(&[&[tool, s], &flags[..]].concat());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{tool} {flags:?}");
        assert!(err.contains("control character"), "{tool} {flags:?}: {err}");
    }
    // Each scheduler takes only its own flags: none is accepted and then ignored.
    for (tool, flag) in [
        ("slurm", "--image"),
        ("slurm", "--pvc"),
        ("k8s", "--time"),
        ("k8s", "--partition"),
    ] {
        let out = run_gan(&[tool, s, flag, "x"]);
        assert!(!out.status.success(), "{tool} {flag} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(flag), "{tool} {flag}: {err}");
    }
}

/// Kubernetes takes the Job's name: an RFC 1123 label of at most 63 characters, the same
/// for the same sweep, different for sweeps whose names differ.
#[test]
fn k8s_job_names_are_valid_stable_and_distinct() {
    let tmp = tempfile::tempdir().unwrap();
    let job_name = |name: &str| -> String {
        let spec = tmp.path().join("s.yaml");
        std::fs::write(&spec, format!("name: {name:?}\nsweep:\n  seed: [1, 2]\n")).unwrap();
        let yaml = stdout_of(&run_gan(&["k8s", spec.to_str().unwrap()]));
        let job: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
        job["metadata"]["name"].as_str().unwrap().to_string()
    };
    let long = "A".repeat(80);
    let names = [
        "grid",
        "_My.Sweep",
        "my-sweep",
        "My.Sweep",
        long.as_str(),
        "___",
    ];
    let jobs: Vec<String> = names.iter().map(|n| job_name(n)).collect();
    assert_eq!(jobs[0], "grid-sweep");
    for (name, job) in names.iter().zip(&jobs) {
        let ok = job.len() <= 63
            && job
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && job.starts_with(|c: char| c.is_ascii_alphanumeric())
            && job.ends_with(|c: char| c.is_ascii_alphanumeric());
        assert!(ok, "{name:?} -> {job:?}");
    }
    let distinct: std::collections::BTreeSet<&String> = jobs.iter().collect();
    assert_eq!(distinct.len(), jobs.len(), "{jobs:?}");
    assert_eq!(job_name("_My.Sweep"), jobs[1], "not stable");
}

/// A task needs at least one CPU.
#[test]
fn cluster_scripts_refuse_zero_cpus() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("s.yaml");
    std::fs::write(&spec, "name: g\nsweep:\n  seed: [1, 2]\n").unwrap();
    for tool in ["slurm", "k8s"] {
        let out = run_gan(&[tool, spec.to_str().unwrap(), "--cpus", "0"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("--cpus"),
            "{tool}: {err}"
        );
    }
}

/// A damaged sample picture is reported as unreadable and left out of samples.png; the
/// rest of the comparison goes on (it used to stop at "Format error decoding Png").
#[test]
fn compare_goes_on_past_a_damaged_picture() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path();
    let a = make_run(r, "a", 1, 2, None, Status::Completed);
    let b = make_run(r, "b", 1, 2, None, Status::Completed);
    let damaged = RunDir::open(&a).unwrap().sample_path(1);
    std::fs::write(&damaged, b"not a png at all").unwrap();
    let out = r.join("cmp");
    let done = run_gan(&[
        "compare",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{err}");
    assert!(
        err.contains(&format!("{} is unreadable", damaged.display())),
        "{err}"
    );
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("left out of samples.png"), "{report}");
    assert!(out.join("samples.png").is_file() && out.join("losses.png").is_file());
}

/// The images and their digits cannot go to one file, however the two paths are spelt.
#[test]
fn sample_refuses_one_file_for_images_and_labels() {
    let tmp = tempfile::tempdir().unwrap();
    let conditional = gan_model::ModelConfig {
        classes: 10,
        ..gan_model::ModelConfig::default()
    };
    let run = run_with_model(tmp.path(), "c", &conditional, None);
    std::fs::create_dir_all(tmp.path().join("sub")).unwrap();
    let f = tmp.path().join("f.idx");
    let same = tmp.path().join("sub/../f.idx");
    for labels in [&f, &same] {
        let out = run_gan(&[
            "sample",
            run.to_str().unwrap(),
            "--count",
            "10",
            "--out",
            f.to_str().unwrap(),
            "--labels-out",
            labels.to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("are the same file"),
            "{labels:?}: {err}"
        );
        assert!(!f.exists(), "nothing is written");
    }
}
