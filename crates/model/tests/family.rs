//! The step of every member of the MLP family against dfdx autograd, at realistic sizes
//! (hidden layers of at least 128 units, so every block path of the kernels runs; batch 100)
//! and after 30 training steps, not only at initialisation: each network's gradients match
//! dfdx's, and each parameter update matches an independent Adam (TensorFlow 1's rule in f64)
//! applied to dfdx's gradients.

use gan_model::mlp::reference;
use gan_model::Step;
use gan_model::{
    stream, Activation, AdamConfig, Gan, Loss, ModelConfig, Output, Stream, TrainConfig, Trainer,
    TrainerState, IMAGE_PIXELS,
};
use rand::Rng;
use rand_distr::StandardNormal;

mod common;
use common::rel_max_diff;

/// Deterministic "images" in [0, 1] and labels for step `salt`.
fn fill_real(t: &mut Trainer, salt: usize) {
    let mut rng = stream(salt as u64, Stream::Eval);
    for v in t.real_batch_mut().iter_mut() {
        *v = rng.gen::<f32>();
    }
    for l in t.real_labels_mut().iter_mut() {
        *l = rng.gen_range(0..10);
    }
}

/// One Adam update (TensorFlow 1's: epsilon outside the bias correction) in f64, from the
/// optimiser state before it: the parameters after it.
fn independent_adam(p: &[f32], g: &[f32], m: &[f32], v: &[f32], t: u64, c: AdamConfig) -> Vec<f32> {
    let (b1, b2) = (c.beta1 as f64, c.beta2 as f64);
    let t = (t + 1) as f64;
    let lr_t = c.lr as f64 * (1.0 - b2.powf(t)).sqrt() / (1.0 - b1.powf(t));
    p.iter()
        .zip(g)
        .zip(m.iter().zip(v))
        .map(|((&p, &g), (&m, &v))| {
            let (g, m, v) = (g as f64, m as f64, v as f64);
            let m = b1 * m + (1.0 - b1) * g;
            let v = b2 * v + (1.0 - b2) * g * g;
            (p as f64 - lr_t * m / (v.sqrt() + c.eps as f64)) as f32
        })
        .collect()
}

/// Relative L2 difference of two updates from the same parameters.
fn update_diff(before: &[f32], got: &[f32], want: &[f32]) -> f64 {
    let (mut d, mut n) = (0.0f64, 0.0f64);
    for ((&p0, &a), &b) in before.iter().zip(got).zip(want) {
        let (da, db) = (a as f64 - p0 as f64, b as f64 - p0 as f64);
        d += (da - db) * (da - db);
        n += db * db;
    }
    (d / n.max(1e-300)).sqrt()
}

/// The learning rates the spec keys mean: `lr_g` / `lr_d` when given, else `lr`.
fn adam_of(cfg: &TrainConfig, own: Option<f32>) -> AdamConfig {
    AdamConfig {
        lr: own.unwrap_or(cfg.adam.lr),
        ..cfg.adam
    }
}

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() <= 1e-5 * b.abs().max(1.0)
}

/// One network's step against dfdx: its gradient (relative to the largest entry) and its
/// reported objective, then its update against an independent Adam applied to dfdx's
/// gradient from the optimiser state `adam` before the step.
fn agrees(
    what: &str,
    (grad, objective): (&[f32], f32),
    want: &reference::LossAndGrad,
    adam: &gan_model::optim::adam::Adam,
    cfg: AdamConfig,
    (params_before, params_after): (&[f32], &[f32]),
) {
    let e = rel_max_diff(grad, &want.grad);
    assert!(
        e < 2e-4,
        "{what} gradient off by {e:.1e} of its largest entry"
    );
    assert!(
        close(objective, want.objective),
        "{what} loss {objective} vs {}",
        want.objective
    );
    let expected = independent_adam(params_before, &want.grad, &adam.m, &adam.v, adam.t, cfg);
    let u = update_diff(params_before, params_after, &expected);
    assert!(u < 1e-3, "{what}'s update off by {u:.1e}");
}

