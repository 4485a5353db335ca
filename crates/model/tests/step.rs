//! The training step against the dfdx autograd oracle, hand-computed losses, stability,
//! determinism across thread counts, and checkpoint round trips.

use std::collections::BTreeMap;

use gan_model::checkpoint::{decode_gan, decode_generator, decode_state, encode_gan, encode_state};
use gan_model::mlp::{lockstep, reference};
use gan_model::Step;
use gan_model::{
    stream, Activation, AdamConfig, Gan, Loss, ModelConfig, Output, Stream, TrainConfig,
    TrainError, Trainer, IMAGE_PIXELS,
};
use rand::Rng;
use rand_distr::StandardNormal;

fn config(noise_dim: usize, hidden: usize, batch: usize, g_loss: Loss) -> TrainConfig {
    TrainConfig {
        model: ModelConfig {
            noise_dim,
            g_hidden: vec![hidden],
            d_hidden: vec![hidden],
            init_std: 0.05,
            ..ModelConfig::default()
        },
        batch_size: batch,
        loss: g_loss,
        adam: AdamConfig {
            lr: 0.01,
            ..AdamConfig::default()
        },
        ..TrainConfig::default()
    }
}

/// Deterministic "images" in [0, 1].
fn fill_real(t: &mut Trainer, salt: usize) {
    for (i, v) in t.real_batch_mut().iter_mut().enumerate() {
        *v = ((i * 7919 + salt * 104_729) % 1000) as f32 / 999.0;
    }
}

fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-12);
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(
        worst <= 2e-4 * scale,
        "{what}: max difference {worst} (scale {scale})"
    );
}

