//! One training step at the tutorial's sizes (batch 100, noise 128, hidden 256) on real
//! MNIST digits from the committed fixture, at 1 and 2 threads; and, for scale, the same
//! gradients computed by plain dfdx autograd (`gan_model::mlp::reference`, not used in training).
//!
//! `cargo bench -p gan-model --bench train_step`. For the figure to compare with the Python
//! peers use `cargo xtask bench`, which times whole steps the way `peers.sh` does.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use gan_data::{fixture_dir, load_training, Batcher};
use gan_model::mlp::reference;
use gan_model::Step;
use gan_model::{stream, Stream, TrainConfig, Trainer};

fn step(c: &mut Criterion) {
    let (train, _) = load_training(&fixture_dir()).expect("fixture loads");
    let cfg = TrainConfig::tutorial();
    let mut group = c.benchmark_group("train_step");
    group.sample_size(50);
    for threads in [1, 2] {
        // Flushed as a run's training threads are by default (`train.flush_denormals`).
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .start_handler(|_| {
                gan_model::flush_denormals();
            })
            .build()
            .unwrap();
        let mut trainer = Trainer::new(cfg.clone(), 1);
        let mut batches =
            Batcher::new(train.len(), cfg.batch_size, stream(1, Stream::Data)).unwrap();
        group.bench_function(format!("fused/{threads}_threads"), |b| {
            b.iter(|| {
                pool.install(|| {
                    let indices = batches.next_batch();
                    let images = &train.images;
                    trainer
                        .step_with(&mut |real, _| images.gather_f32(indices, real))
                        .expect("finite losses")
                })
            })
        });
    }
    let trainer = Trainer::new(cfg.clone(), 1);
    let gan = trainer.gan().clone();
    let mut batches = Batcher::new(train.len(), cfg.batch_size, stream(1, Stream::Data)).unwrap();
    let mut noise = stream(1, Stream::Noise);
    group.sample_size(20);
    group.bench_function("dfdx_autograd_gradients", |b| {
        b.iter_batched(
            || {
                let mut real = vec![0.0; cfg.batch_size * 784];
                train.images.gather_f32(batches.next_batch(), &mut real);
                let z = gan_model::train::input::sample_noise(cfg.batch_size, 128, &mut noise);
                (real, z)
            },
            |(real, z)| {
                let fake = gan.generator.generate(&z);
                let objective = reference::Objective::of(&cfg);
                let d = reference::discriminator_step(
                    &gan.discriminator,
                    &real,
                    &fake,
                    objective,
                    None,
                );
                let g = reference::generator_step(
                    &gan.generator,
                    &gan.discriminator,
                    &z,
                    cfg.loss,
                    None,
                );
                (d.objective, g.objective)
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, step);
criterion_main!(benches);
