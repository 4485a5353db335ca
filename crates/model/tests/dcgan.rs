//! The DCGAN step against PyTorch's autograd: three steps of both networks from the same
//! weights, noise and images (`tools/oracle/dcgan_fixture.py` wrote the fixture; its layers
//! are checked at full DCGAN sizes in `tests/conv.rs`), and its determinism at any thread
//! count.

use std::collections::BTreeMap;

use gan_model::checkpoint;
use gan_model::dcgan::{Dcgan, DcganTrainer};
use gan_model::train::input::generator_input;
use gan_model::Step;
use gan_model::{
    Activation, AdamConfig, AnyState, Arch, DcganShape, Model, ModelConfig, Output, TrainConfig,
};

mod common;
use common::{det, rel_max_diff};

const FIXTURE: &[u8] = include_bytes!("fixtures/dcgan_oracle.safetensors");
/// The same steps with `--no-d-batch-norm`: D's second convolution has a bias instead.
const FIXTURE_NO_BN: &[u8] = include_bytes!("fixtures/dcgan_oracle_no_bn.safetensors");
/// The same steps with `--d-dropout`: dropout 0.3 after D's activations, the masks stored.
const FIXTURE_DROPOUT: &[u8] = include_bytes!("fixtures/dcgan_oracle_dropout.safetensors");
/// The same steps with `--d-dense`: a dense layer of `DENSE` units before D's logit.
const FIXTURE_DENSE: &[u8] = include_bytes!("fixtures/dcgan_oracle_dense.safetensors");
const DENSE: usize = 24;
/// The same steps with `--conditional`: a conditional GAN over `CLASSES` digits (G's noise
/// rows end in the label one-hot, D projects its features on the label's embedding), with
/// D's dense layer.
const FIXTURE_CONDITIONAL: &[u8] = include_bytes!("fixtures/dcgan_oracle_conditional.safetensors");
const CLASSES: usize = 10;
/// The fixture's dropout probability with `--d-dropout`.
const DROPOUT: f32 = 0.3;
const NOISE: usize = 32;
const BATCH: usize = 16;
const PIXELS: usize = 28 * 28;
/// How far the weights' change may be from PyTorch's, relative to its largest entry.
const UPDATE_TOLERANCE: f64 = 1e-2;

/// The fixture's model and optimiser: DCGAN's activations and Adam(2e-4, 0.5, 0.999).
fn config() -> (TrainConfig, DcganShape) {
    config_with(true)
}

fn config_with(d_batch_norm: bool) -> (TrainConfig, DcganShape) {
    config_of(d_batch_norm, 0)
}

/// The fixture's model, D normalised or not, with a dense layer of `d_dense` units or none.
fn config_of(d_batch_norm: bool, d_dense: usize) -> (TrainConfig, DcganShape) {
    let cfg = TrainConfig {
        model: ModelConfig {
            noise_dim: NOISE,
            g_act: Activation::Relu,
            d_act: Activation::LeakyRelu(0.2),
            g_output: Output::Tanh,
            init_std: 0.02,
            ..ModelConfig::default()
        },
        batch_size: BATCH,
        adam: AdamConfig {
            lr: 2e-4,
            beta1: 0.5,
            ..AdamConfig::default()
        },
        ..TrainConfig::default()
    };
    let shape = DcganShape {
        g_channels: [32, 16],
        d_channels: [16, 32],
        d_batch_norm,
        d_dense,
    };
    (cfg, shape)
}

/// The fixture's starting weights: every tensor from `det`, salts in buffer order.
fn fixture_gan(cfg: &TrainConfig, shape: &DcganShape) -> Dcgan {
    let mut gan = Dcgan::zeros(cfg, shape);
    let fill = |slots: Vec<gan_model::ParamSlot>, params: &mut [f32], base: usize| {
        for (i, s) in slots.into_iter().enumerate() {
            let (scale, offset) = if s.name.starts_with("bn") && s.name.ends_with("weight") {
                (0.1, 1.0)
            } else {
                (0.05, 0.0)
            };
            params[s.range.clone()].copy_from_slice(&det(s.range.len(), base + i, scale, offset));
        }
    };
    let g = &mut gan.generator;
    fill(g.slots(), &mut g.params, 100);
    let d = &mut gan.discriminator;
    fill(d.slots(), &mut d.params, 200);
    gan
}

/// The fixture's conditional variant: `config_of(true, DENSE)` over `CLASSES` digits.
fn config_conditional() -> (TrainConfig, DcganShape) {
    let (mut cfg, shape) = config_of(true, DENSE);
    cfg.model.classes = CLASSES;
    (cfg, shape)
}