#[test]
fn init_matches_the_tutorial() {
    let gan = Gan::init(&ModelConfig::default(), &mut stream(1, Stream::Init));
    let g = &gan.generator;
    assert_eq!(g.sizes, [128, 256, 784]);
    assert_eq!(
        (g.hidden_act, g.output),
        (Activation::Relu, Output::Sigmoid)
    );
    let d = &gan.discriminator;
    assert_eq!(d.sizes, [784, 256, 1]);
    assert_eq!(
        (d.hidden_act, d.output),
        (Activation::Relu, Output::Identity)
    );
    for w in [g.weight(0), g.weight(1), d.weight(0), d.weight(1)] {
        let n = w.len() as f64;
        let mean = w.iter().map(|&v| v as f64).sum::<f64>() / n;
        let std = (w.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
        assert!(mean.abs() < 0.01 * 4.0 / n.sqrt() + 1e-4, "mean {mean}");
        assert!((std - 0.01).abs() < 0.01 * 0.1, "std {std}");
    }
    for b in [g.bias(0), g.bias(1), d.bias(0), d.bias(1)] {
        assert!(b.iter().all(|&v| v == 0.0));
    }
    assert_ne!(
        gan,
        Gan::init(&ModelConfig::default(), &mut stream(2, Stream::Init))
    );
}

#[test]
fn gradients_match_dfdx_autograd() {
    for g_loss in [Loss::NonSaturating, Loss::Minimax] {
        let cfg = config(12, 24, 6, g_loss);
        let seed = 5;
        let mut t = Trainer::new(cfg.clone(), seed);
        fill_real(&mut t, 1);
        let real = t.real_batch_mut().to_vec();
        let before = t.gan().clone();
        let mut noise = stream(seed, Stream::Noise);
        let z: Vec<f32> = (0..6 * 12).map(|_| noise.sample(StandardNormal)).collect();
        let fake = before.generator.generate(&z);

        let stats = t.step().unwrap();
        let (grad_g, grad_d) = t.last_gradients();

        let d_ref = reference::discriminator_step(
            &before.discriminator,
            &real,
            &fake,
            reference::Objective::of(&cfg),
            None,
        );
        assert_close(grad_d, &d_ref.grad, "D gradient");
        assert!(
            (stats.d_loss - d_ref.objective).abs() < 1e-5,
            "{} vs {}",
            stats.d_loss,
            d_ref.objective
        );

        // G's step runs against the D that was just updated.
        let g_ref =
            reference::generator_step(&before.generator, &t.gan().discriminator, &z, g_loss, None);
        assert_close(grad_g, &g_ref.grad, "G gradient");
        assert!(
            (stats.g_loss - g_ref.objective).abs() < 1e-5,
            "{} vs {}",
            stats.g_loss,
            g_ref.objective
        );
    }
}

/// A trainer whose D outputs the constant logit `c` (all weights zero, output bias `c`).
fn constant_d(c: f32, g_loss: Loss) -> Trainer {
    let cfg = TrainConfig {
        adam: AdamConfig {
            lr: 1e-6,
            ..AdamConfig::default()
        },
        ..config(4, 8, 3, g_loss)
    };
    let mut gan = Gan::init(&cfg.model, &mut stream(0, Stream::Init));
    gan.discriminator.params.fill(0.0);
    *gan.discriminator.params.last_mut().unwrap() = c;
    let mut t = Trainer::from_parts(cfg.clone(), gan, 0);
    fill_real(&mut t, 0);
    t
}

fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

#[test]
fn losses_match_hand_computation_even_when_d_saturates() {
    for c in [0.0f32, 3.0, -3.0, 50.0, -50.0, 200.0, -1e4] {
        let s = constant_d(c, Loss::NonSaturating).step().unwrap();
        let c64 = c as f64;
        // log D = -softplus(-c), log(1 - D) = -softplus(c).
        let want_d = -softplus(-c64) - softplus(c64);
        let want_g = -softplus(-c64);
        let tol = |w: f64| 1e-4 * w.abs().max(1.0);
        assert!(s.d_loss.is_finite() && s.g_loss.is_finite(), "c={c}: {s:?}");
        assert!(
            (s.d_loss as f64 - want_d).abs() < tol(want_d),
            "c={c}: d_loss {} want {want_d}",
            s.d_loss
        );
        assert!(
            (s.g_loss as f64 - want_g).abs() < tol(want_g),
            "c={c}: g_loss {} want {want_g}",
            s.g_loss
        );
        let p = 1.0 / (1.0 + (-c64).exp());
        assert!((s.d_real as f64 - p).abs() < 1e-5 && (s.d_fake as f64 - p).abs() < 1e-5);
        let m = constant_d(c, Loss::Minimax).step().unwrap();
        assert!(
            (m.g_loss as f64 - softplus(c64)).abs() < tol(softplus(c64)),
            "c={c}: minimax {}",
            m.g_loss
        );
    }
    let zero = constant_d(0.0, Loss::NonSaturating).step().unwrap();
    assert!((zero.d_loss + 2.0 * std::f32::consts::LN_2).abs() < 1e-5);
}

#[test]
fn a_non_finite_loss_stops_training_with_the_step() {
    let mut t = constant_d(0.0, Loss::NonSaturating);
    t.step().unwrap();
    t.step().unwrap();
    let mut state = t.state();
    state.gan.discriminator.params[0] = f32::NAN;
    let mut broken = Trainer::restore(t.config().clone(), 0, state);
    fill_real(&mut broken, 0);
    match broken.step() {
        Err(TrainError::NonFinite { step, what, .. }) => {
            assert_eq!((step, what), (3, "d_loss"));
        }
        other => panic!("expected an error, got {other:?}"),
    }
    let msg = broken.step().unwrap_err().to_string();
    assert!(msg.contains("step 3"), "{msg}");
}

/// Losses of `steps` steps and the final weights.
fn run(cfg: &TrainConfig, seed: u64, steps: usize) -> (Vec<[u32; 4]>, Gan) {
    let mut t = Trainer::new(cfg.clone(), seed);
    let mut rows = Vec::new();
    for i in 0..steps {
        fill_real(&mut t, i);
        let s = t.step().unwrap();
        rows.push([s.d_loss, s.g_loss, s.d_real, s.d_fake].map(f32::to_bits));
    }
    (rows, t.gan().clone())
}

#[test]
fn results_are_bit_identical_across_runs_and_thread_counts() {
    let cfg = TrainConfig {
        batch_size: 20,
        ..TrainConfig::tutorial()
    };
    let in_pool = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| run(&cfg, 42, 15))
    };
    let one = in_pool(1);
    assert_eq!(one, in_pool(1), "same seed, same thread count");
    assert_eq!(one, in_pool(2), "2 threads");
    assert_eq!(one, in_pool(5), "5 threads");
    assert_ne!(one.0, run(&cfg, 43, 15).0, "another seed differs");
}

