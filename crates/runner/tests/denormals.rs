//! `train.flush_denormals`: the training threads flush denormals to zero by default, as
//! TensorFlow's do, and keep them when the spec says `false`.

use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use runner::{Options, StepHook};

mod common;
use common::fixture_spec_file;

/// Whether each step's thread flushed: the hook runs on the thread that trains.
fn flushed_at_each_step(t: &Path, name: &str, body: &str) -> Vec<bool> {
    let spec = fixture_spec_file(t, name, &format!("name: {name}\nseed: 3\n"), body);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let opts = Options {
        spec: Some(spec),
        run_dir: Some(t.join(name)),
        quiet: true,
        threads: Some(2),
        on_step: Some(StepHook(Arc::new(move |_| {
            let half_of_smallest_normal = black_box(f32::MIN_POSITIVE) * black_box(0.5);
            record.lock().unwrap().push(half_of_smallest_normal == 0.0);
        }))),
        ..Options::default()
    };
    runner::run(&opts, &AtomicBool::new(false)).unwrap();
    let seen = seen.lock().unwrap().clone();
    seen
}

#[test]
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn training_threads_flush_denormals_unless_the_spec_says_not() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let body =
        "model:\n  hidden: 32\ntrain:\n  epochs: 1\n  batch_size: 100\nsamples:\n  count: 0\n";
    let default = flushed_at_each_step(t, "default", body);
    assert_eq!(default.len(), 11, "one record a step");
    assert!(
        default.iter().all(|&f| f),
        "flushed by default: {default:?}"
    );
    let kept = flushed_at_each_step(
        t,
        "kept",
        &body.replace("  batch_size", "  flush_denormals: false\n  batch_size"),
    );
    assert_eq!(kept.len(), 11);
    assert!(kept.iter().all(|&f| !f), "kept with false: {kept:?}");
    // These few steps give the same bits either way (so do whole runs checked by hand).
    let losses = |run: &str| std::fs::read(t.join(run).join("losses.csv")).unwrap();
    assert_eq!(losses("default"), losses("kept"));
}