/// The labels of step `step`'s real and fake images as `dcgan_fixture.py --conditional`
/// makes them (the test checks them against the ones it stored).
fn fixture_labels(step: usize) -> (Vec<u8>, Vec<u8>) {
    let label = |i: usize, k: usize, s: usize| ((i * k + s) % CLASSES) as u8;
    (
        (0..BATCH).map(|i| label(i, 7, step)).collect(),
        (0..BATCH).map(|i| label(i, 3, 2 * step + 5)).collect(),
    )
}

/// What each step gave: `[d_loss, g_loss, D(x), D(G(z))]` and the gradients `(G's, D's)`.
struct Trace {
    stats: Vec<[f32; 4]>,
    grads: Vec<(Vec<f32>, Vec<f32>)>,
}

/// Runs `steps` of the fixture's steps, D normalised or not; with `masks` (one per step),
/// with dropout in D and those masks.
fn run_with(d_batch_norm: bool, masks: Option<&[Vec<f32>]>, steps: usize) -> (DcganTrainer, Trace) {
    run_variant(config_with(d_batch_norm), masks, steps)
}

fn run_variant(
    (mut cfg, shape): (TrainConfig, DcganShape),
    masks: Option<&[Vec<f32>]>,
    steps: usize,
) -> (DcganTrainer, Trace) {
    if masks.is_some() {
        cfg.model.d_dropout = DROPOUT;
    }
    let gan = fixture_gan(&cfg, &shape);
    let mut t = DcganTrainer::from_parts(cfg, gan, 0);
    let (mut stats, mut grads) = (Vec::new(), Vec::new());
    let classes = t.config().model.classes;
    for step in 1..=steps {
        let noise = det(BATCH * NOISE, 400 + step, 1.0, 0.0);
        let (real_labels, fake_labels) = fixture_labels(step);
        // A conditional G's rows end in the label one-hot (from which D's labels come).
        let z = generator_input(&noise, &fake_labels, classes);
        let real = det(BATCH * PIXELS, 300 + step, 0.5, 0.5);
        let fill = &mut |px: &mut [f32], labels: &mut [u8]| {
            px.copy_from_slice(&real);
            labels.copy_from_slice(&real_labels);
        };
        let s = match masks {
            Some(m) => t.step_with_noise_and_masks(&z, &m[step - 1], fill),
            None => t.step_with_noise(&z, fill),
        }
        .expect("finite losses");
        stats.push([s.d_loss, s.g_loss, s.d_real, s.d_fake]);
        let (g, d) = t.last_gradients();
        grads.push((g.to_vec(), d.to_vec()));
    }
    (t, Trace { stats, grads })
}

fn check(what: &str, got: &[f32], want: &[f32], tolerance: f64) {
    let e = rel_max_diff(got, want);
    assert!(e < tolerance, "{what}: off by {e:.1e} of its largest entry");
}

#[test]
fn three_steps_match_pytorch() {
    three_steps_match(FIXTURE, config_with(true), false);
}

#[test]
fn three_steps_without_batch_normalisation_in_d_match_pytorch() {
    three_steps_match(FIXTURE_NO_BN, config_with(false), false);
}

#[test]
fn three_steps_with_dropout_in_d_match_pytorch() {
    three_steps_match(FIXTURE_DROPOUT, config_with(true), true);
}

#[test]
fn three_steps_with_a_dense_layer_in_d_match_pytorch() {
    three_steps_match(FIXTURE_DENSE, config_of(true, DENSE), false);
}

#[test]
fn three_conditional_steps_match_pytorch() {
    let f: BTreeMap<String, Vec<f32>> = common::f32_tensors(FIXTURE_CONDITIONAL);
    for step in 1..=3 {
        let (real, fake) = fixture_labels(step);
        let stored = |k: &str| -> Vec<u8> {
            f[&format!("step{step}.{k}")]
                .iter()
                .map(|&v| v as u8)
                .collect()
        };
        assert_eq!((stored("real_labels"), stored("fake_labels")), (real, fake));
    }
    three_steps_match(FIXTURE_CONDITIONAL, config_conditional(), false);
}