#[test]
fn generation_is_identical_across_thread_counts() {
    let gan = Gan::init(&ModelConfig::default(), &mut stream(9, Stream::Init));
    let z: Vec<f32> = {
        let mut r = stream(9, Stream::Eval);
        (0..2500 * 128).map(|_| r.sample(StandardNormal)).collect()
    };
    let in_pool = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| gan.generator.generate(&z))
    };
    let one = in_pool(1);
    assert_eq!(one.len(), 2500 * IMAGE_PIXELS);
    assert!(one == in_pool(2) && one == in_pool(4));
}

#[test]
fn checkpoints_round_trip_and_training_continues_identically() {
    let plain = config(16, 32, 10, Loss::NonSaturating);
    // Dropout adds a stream whose position the checkpoint must carry; two D updates a step
    // and separate learning rates change what a step consumes and how Adam is rebuilt.
    let mut family = config(16, 32, 10, Loss::LeastSquares);
    family.model.d_dropout = 0.3;
    family.model.d_hidden = vec![32, 24];
    family.d_steps = 2;
    family.lr_g = Some(0.002);
    family.g_ema = Some(0.9);
    // Self-conditioned: G's labels drawn in proportion to counts the weights file carries.
    let mut clustered = config(16, 32, 10, Loss::NonSaturating);
    clustered.model.classes = 4;
    clustered.model.label_counts = vec![5, 0, 2, 1];
    for cfg in [plain, family, clustered] {
        continues_identically(cfg);
    }
}

fn continues_identically(cfg: TrainConfig) {
    let mut t = Trainer::new(cfg.clone(), 8);
    for i in 0..7 {
        fill_real(&mut t, i);
        t.step().unwrap();
    }
    let extra = BTreeMap::from([(
        "data_order".to_string(),
        "whatever the caller needs".to_string(),
    )]);
    let bytes = encode_state(&t.state(), &extra);
    let (state, meta) = decode_state(&bytes, cfg.adam).unwrap();
    assert_eq!(meta["data_order"], "whatever the caller needs");
    assert!(decode_gan(&encode_gan(t.gan())).unwrap() == *t.gan());

    // The learning rates come from the spec on restore, everything else from the file.
    let mut resumed = Trainer::restore(cfg.clone(), 8, state);
    assert!(resumed.state() == t.state(), "the state round-trips");
    for i in 7..12 {
        fill_real(&mut t, i);
        fill_real(&mut resumed, i);
        assert_eq!(t.step().unwrap(), resumed.step().unwrap());
    }
    assert!(
        t.state() == resumed.state(),
        "training continues identically"
    );
}