fn check(name: &str, cfg: TrainConfig) {
    assert_eq!(
        cfg.d_steps, 1,
        "the step's D update is compared from the step's start"
    );
    let mut t = Trainer::new(cfg.clone(), 17);
    for i in 0..30 {
        fill_real(&mut t, i);
        t.step().expect("finite losses");
    }
    let before: TrainerState<Gan> = t.state();
    fill_real(&mut t, 1000);
    let stats = t.step().unwrap();
    // What D saw (a tanh generator's real images are mapped to [-1, 1] by the step).
    let b = cfg.batch_size;
    let classes = cfg.model.classes;
    let d_in = IMAGE_PIXELS + classes;
    let real = t.last_d_input()[..b * d_in].to_vec();
    let z = t.last_noise().to_vec();
    if classes > 0 {
        // D saw each real image beside its own label, and each fake beside the label G was
        // given, as one-hot columns after the pixels.
        let labels = t.real_labels_mut().to_vec();
        for (row, &label) in real.chunks_exact(d_in).zip(&labels) {
            let hot: Vec<f32> = (0..classes)
                .map(|c| (c == label as usize) as u8 as f32)
                .collect();
            assert_eq!(row[IMAGE_PIXELS..], hot[..], "{name}: real label columns");
        }
        let fake_rows = &t.last_d_input()[b * d_in..];
        let width = cfg.model.noise_dim + classes;
        let mut counts = vec![0; classes];
        for (row, zr) in fake_rows.chunks_exact(d_in).zip(z.chunks_exact(width)) {
            assert_eq!(
                row[IMAGE_PIXELS..],
                zr[width - classes..],
                "{name}: fake labels"
            );
            assert_eq!(
                zr[width - classes..].iter().sum::<f32>(),
                1.0,
                "{name}: one-hot"
            );
            counts[zr[width - classes..]
                .iter()
                .position(|&v| v == 1.0)
                .unwrap()] += 1;
        }
        assert!(
            counts.iter().all(|&c| c > 0),
            "{name}: G asked for every digit: {counts:?}"
        );
    }
    let (grad_g, grad_d) = (t.last_gradients().0.to_vec(), t.last_gradients().1.to_vec());
    let (d_masks, g_masks) = t.last_dropout_masks();
    let (d_masks, g_masks) = (d_masks.to_vec(), g_masks.to_vec());
    let masks = |m: &[Vec<f32>]| -> Option<Vec<Vec<f32>>> { (!m.is_empty()).then(|| m.to_vec()) };
    let (d_masks, g_masks) = (masks(&d_masks), masks(&g_masks));
    if let Some(m) = &d_masks {
        // The masks are dropout's: 0 or 1 / keep, about the asked share dropped, fresh in G's update.
        let keep = 1.0 - cfg.model.d_dropout;
        let all: Vec<f32> = m.iter().flatten().copied().collect();
        assert!(
            all.iter().all(|&v| v == 0.0 || v == 1.0 / keep),
            "{name}: mask values"
        );
        let dropped = all.iter().filter(|&&v| v == 0.0).count() as f64 / all.len() as f64;
        assert!(
            (dropped - cfg.model.d_dropout as f64).abs() < 0.01,
            "{name}: dropped {dropped}"
        );
        let g = g_masks.as_ref().expect("G's update has masks too");
        assert_ne!(
            g[0][..],
            m[0][..g[0].len()],
            "{name}: G's update draws its own masks"
        );
    }
    let after = t.state();

    // D: gradients on the real batch and G(z) before the step, then one Adam update.
    let g0 = &before.gan.generator;
    let fake = reference::fake_rows(g0, &z);
    let d_ref = reference::discriminator_step(
        &before.gan.discriminator,
        &real,
        &fake,
        reference::Objective::of(&cfg),
        d_masks.as_deref(),
    );
    agrees(
        &format!("{name}: D"),
        (&grad_d, stats.d_loss),
        &d_ref,
        &before.adam_d,
        adam_of(&cfg, cfg.lr_d),
        (
            &before.gan.discriminator.params,
            &after.gan.discriminator.params,
        ),
    );

    // G: gradients against the updated D, then one Adam update.
    let g_ref = reference::generator_step(
        g0,
        &after.gan.discriminator,
        &z,
        cfg.loss,
        g_masks.as_deref(),
    );
    agrees(
        &format!("{name}: G"),
        (&grad_g, stats.g_loss),
        &g_ref,
        &before.adam_g,
        adam_of(&cfg, cfg.lr_g),
        (&g0.params, &after.gan.generator.params),
    );
}