/// An averaged G's batch-normalisation statistics ("standing statistics": the mean over
/// batches of the training-mode statistics) as PyTorch's `momentum=None` keeps them, for
/// the fixture's final G and four batches of noise.
#[test]
fn standing_statistics_match_pytorch() {
    let f: BTreeMap<String, Vec<f32>> = common::f32_tensors(FIXTURE_DROPOUT);
    let (cfg, shape) = config();
    let mut g = fixture_gan(&cfg, &shape).generator;
    for slot in g.slots() {
        let key = format!("final.generator.{}", slot.name);
        g.params[slot.range.clone()].copy_from_slice(&f[&key]);
    }
    let z: Vec<f32> = (0..4)
        .flat_map(|i| det(BATCH * NOISE, 700 + i, 1.0, 0.0))
        .collect();
    let before = g.running.clone();
    g.standing_statistics(&z, BATCH);
    assert_ne!(g.running, before);
    for slot in g.running_slots() {
        let key = format!("standing.generator.{}", slot.name);
        check(&key, &g.running[slot.range.clone()], &f[&key], 1e-5);
    }
}

/// The fixture's dropout masks of each step, in the order the step draws them, made as
/// `dcgan_fixture.py` makes them (a unit is dropped where `det` is below the probability);
/// checked against the number of kept units it stored.
fn fixture_masks(f: &BTreeMap<String, Vec<f32>>, steps: usize) -> Vec<Vec<f32>> {
    let (_, shape) = config();
    let widths = [shape.d_channels[0] * 14 * 14, shape.d_channels[1] * 7 * 7];
    let keep = 1.0f32 / (1.0 - DROPOUT);
    let layers = |rows: usize, salt: usize| -> Vec<f32> {
        let mut m = Vec::new();
        for (i, &w) in widths.iter().enumerate() {
            let u = det(rows * w, salt + i, 0.5, 0.5);
            m.extend(u.iter().map(|&v| if v < DROPOUT { 0.0 } else { keep }));
        }
        m
    };
    (1..=steps)
        .map(|s| {
            let mut m = layers(2 * BATCH, 600 + 10 * s);
            m.extend(layers(BATCH, 605 + 10 * s));
            let kept = m.iter().filter(|&&v| v != 0.0).count() as f32;
            assert_eq!(
                kept,
                f[&format!("step{s}.masks_kept")][0],
                "step {s}'s masks"
            );
            m
        })
        .collect()
}

fn three_steps_match(fixture: &[u8], variant: (TrainConfig, DcganShape), dropout: bool) {
    let f: BTreeMap<String, Vec<f32>> = common::f32_tensors(fixture);
    let masks = dropout.then(|| fixture_masks(&f, 3));
    if let Some(m) = &masks {
        let dropped = m.iter().flatten().filter(|&&v| v == 0.0).count() as f64;
        let share = dropped / m.iter().map(Vec::len).sum::<usize>() as f64;
        assert!(
            (share - DROPOUT as f64).abs() < 0.01,
            "the fixture drops {share}"
        );
    }
    let (t, Trace { stats, grads }) = run_variant(variant.clone(), masks.as_deref(), 3);
    assert_eq!(
        t.gan().discriminator.slots().len(),
        f.keys()
            .filter(|k| k.starts_with("step1.grad.discriminator."))
            .count(),
        "D's tensors are the fixture's"
    );
    let gan = t.gan();
    for (step, (s, (grad_g, grad_d))) in stats.iter().zip(&grads).enumerate() {
        let prefix = format!("step{}", step + 1);
        let want = &f[&format!("{prefix}.stats")];
        for (name, (&got, &want)) in ["d_loss", "g_loss", "D(x)", "D(G(z))"]
            .iter()
            .zip(s.iter().zip(want))
        {
            assert!(
                (got - want).abs() < 1e-5,
                "{prefix} {name}: {got} vs PyTorch's {want}"
            );
        }
        for slot in gan.discriminator.slots() {
            let key = format!("{prefix}.grad.discriminator.{}", slot.name);
            check(&key, &grad_d[slot.range.clone()], &f[&key], 1e-4);
        }
        for slot in gan.generator.slots() {
            let key = format!("{prefix}.grad.generator.{}", slot.name);
            check(&key, &grad_g[slot.range.clone()], &f[&key], 1e-4);
        }
    }
    // The weights' whole change over the three steps. Adam turns a gradient element's
    // rounding into a step of up to the learning rate when the element is near zero, so the
    // change is compared, not the weights (whose rounding would hide an error in it).
    let (cfg, shape) = variant;
    let start = fixture_gan(&cfg, &shape);
    let change = |now: &[f32], then: &[f32]| -> Vec<f32> {
        now.iter().zip(then).map(|(a, b)| a - b).collect()
    };
    let networks = [
        (
            "discriminator",
            gan.discriminator.slots(),
            &gan.discriminator.params,
            &start.discriminator.params,
        ),
        (
            "generator",
            gan.generator.slots(),
            &gan.generator.params,
            &start.generator.params,
        ),
    ];
    for (net, slots, now, then) in networks {
        for slot in slots {
            let key = format!("final.{net}.{}", slot.name);
            let r = slot.range.clone();
            check(
                &format!("{key} (change over 3 steps)"),
                &change(&now[r.clone()], &then[r.clone()]),
                &change(&f[&key], &then[r]),
                UPDATE_TOLERANCE,
            );
        }
    }
    for slot in gan.generator.running_slots() {
        let key = format!("final.generator.{}", slot.name);
        check(
            &key,
            &gan.generator.running[slot.range.clone()],
            &f[&key],
            1e-5,
        );
    } // Sampling uses the running statistics. G's weights differ from PyTorch's by the
      // rounding above, so its images are compared from PyTorch's own weights.
    let mut g = gan.generator.clone();
    for slot in g.slots() {
        let key = format!("final.generator.{}", slot.name);
        g.params[slot.range.clone()].copy_from_slice(&f[&key]);
    }
    let sample_labels: Vec<u8> = (0..8).map(|i| (i % CLASSES) as u8).collect();
    let z = generator_input(&det(8 * NOISE, 500, 1.0, 0.0), &sample_labels, g.classes);
    let images = g.generate(&z);
    check(
        "samples in inference mode",
        &images,
        &f["final.samples"],
        1e-5,
    );
}

