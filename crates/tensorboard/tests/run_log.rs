//! A run's TensorBoard log rebuilt from a run directory made here: every step's scalars,
//! the epoch means at the epoch's last step, the pictures, the spec and hparams, the metrics;
//! and a rebuild at a checkpoint holds exactly what the run had logged by then.

use gan_rundir::{LossRow, LossWriter, RunDir, RunInfo, Status};
use gan_tensorboard::proto::{event::What, value::Kind, Event, HParamsPluginData};
use gan_tensorboard::{read_events, RunLog};
use prost::Message;

/// Three epochs of four steps, pictures after epochs 0 and 2.
fn make_run(root: &std::path::Path) -> RunDir {
    let dir = RunDir::create(&root.join("r")).unwrap();
    std::fs::write(
        dir.file(gan_rundir::SPEC_FILE),
        "name: toy\nseed: 3\ntrain:\n  lr: 0.0002\n  g_loss: non_saturating\neval:\n  enabled: false\n",
    )
    .unwrap();
    let info: RunInfo = serde_json::from_value(serde_json::json!({
        "format": gan_rundir::RUN_FORMAT, "name": "toy", "status": "completed", "seed": 3,
        "started_at": "2026-11-29T10:00:00Z", "ended_at": "2026-11-29T10:00:09Z",
        "epochs_planned": 3, "epochs_done": 3, "steps_done": 12,
        "epoch_seconds": [2.0, 3.0, 4.0], "threads": 1, "pid": 1,
        "machine": {"hostname": "h", "os": "linux", "arch": "x86_64", "cpu": "c", "logical_cpus": 1},
        "versions": {}
    }))
    .unwrap();
    dir.write_info(&info).unwrap();
    let mut w = LossWriter::create(&dir.file(gan_rundir::LOSSES_FILE)).unwrap();
    for step in 1..=12u64 {
        w.write(&LossRow {
            epoch: ((step - 1) / 4) as usize,
            step,
            d_loss: -1.0 + step as f32 / 64.0,
            g_loss: -0.5 - step as f32 / 32.0,
            d_real: 0.5,
            d_fake: 0.25,
        })
        .unwrap();
    }
    w.flush().unwrap();
    for epoch in [0, 2] {
        let png = gan_plot::SampleGrid::default()
            .encode_png(&vec![0.5; 2 * 784])
            .unwrap();
        std::fs::write(dir.sample_path(epoch), png).unwrap();
    }
    assert_eq!(info.status, Status::Completed);
    dir
}

/// (tag, step, value) of every scalar.
type Scalars = Vec<(String, i64, f32)>;

/// The scalars, and (tag, step) of everything else.
fn content(events: &[Event]) -> (Scalars, Vec<(String, i64)>) {
    let (mut scalars, mut other) = (Vec::new(), Vec::new());
    for e in events {
        if let Some(What::Summary(s)) = &e.what {
            for v in &s.value {
                match &v.kind {
                    Some(Kind::SimpleValue(x)) => scalars.push((v.tag.clone(), e.step, *x)),
                    _ => other.push((v.tag.clone(), e.step)),
                }
            }
        }
    }
    (scalars, other)
}

#[test]
fn a_rebuilt_log_holds_the_whole_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = make_run(tmp.path());
    RunLog::rebuild(&dir, None).unwrap();
    let events = read_events(&RunLog::path(&dir)).unwrap();
    assert!(matches!(&events[0].what, Some(What::FileVersion(v)) if v == "brain.Event:2"));
    let (scalars, other) = content(&events);
    let steps: Vec<i64> = scalars
        .iter()
        .filter(|s| s.0 == "step/d_loss")
        .map(|s| s.1)
        .collect();
    assert_eq!(steps, (1..=12).collect::<Vec<_>>());
    let g3 = scalars
        .iter()
        .find(|s| s.0 == "step/g_loss" && s.1 == 3)
        .unwrap();
    assert_eq!(g3.2, -0.5 - 3.0 / 32.0);
    // Epoch means at the last step of each epoch: steps 1-4 of d_loss average (2.5 / 64) - 1.
    let means: Vec<(i64, f32)> = scalars
        .iter()
        .filter(|s| s.0 == "epoch/d_loss")
        .map(|s| (s.1, s.2))
        .collect();
    assert_eq!(means.len(), 3);
    assert_eq!(means[0], (4, -1.0 + 2.5 / 64.0));
    assert_eq!(means[2].0, 12);
    assert_eq!(
        other,
        [
            ("spec".to_string(), 0),
            ("_hparams_/session_start_info".into(), 0),
            ("samples".into(), 4),
            ("samples".into(), 12),
            ("_hparams_/session_end_info".into(), 12),
        ]
    );
    // Wall times follow run.json: epoch 1 ends 5 s after the start.
    let step5 = events.iter().find(|e| e.step == 5).unwrap();
    let start =
        gan_tensorboard::unix_seconds(humantime::parse_rfc3339("2026-11-29T10:00:00Z").unwrap());
    assert_eq!(step5.wall_time - start, 5.0);
    // The hparams are the spec's keys, typed.
    let start_info = events
        .iter()
        .filter_map(|e| match &e.what {
            Some(What::Summary(s)) => s
                .value
                .iter()
                .find(|v| v.tag == "_hparams_/session_start_info")
                .cloned(),
            _ => None,
        })
        .next()
        .unwrap();
    let data =
        HParamsPluginData::decode(&*start_info.metadata.unwrap().plugin_data.unwrap().content)
            .unwrap();
    let Some(gan_tensorboard::proto::hparams::Data::SessionStartInfo(info)) = data.data else {
        panic!("no session start")
    };
    use prost_types::value::Kind as V;
    assert_eq!(info.hparams["train.lr"].kind, Some(V::NumberValue(0.0002)));
    assert_eq!(info.hparams["eval.enabled"].kind, Some(V::BoolValue(false)));
    assert_eq!(
        info.hparams["train.g_loss"].kind,
        Some(V::StringValue("non_saturating".into()))
    );
    assert_eq!(info.group_name, "r");
}

