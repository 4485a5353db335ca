//! The step of every member of the MLP family against dfdx autograd, at realistic sizes
//! (hidden layers of at least 128 units, so every block path of the kernels runs; batch 100)
//! and after 30 training steps, not only at initialisation: each network's gradients match
//! dfdx's, and each parameter update matches an independent Adam (TensorFlow 1's rule in f64)
//! applied to dfdx's gradients.

use gan_model::{
    reference, stream, Activation, AdamConfig, GeneratorLoss, ModelConfig, Output, Stream,
    TrainConfig, Trainer, TrainerState,
};
use rand::Rng;

/// Deterministic "images" in [0, 1] for step `salt`.
fn fill_real(t: &mut Trainer, salt: usize) {
    let mut rng = stream(salt as u64, Stream::Eval);
    for v in t.real_batch_mut().iter_mut() {
        *v = rng.gen::<f32>();
    }
}

/// `max |got - want|` relative to `max |want|`.
fn rel_max_diff(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len());
    let scale = want
        .iter()
        .fold(0.0f64, |m, &v| m.max(v.abs() as f64))
        .max(1e-30);
    let worst = got
        .iter()
        .zip(want)
        .map(|(&a, &b)| (a as f64 - b as f64).abs())
        .fold(0.0, f64::max);
    worst / scale
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

fn check(name: &str, cfg: TrainConfig) {
    let mut t = Trainer::new(cfg.clone(), 17);
    for i in 0..30 {
        fill_real(&mut t, i);
        t.step().expect("finite losses");
    }
    let before: TrainerState = t.state();
    fill_real(&mut t, 1000);
    let stats = t.step().unwrap();
    // What D saw (a tanh generator's real images are mapped to [-1, 1] by the step).
    let real = t.real_batch_mut().to_vec();
    let z = t.last_noise().to_vec();
    let (grad_g, grad_d) = (t.last_gradients().0.to_vec(), t.last_gradients().1.to_vec());
    let after = t.state();

    // D: gradients on the real batch and G(z) before the step, then one Adam update.
    let g0 = &before.gan.generator;
    let fake = reference::raw_output(g0, &z);
    let d_ref = reference::discriminator_step(&before.gan.discriminator, &real, &fake);
    let e = rel_max_diff(&grad_d, &d_ref.grad);
    assert!(
        e < 2e-4,
        "{name}: D gradient off by {e:.1e} of its largest entry"
    );
    assert!(
        (d_ref.objective - stats.d_loss).abs() < 1e-5,
        "{name}: d_loss"
    );
    let ad = &before.adam_d;
    let d_want = independent_adam(
        &before.gan.discriminator.params,
        &d_ref.grad,
        &ad.m,
        &ad.v,
        ad.t,
        cfg.adam,
    );
    let u = update_diff(
        &before.gan.discriminator.params,
        &after.gan.discriminator.params,
        &d_want,
    );
    assert!(u < 1e-3, "{name}: D's update off by {u:.1e}");

    // G: gradients against the updated D, then one Adam update.
    let g_ref = reference::generator_step(g0, &after.gan.discriminator, &z, cfg.g_loss);
    let e = rel_max_diff(&grad_g, &g_ref.grad);
    assert!(
        e < 2e-4,
        "{name}: G gradient off by {e:.1e} of its largest entry"
    );
    assert!(
        (g_ref.objective - stats.g_loss).abs() < 1e-5,
        "{name}: g_loss"
    );
    let ag = &before.adam_g;
    let g_want = independent_adam(&g0.params, &g_ref.grad, &ag.m, &ag.v, ag.t, cfg.adam);
    let u = update_diff(&g0.params, &after.gan.generator.params, &g_want);
    assert!(u < 1e-3, "{name}: G's update off by {u:.1e}");
}

fn config(model: ModelConfig, g_loss: GeneratorLoss) -> TrainConfig {
    TrainConfig {
        model,
        batch_size: 100,
        g_loss,
        // A larger step than the tutorial's, so 30 steps move the networks well away from init.
        adam: AdamConfig {
            lr: 0.002,
            ..AdamConfig::default()
        },
    }
}

#[test]
fn the_tutorials_networks() {
    check(
        "tutorial",
        config(ModelConfig::default(), GeneratorLoss::NonSaturating),
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
        config(model.clone(), GeneratorLoss::NonSaturating),
    );
    // Minimax at the tutorial's learning rate: at 0.002 D rejects every fake after 30 steps
    // (D(G(z)) about 6e-7), the loss's known vanishing gradient, and G's gradients (about
    // 1e-8) are below what f32 resolves; there both programs are right and differ by 1e-2.
    let mut minimax = config(model, GeneratorLoss::Minimax);
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
    check("tanh", config(model, GeneratorLoss::NonSaturating));
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
    check(
        "no hidden layers",
        config(model, GeneratorLoss::NonSaturating),
    );
    let mixed = ModelConfig {
        g_hidden: vec![],
        d_hidden: vec![256],
        g_output: Output::Tanh,
        ..ModelConfig::default()
    };
    check("linear G", config(mixed, GeneratorLoss::Minimax));
}