#[test]
fn checkpoint_names_are_pytorchs() {
    let gan = Gan::init(&ModelConfig::default(), &mut stream(1, Stream::Init));
    let bytes = encode_gan(&gan);
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<(String, Vec<usize>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.shape().to_vec()))
        .collect();
    names.sort();
    let want = [
        ("discriminator.0.bias", vec![256]),
        ("discriminator.0.weight", vec![256, 784]),
        ("discriminator.2.bias", vec![1]),
        ("discriminator.2.weight", vec![1, 256]),
        ("generator.0.bias", vec![256]),
        ("generator.0.weight", vec![256, 128]),
        ("generator.2.bias", vec![784]),
        ("generator.2.weight", vec![784, 256]),
    ];
    let want: Vec<(String, Vec<usize>)> = want
        .iter()
        .map(|(n, s)| (n.to_string(), s.clone()))
        .collect();
    assert_eq!(names, want);
    let mut truncated = bytes.clone();
    truncated.truncate(bytes.len() - 10);
    assert!(decode_gan(&truncated).is_err());
}

#[test]
fn filling_the_batch_inside_the_step_changes_nothing() {
    let tutorial = TrainConfig {
        batch_size: 16,
        ..TrainConfig::tutorial()
    };
    let mut conditional = tutorial.clone();
    conditional.model.classes = 10;
    for cfg in [tutorial, conditional] {
        let mut a = Trainer::new(cfg.clone(), 21);
        let mut b = Trainer::new(cfg.clone(), 21);
        let label = |j: usize, i: usize| ((j * 3 + i) % 10) as u8;
        for i in 0..4 {
            fill_real(&mut a, i);
            for (j, l) in a.real_labels_mut().iter_mut().enumerate() {
                *l = label(j, i);
            }
            let sa = a.step().unwrap();
            let sb = b
                .step_with(&mut |real, labels| {
                    for (j, v) in real.iter_mut().enumerate() {
                        *v = ((j * 7919 + i * 104_729) % 1000) as f32 / 999.0;
                    }
                    for (j, l) in labels.iter_mut().enumerate() {
                        *l = label(j, i);
                    }
                })
                .unwrap();
            assert_eq!(sa, sb);
        }
        assert!(a.state() == b.state());
    }
}

#[test]
fn a_generator_alone_loads_from_any_file_with_its_four_tensors() {
    let gan = Gan::init(&ModelConfig::default(), &mut stream(4, Stream::Init));
    assert_eq!(decode_generator(&encode_gan(&gan)).unwrap(), gan.generator);
    // Another program's export: the generator's tensors only, in another order.
    let full = encode_gan(&gan);
    let parsed = safetensors::SafeTensors::deserialize(&full).unwrap();
    let mut only_g: Vec<_> = parsed
        .tensors()
        .into_iter()
        .filter(|(n, _)| n.starts_with("generator."))
        .collect();
    only_g.reverse();
    let bytes = safetensors::tensor::serialize(only_g.iter().map(|(n, v)| (n, v)), &None);
    assert_eq!(decode_generator(&bytes.unwrap()).unwrap(), gan.generator);
    let missing: Vec<_> = only_g
        .into_iter()
        .filter(|(n, _)| n != "generator.2.bias")
        .collect();
    let e = decode_generator(&safetensors::tensor::serialize(missing, &None).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("generator.2.bias"), "{e}");
}