#[test]
fn a_rebuild_at_a_checkpoint_holds_what_was_logged_by_then() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = make_run(tmp.path());
    // Checkpoint after step 10: two epochs done, two steps of the third.
    RunLog::rebuild(&dir, Some((10, 2))).unwrap();
    let (scalars, other) = content(&read_events(&RunLog::path(&dir)).unwrap());
    let count = |tag: &str| scalars.iter().filter(|s| s.0 == tag).count();
    assert_eq!(count("step/d_fake"), 10);
    assert_eq!(count("epoch/d_fake"), 2);
    assert!(!other.iter().any(|o| o.0 == "_hparams_/session_end_info"));
    assert_eq!(
        other.iter().filter(|o| o.0 == "samples").count(),
        1,
        "epoch 2's picture is not yet"
    );
    // Continuing from there gives the whole run's content.
    let mut log = RunLog::rebuild(&dir, Some((10, 2))).unwrap();
    let rows = dir.read_losses().unwrap();
    log.steps(&rows[10..12], 0.0);
    log.epoch_end(
        &rows[8..12],
        Some(&std::fs::read(dir.sample_path(2)).unwrap()),
        0.0,
    );
    log.end(true, 12, 0.0);
    log.flush().unwrap();
    let continued = content(&read_events(&RunLog::path(&dir)).unwrap());
    RunLog::rebuild(&dir, None).unwrap();
    assert_eq!(
        continued,
        content(&read_events(&RunLog::path(&dir)).unwrap())
    );
}

#[test]
fn a_damaged_event_file_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = make_run(tmp.path());
    RunLog::rebuild(&dir, None).unwrap();
    let path = RunLog::path(&dir);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x10;
    std::fs::write(&path, &bytes).unwrap();
    let e = read_events(&path).unwrap_err().to_string();
    assert!(e.contains("checksum mismatch"), "{e}");
}

/// `losses.csv` cut short or deleted is refused, and the log (perhaps the last copy of the
/// losses) stays byte for byte as it was.
#[test]
fn a_short_or_missing_loss_log_never_replaces_the_event_log() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = make_run(tmp.path());
    RunLog::rebuild(&dir, None).unwrap();
    let before = std::fs::read(RunLog::path(&dir)).unwrap();
    let losses = dir.file(gan_rundir::LOSSES_FILE);
    let text = std::fs::read_to_string(&losses).unwrap();
    let cut: Vec<&str> = text.lines().take(1 + 10 - 5).collect();
    std::fs::write(&losses, cut.join("\n") + "\n").unwrap();
    let e = RunLog::rebuild(&dir, None)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        e.contains("losses.csv") && e.contains("holds 5 of the 12 steps"),
        "{e}"
    );
    assert_eq!(std::fs::read(RunLog::path(&dir)).unwrap(), before);
    std::fs::remove_file(&losses).unwrap();
    let e = RunLog::rebuild(&dir, None)
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("holds 0 of the 12 steps"), "{e}");
    assert_eq!(std::fs::read(RunLog::path(&dir)).unwrap(), before);
    // Nothing is left behind by the refused rebuilds.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.starts_with(".tmp-")), "{names:?}");
}

/// A symbolic link in the event file's place is replaced by the log, never written through.
#[cfg(unix)]
#[test]
fn a_symlinked_event_file_is_replaced_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = make_run(tmp.path());
    let elsewhere = tmp.path().join("precious.txt");
    std::fs::write(&elsewhere, "not an event file").unwrap();
    std::os::unix::fs::symlink(&elsewhere, RunLog::path(&dir)).unwrap();
    RunLog::rebuild(&dir, None).unwrap();
    assert_eq!(
        std::fs::read_to_string(&elsewhere).unwrap(),
        "not an event file"
    );
    let meta = std::fs::symlink_metadata(RunLog::path(&dir)).unwrap();
    assert!(meta.file_type().is_file(), "{meta:?}");
    let (scalars, _) = content(&read_events(&RunLog::path(&dir)).unwrap());
    assert!(scalars
        .iter()
        .any(|(tag, step, _)| tag == "step/d_loss" && *step == 12));
}
