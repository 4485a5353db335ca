//! The run-directory format: loss logs read back bit for bit, resume truncation, epoch
//! means, loss-log comparison, atomic writes and refusal to overwrite.

use gan_rundir::{
    compare_losses, epoch_means, read_losses, LossComparison, LossRow, LossWriter, RunDir,
};

fn row(step: u64, d: f32) -> LossRow {
    LossRow {
        epoch: ((step - 1) / 2) as usize,
        step,
        d_loss: d,
        g_loss: -0.5,
        d_real: 0.25,
        d_fake: 1.0 / 3.0,
    }
}

#[test]
fn rows_read_back_bit_for_bit() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("losses.csv");
    let rows: Vec<LossRow> = (1..=5).map(|s| row(s, -1.0 / (s as f32 * 7.0))).collect();
    let mut w = LossWriter::create(&path).unwrap();
    rows.iter().for_each(|r| w.write(r).unwrap());
    w.flush().unwrap();
    let back = read_losses(&path).unwrap();
    assert_eq!(back.len(), 5);
    for (a, b) in rows.iter().zip(&back) {
        assert_eq!(a.d_fake.to_bits(), b.d_fake.to_bits());
        assert_eq!(a.d_loss.to_bits(), b.d_loss.to_bits());
    }
    let means = epoch_means(&back);
    assert_eq!(means.len(), 3);
    assert_eq!((means[0].steps, means[2].steps), (2, 1));
    assert!((means[1].d_loss - (rows[2].d_loss as f64 + rows[3].d_loss as f64) / 2.0).abs() < 1e-9);
}

#[test]
fn resume_keeps_exactly_the_checkpointed_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("losses.csv");
    let mut w = LossWriter::create(&path).unwrap();
    (1..=6).for_each(|s| w.write(&row(s, s as f32)).unwrap());
    w.flush().unwrap();
    // A crash can leave half a line at the end.
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("3,7,0.1,0.");
    std::fs::write(&path, &text).unwrap();
    let mut w = LossWriter::resume(&path, 4).unwrap();
    w.write(&row(5, 50.0)).unwrap();
    w.flush().unwrap();
    let back = read_losses(&path).unwrap();
    assert_eq!(
        back.iter().map(|r| r.step).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(back[4].d_loss, 50.0);
    assert!(
        LossWriter::resume(&path, 9).is_err(),
        "cannot keep rows that are not there"
    );
}

#[test]
fn loss_logs_compare_bit_for_bit() {
    let a: Vec<LossRow> = (1..=6).map(|s| row(s, s as f32)).collect();
    assert_eq!(
        compare_losses(&a, &a.clone()),
        LossComparison::Identical { steps: 6 }
    );
    assert!(matches!(
        compare_losses(&a, &a[..4]),
        LossComparison::Prefix {
            common: 4,
            longer_by: 2,
            first_is_longer: true
        }
    ));
    let mut b = a.clone();
    b[3].d_real = f32::from_bits(b[3].d_real.to_bits() + 1); // one ulp
    b[5].g_loss = 9.5;
    match compare_losses(&a, &b) {
        LossComparison::Diverged {
            step,
            column,
            max_diff,
            max_diff_step,
            max_diff_column,
            ..
        } => {
            assert_eq!((step, column), (4, "d_real"));
            assert_eq!((max_diff_step, max_diff_column), (6, "g_loss"));
            assert!((max_diff - 10.0).abs() < 1e-6);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn run_directories_are_never_reused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = RunDir::create(&tmp.path().join("runs/x")).unwrap();
    assert!(dir.samples_dir().is_dir());
    let err = RunDir::create(&tmp.path().join("runs/x"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("already exists"), "{err}");
    let t = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
    let a = RunDir::create_timestamped(&tmp.path().join("runs"), "n", t).unwrap();
    let b = RunDir::create_timestamped(&tmp.path().join("runs"), "n", t).unwrap();
    assert!(
        a.path().ends_with("n-20270115T080000Z"),
        "{}",
        a.path().display()
    );
    assert!(b.path().ends_with("n-20270115T080000Z-2"));
    gan_rundir::write_atomic(&dir.file("f.txt"), b"one").unwrap();
    gan_rundir::write_atomic(&dir.file("f.txt"), b"two").unwrap();
    assert_eq!(std::fs::read(dir.file("f.txt")).unwrap(), b"two");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}