#[test]
fn the_whole_step_in_dfdx_autograd_tracks_the_fast_step() {
    // At the tutorial's sizes on real digits: the same inputs through dfdx's tape (other
    // products, summation orders and loss functions) and the same Adam stay within rounding
    // of the fast step over its first steps (the bound of tests/tf_oracle.rs).
    let (train, _) = gan_data::load_training(&gan_data::fixture_dir()).unwrap();
    let cfg = TrainConfig::tutorial();
    let mut t = Trainer::new(cfg.clone(), 9);
    let mut batches =
        gan_data::Batcher::new(train.len(), cfg.batch_size, stream(9, Stream::Data)).unwrap();
    let rec = lockstep::record(
        &mut t,
        20,
        &mut |real| {
            let indices = batches.next_batch();
            train.images.gather_f32(indices, real);
            indices.to_vec()
        },
        &mut |_| {},
    )
    .unwrap();
    let mut last = None;
    let replayed = lockstep::replay_reference(
        &rec,
        &cfg,
        &mut |indices, real| train.images.gather_f32(indices, real),
        &mut |state| last = Some(state.clone()),
    );
    for (step, (a, b)) in rec.stats.iter().zip(&replayed).enumerate() {
        for (x, y) in [
            (a.d_loss, b.d_loss),
            (a.g_loss, b.g_loss),
            (a.d_real, b.d_real),
            (a.d_fake, b.d_fake),
        ] {
            assert!((x - y).abs() <= 4e-6, "step {}: {a:?} vs {b:?}", step + 1);
        }
    }
    let last = last.unwrap();
    assert_eq!(last.steps_done, 20);
    assert_eq!(last.adam_g.t, 20);
    let (fast, slow) = (t.gan(), &last.gan);
    for (x, y) in [
        (&fast.generator.params, &slow.generator.params),
        (&fast.discriminator.params, &slow.discriminator.params),
    ] {
        let diff: f64 = x
            .iter()
            .zip(y)
            .map(|(a, b)| (a - b) as f64 * (a - b) as f64)
            .sum();
        let norm: f64 = y.iter().map(|b| (*b as f64).powi(2)).sum();
        assert!(
            (diff / norm).sqrt() < 1e-4,
            "weights apart by {}",
            (diff / norm).sqrt()
        );
    }
}

#[test]
fn weights_encode_to_the_same_bytes_every_time() {
    // Several metadata keys (a non-default architecture): safetensors' hash-ordered metadata
    // must not make the bytes depend on the process or the call.
    let cfg = ModelConfig {
        g_hidden: vec![16, 8],
        d_hidden: vec![8],
        g_act: Activation::LeakyRelu(0.2),
        g_output: Output::Tanh,
        ..ModelConfig::default()
    };
    let gan = Gan::init(&cfg, &mut stream(2, Stream::Init));
    let first = encode_gan(&gan);
    for _ in 0..20 {
        assert_eq!(encode_gan(&gan), first);
    }
    let back = decode_gan(&first).unwrap();
    assert_eq!(back, gan, "architecture and weights read back");
    assert_eq!(decode_generator(&first).unwrap(), gan.generator);
}

#[test]
fn the_average_of_gs_weights_follows_training_without_changing_it() {
    let plain = config(16, 32, 10, Loss::NonSaturating);
    let averaged = TrainConfig {
        g_ema: Some(0.9),
        ..plain.clone()
    };
    let (mut a, mut b) = (Trainer::new(plain, 3), Trainer::new(averaged.clone(), 3));
    // The average starts at G's initial weights and takes each update's weights in turn,
    // computed here in f64.
    let mut want: Vec<f64> = b.gan().generator.params.iter().map(|&p| p as f64).collect();
    assert!(b.sampling_generator() == b.gan().generator);
    for i in 0..20 {
        fill_real(&mut a, i);
        fill_real(&mut b, i);
        assert_eq!(
            a.step().unwrap(),
            b.step().unwrap(),
            "training is unchanged"
        );
        for (w, &p) in want.iter_mut().zip(&b.gan().generator.params) {
            *w = 0.9 * *w + 0.1 * p as f64;
        }
    }
    assert!(a.gan() == b.gan());
    let got = &b.sampling_generator().params;
    let worst = got
        .iter()
        .zip(&want)
        .map(|(&g, &w)| (g as f64 - w).abs())
        .fold(0.0, f64::max);
    assert!(worst < 1e-6, "average off by {worst}");
    assert!(b.sampling_generator().params != b.gan().generator.params);
    // The saved model is D and the average; a checkpoint without the average cannot continue
    // under a spec that keeps one, nor the other way round.
    assert!(b.model_to_save().generator == b.sampling_generator());
    let without = a.state();
    assert!(without
        .check_fits(&averaged)
        .unwrap_err()
        .contains("train.g_ema"));
    assert!(b
        .state()
        .check_fits(&config(16, 32, 10, Loss::NonSaturating))
        .is_err());
}