/// Runs `cfg` for `steps` steps in one go and again saved and restored after `split`: the
/// state reads back whole, fits `cfg`, and the resumed run ends bit-identical. Returns
/// the saved state and the whole run's trainer.
fn save_restore_continue(
    cfg: &TrainConfig,
    split: usize,
    steps: usize,
) -> (AnyState, DcganTrainer) {
    let run = |t: &mut DcganTrainer, steps: std::ops::Range<usize>| {
        for step in steps {
            let real = det(BATCH * PIXELS, 600 + step, 0.5, 0.5);
            let (labels, _) = fixture_labels(step);
            t.step_with(&mut |px, y| {
                px.copy_from_slice(&real);
                y.copy_from_slice(&labels);
            })
            .unwrap();
        }
    };
    let mut whole = DcganTrainer::new(cfg.clone(), 7);
    run(&mut whole, 0..steps);
    let mut first = DcganTrainer::new(cfg.clone(), 7);
    run(&mut first, 0..split);
    let saved = AnyState::Dcgan(first.state());
    let bytes = checkpoint::encode_any_state(&saved, &Default::default());
    let (state, _) = checkpoint::decode_any_state(&bytes, cfg.adam_g()).unwrap();
    assert_eq!(state, saved);
    state.check_fits(cfg).unwrap();
    let AnyState::Dcgan(state) = state else {
        unreachable!()
    };
    let mut resumed = DcganTrainer::restore(cfg.clone(), 7, state);
    run(&mut resumed, split..steps);
    assert_eq!(resumed.state(), whole.state());
    (saved, whole)
}