fn config(model: ModelConfig, loss: Loss) -> TrainConfig {
    TrainConfig {
        model,
        batch_size: 100,
        loss,
        // A larger step than the tutorial's, so 30 steps move the networks well away from init.
        adam: AdamConfig {
            lr: 0.002,
            ..AdamConfig::default()
        },
        ..TrainConfig::default()
    }
}

#[test]
fn the_tutorials_networks() {
    check(
        "tutorial",
        config(ModelConfig::default(), Loss::NonSaturating),
    );
}

#[test]
fn deeper_networks_with_leaky_relu_and_a_tanh_output() {
    let model = ModelConfig {
        g_hidden: vec![128, 256],
        d_hidden: vec![256, 128],
        g_act: Activation::LeakyRelu(0.2),
        d_act: Activation::LeakyRelu(0.2),
        g_output: Output::Tanh,
        init_std: 0.05,
        ..ModelConfig::default()
    };
    check(
        "deep leaky tanh",
        config(model.clone(), Loss::NonSaturating),
    );
    // Minimax at the tutorial's learning rate: at 0.002 D rejects every fake after 30 steps
    // (D(G(z)) about 6e-7), the loss's known vanishing gradient, and G's gradients (about
    // 1e-8) are below what f32 resolves; there both programs are right and differ by 1e-2.
    let mut minimax = config(model, Loss::Minimax);
    minimax.adam.lr = 0.0002;
    check("deep leaky tanh minimax", minimax);
}

#[test]
fn tanh_hidden_layers_and_three_deep() {
    let model = ModelConfig {
        g_hidden: vec![128, 128, 256],
        d_hidden: vec![128],
        g_act: Activation::Tanh,
        d_act: Activation::Tanh,
        init_std: 0.05,
        ..ModelConfig::default()
    };
    check("tanh", config(model, Loss::NonSaturating));
}

#[test]
fn networks_without_hidden_layers() {
    // D a logistic regression, G a single linear layer: the 0-depth paths of the step.
    let model = ModelConfig {
        g_hidden: vec![],
        d_hidden: vec![],
        init_std: 0.05,
        ..ModelConfig::default()
    };
    check("no hidden layers", config(model, Loss::NonSaturating));
    let mixed = ModelConfig {
        g_hidden: vec![],
        d_hidden: vec![256],
        g_output: Output::Tanh,
        ..ModelConfig::default()
    };
    check("linear G", config(mixed, Loss::Minimax));
}

/// The deep leaky network the GAN literature's MLPs use, with dropout in D.
fn deep_leaky(d_dropout: f32) -> ModelConfig {
    ModelConfig {
        g_hidden: vec![128, 256],
        d_hidden: vec![256, 128],
        g_act: Activation::LeakyRelu(0.2),
        d_act: Activation::LeakyRelu(0.2),
        g_output: Output::Tanh,
        init_std: 0.05,
        d_dropout,
        ..ModelConfig::default()
    }
}

#[test]
fn least_squares_and_hinge_losses() {
    for loss in [Loss::LeastSquares, Loss::Hinge] {
        check(&format!("{loss:?}"), config(deep_leaky(0.0), loss));
    }
    // The tutorial's single layers and sigmoid output too.
    check(
        "least squares, tutorial networks",
        config(ModelConfig::default(), Loss::LeastSquares),
    );
}

#[test]
fn dropout_in_d_with_fixed_masks() {
    check(
        "dropout leaky",
        config(deep_leaky(0.3), Loss::NonSaturating),
    );
    // ReLU's and tanh's derivatives through a mask, and one hidden layer.
    let relu = ModelConfig {
        d_dropout: 0.5,
        init_std: 0.05,
        ..ModelConfig::default()
    };
    check("dropout relu", config(relu, Loss::Hinge));
    let tanh = ModelConfig {
        d_act: Activation::Tanh,
        d_hidden: vec![256, 128, 128],
        ..deep_leaky(0.2)
    };
    check("dropout tanh", config(tanh, Loss::LeastSquares));
}

