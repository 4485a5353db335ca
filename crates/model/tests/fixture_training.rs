//! Training on real digits from the committed fixture: the losses of a seeded run are pinned
//! by a snapshot, and a few hundred steps move D the way a GAN's D should move early on.

use gan_data::{fixture_dir, load_training, Batcher};
use gan_model::Step;
use gan_model::{stream, Stream, TrainConfig, Trainer};

fn train(steps: usize, seed: u64) -> Vec<gan_model::StepStats> {
    let (train, _) = load_training(&fixture_dir()).expect("fixture loads");
    let cfg = TrainConfig::tutorial();
    let mut trainer = Trainer::new(cfg.clone(), seed);
    let mut batches =
        Batcher::new(train.len(), cfg.batch_size, stream(seed, Stream::Data)).unwrap();
    (0..steps)
        .map(|_| {
            train
                .images
                .gather_f32(batches.next_batch(), trainer.real_batch_mut());
            trainer.step().expect("finite losses")
        })
        .collect()
}

#[test]
fn seeded_losses_are_pinned() {
    // Four decimals: enough to catch any change to the model, data order, init or optimiser,
    // while a CPU with other SIMD kernels (AVX-512 vs AVX2 sum in another order) agrees to
    // about 1e-6 over these first steps.
    let rows: Vec<String> = train(12, 7)
        .iter()
        .enumerate()
        .map(|(i, s)| {
            format!(
                "{:2} d_loss {:.4} g_loss {:.4} d_real {:.4} d_fake {:.4}",
                i + 1,
                s.d_loss,
                s.g_loss,
                s.d_real,
                s.d_fake
            )
        })
        .collect();
    insta::assert_snapshot!(rows.join("\n"));
}

#[test]
fn a_few_hundred_steps_teach_d_to_tell_real_from_fake() {
    let stats = train(300, 3);
    let mean = |range: std::ops::Range<usize>, f: fn(&gan_model::StepStats) -> f32| {
        stats[range.clone()].iter().map(f).sum::<f32>() / range.len() as f32
    };
    let (real_start, real_end) = (mean(0..10, |s| s.d_real), mean(250..300, |s| s.d_real));
    let (fake_start, fake_end) = (mean(0..10, |s| s.d_fake), mean(250..300, |s| s.d_fake));
    assert!(
        real_end > real_start + 0.1,
        "D(x) {real_start} -> {real_end}"
    );
    assert!(
        fake_end < fake_start - 0.1,
        "D(G(z)) {fake_start} -> {fake_end}"
    );
    // As in the tutorial's printout: D's objective rises from about -1.39 towards 0 and
    // G's falls below its starting -0.69.
    assert!(mean(250..300, |s| s.d_loss) > mean(0..10, |s| s.d_loss));
    assert!(mean(250..300, |s| s.g_loss) < mean(0..10, |s| s.g_loss));
}