/// A state saved after three steps and restored continues exactly as the uninterrupted
/// run (the moving average of G and two D updates a step included), and the saved model
/// reads back as it was written.
#[test]
fn a_restored_state_continues_bit_identically() {
    let (mut cfg, shape) = config();
    cfg.g_ema = Some(0.99);
    cfg.d_steps = 2;
    cfg.model.d_dropout = DROPOUT;
    cfg.model.arch = Arch::Dcgan(shape.clone());
    let (_, whole) = save_restore_continue(&cfg, 3, 5);

    let model = Model::Dcgan(whole.model_to_save());
    let back = checkpoint::decode_model(&checkpoint::encode_model(&model)).unwrap();
    assert_eq!(back, model);

    // A D without batch normalisation reads back as one, and a normalised spec refuses it.
    let (mut plain, plain_shape) = config_with(false);
    plain.model.arch = Arch::Dcgan(plain_shape);
    let fresh = DcganTrainer::new(plain, 7);
    let model = Model::Dcgan(fresh.model_to_save());
    let back = checkpoint::decode_model(&checkpoint::encode_model(&model)).unwrap();
    assert_eq!(back, model);
    let err = AnyState::Dcgan(fresh.state()).check_fits(&cfg).unwrap_err();
    assert!(
        err.contains("no batch normalisation") && err.contains("batch normalised"),
        "{err}"
    );

    // A D with a dense layer resumes as exactly, and a spec without the layer refuses it.
    let (mut dense, dense_shape) = config_of(true, DENSE);
    dense.d_steps = 2;
    dense.model.arch = Arch::Dcgan(dense_shape);
    let (saved, _) = save_restore_continue(&dense, 2, 4);
    let err = saved.check_fits(&cfg).unwrap_err();
    assert!(err.contains("a dense layer of 24"), "{err}");

    // A conditional GAN (with the average of G, whose standing statistics ask for every
    // digit) resumes as exactly; its model reads back conditional, and a spec without
    // classes refuses its state.
    let (mut conditional, conditional_shape) = config_conditional();
    conditional.g_ema = Some(0.99);
    conditional.model.arch = Arch::Dcgan(conditional_shape);
    let (saved, whole) = save_restore_continue(&conditional, 2, 4);
    let model = Model::Dcgan(whole.model_to_save());
    let back = checkpoint::decode_model(&checkpoint::encode_model(&model)).unwrap();
    assert_eq!(back, model);
    assert_eq!(back.generator().classes(), CLASSES);
    let err = saved.check_fits(&dense).unwrap_err();
    assert!(err.contains("10 classes (conditional)"), "{err}");

    // Self-conditioned (classes drawn in proportion to cluster sizes, standing statistics
    // too): resumes as exactly, its model reads back with the sizes, and a spec whose
    // clusters came out with other sizes, or that has digits instead, refuses its state.
    let mut clustered = conditional.clone();
    clustered.model.label_counts = vec![9, 1, 0, 4, 4, 30, 2, 2, 7, 1];
    let (saved, whole) = save_restore_continue(&clustered, 2, 4);
    let model = Model::Dcgan(whole.model_to_save());
    let back = checkpoint::decode_model(&checkpoint::encode_model(&model)).unwrap();
    assert_eq!(back, model);
    assert_eq!(
        back.generator().label_counts(),
        clustered.model.label_counts
    );
    assert_ne!(
        whole.state(),
        save_restore_continue(&conditional, 2, 4).1.state(),
        "the counts changed nothing"
    );
    let mut moved = clustered.clone();
    moved.model.label_counts[3] = 5;
    let err = saved.check_fits(&moved).unwrap_err();
    assert!(
        err.contains("cluster 3 holds 4 training images") && err.contains("now puts 5"),
        "{err}"
    );
    let err = saved.check_fits(&conditional).unwrap_err();
    assert!(
        err.contains("10 clusters (self-conditioned)") && err.contains("10 classes (conditional)"),
        "{err}"
    );

    let mut other = cfg.clone();
    other.model.arch = Arch::Dcgan(DcganShape {
        g_channels: [32, 8],
        ..shape
    });
    let err = AnyState::Dcgan(whole.state())
        .check_fits(&other)
        .unwrap_err();
    assert!(
        err.contains("G channels [32, 16]") && err.contains("G channels [32, 8]"),
        "{err}"
    );
    other.model.arch = Arch::Mlp;
    let err = AnyState::Dcgan(whole.state())
        .check_fits(&other)
        .unwrap_err();
    assert!(
        err.contains("a DCGAN") && err.contains("G hidden [256]"),
        "{err}"
    );
}

/// The same steps in rayon pools of one, two and three threads give bit-identical weights,
/// with and without batch normalisation in D, and with dropout masks from the seed's stream.
#[test]
fn results_do_not_depend_on_the_thread_count() {
    let in_pool = |threads: usize, run: &(dyn Fn() -> Dcgan + Sync)| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(run)
    };
    let with_dropout = || {
        let (mut cfg, shape) = config();
        cfg.model.d_dropout = DROPOUT;
        cfg.model.arch = Arch::Dcgan(shape);
        let mut t = DcganTrainer::new(cfg, 7);
        for step in 0..3 {
            let real = det(BATCH * PIXELS, 600 + step, 0.5, 0.5);
            t.step_with(&mut |px, _| px.copy_from_slice(&real)).unwrap();
        }
        t.gan().clone()
    };
    let runs: [&(dyn Fn() -> Dcgan + Sync); 5] = [
        &|| run_with(true, None, 3).0.gan().clone(),
        &|| run_with(false, None, 3).0.gan().clone(),
        &with_dropout,
        &|| run_variant(config_of(true, DENSE), None, 3).0.gan().clone(),
        &|| run_variant(config_conditional(), None, 3).0.gan().clone(),
    ];
    for run in runs {
        let one = in_pool(1, run);
        assert_eq!(in_pool(2, run), one);
        assert_eq!(in_pool(3, run), one);
    }
}