#[test]
fn label_smoothing_and_separate_learning_rates() {
    for loss in [Loss::NonSaturating, Loss::LeastSquares] {
        let mut cfg = config(deep_leaky(0.0), loss);
        cfg.real_target = 0.9;
        cfg.lr_g = Some(0.001);
        cfg.lr_d = Some(0.0004);
        check(&format!("smoothed {loss:?}"), cfg);
    }
}

#[test]
fn several_d_updates_per_step_follow_algorithm_1() {
    // Three D updates, each on its own real batch and its own noise from the noise stream,
    // then G with the last noise: the fast step against the same sequence in dfdx autograd
    // with this crate's Adam, over 4 steps (12 D updates) at different learning rates.
    let mut cfg = config(deep_leaky(0.0), Loss::NonSaturating);
    cfg.d_steps = 3;
    cfg.lr_g = Some(0.001);
    cfg.lr_d = Some(0.0004);
    let seed = 23;
    let mut t = Trainer::new(cfg.clone(), seed);
    let mut state = t.state();
    state.adam_g.cfg.lr = 0.001;
    state.adam_d.cfg.lr = 0.0004;
    let mut noise = stream(seed, Stream::Noise);
    let z_len = cfg.batch_size * cfg.model.noise_dim;
    let mut batch = 0;
    for step in 0..4 {
        let mut reals = Vec::new();
        let got = t
            .step_with(&mut |real, _| {
                let mut rng = stream(batch as u64, Stream::Eval);
                for v in real.iter_mut() {
                    *v = rng.gen::<f32>();
                }
                reals.push(real.iter().map(|v| 2.0 * v - 1.0).collect::<Vec<f32>>());
                batch += 1;
            })
            .unwrap();
        assert_eq!(reals.len(), 3, "one real batch per D update");
        let zs: Vec<Vec<f32>> = (0..3)
            .map(|_| (0..z_len).map(|_| noise.sample(StandardNormal)).collect())
            .collect();
        let pairs: Vec<(&[f32], &[f32])> = reals
            .iter()
            .zip(&zs)
            .map(|(r, z)| (&r[..], &z[..]))
            .collect();
        let want = reference::train_step(&mut state, &pairs, &cfg);
        for (a, b, what) in [
            (got.d_loss, want.d_loss, "d_loss"),
            (got.g_loss, want.g_loss, "g_loss"),
            (got.d_real, want.d_real, "d_real"),
            (got.d_fake, want.d_fake, "d_fake"),
        ] {
            assert!((a - b).abs() < 1e-4, "step {step}: {what} {a} vs {b}");
        }
    }
    let now = t.state();
    assert_eq!((now.adam_d.t, now.adam_g.t), (12, 4));
    for (got, want, what) in [
        (&now.gan.generator.params, &state.gan.generator.params, "G"),
        (
            &now.gan.discriminator.params,
            &state.gan.discriminator.params,
            "D",
        ),
    ] {
        let e = rel_max_diff(got, want);
        assert!(e < 1e-3, "{what}'s weights after 4 steps off by {e:.1e}");
    }
}

#[test]
fn conditional_networks() {
    // The label as one-hot inputs of both networks: G's first layer takes noise + 10, D's
    // 784 + 10, with dropout and the tutorial's single layers as well as deeper ones.
    let deep = ModelConfig {
        classes: 10,
        ..deep_leaky(0.3)
    };
    check("conditional deep", config(deep, Loss::NonSaturating));
    let tutorial = ModelConfig {
        classes: 10,
        init_std: 0.05,
        ..ModelConfig::default()
    };
    check("conditional tutorial", config(tutorial, Loss::LeastSquares));
    let flat = ModelConfig {
        classes: 10,
        g_hidden: vec![],
        d_hidden: vec![],
        init_std: 0.05,
        ..ModelConfig::default()
    };
    check("conditional, no hidden layers", config(flat, Loss::Hinge));
}
