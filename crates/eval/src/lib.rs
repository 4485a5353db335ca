//! Sample quality in numbers, for a run's final generator:
//!
//! 1. the GAN paper's Parzen-window log-likelihood (Goodfellow et al. 2014, Table 1): a
//!    Gaussian window on 10,000 samples, its width chosen among 10 values log-spaced in
//!    [0.1, 1] by the mean log-likelihood of the first 1,000 validation images, then the mean
//!    log-likelihood of the 10,000 test images and its standard error;
//! 2. with the project's own MNIST classifier ([`classifier`]): the Frechet distance of
//!    penultimate-layer features to the test images' (an MNIST FID), the Inception-Score
//!    analogue, digit coverage, and precision/recall (Kynkaanniemi et al. 2019, k = 3).
//!
//! [`references`] gives the same numbers for real training images (the best a generator could
//! do on this protocol) and the Parzen value of pure noise, so every number has a scale.

pub mod classifier;
pub mod math;

use std::path::Path;
use std::time::Instant;

use gan_data::{load_test, load_training, Split, IMAGE_PIXELS};
use gan_model::train::input::{generator_input, labels_to_ask_among, sample_noise};
use gan_model::{stream, Generator, Stream};
use gan_rundir::{
    ClassifierInfo, Coverage, Metrics, Parzen, RunDir, SampleMetrics, METRICS_FORMAT,
};
use rand::Rng;
use serde::{Deserialize, Serialize};

pub use classifier::{Classifier, TrainOptions};

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("{0}")]
    Data(String),
    #[error("classifier: {0}")]
    Classifier(String),
    #[error("{0}")]
    Model(String),
    #[error("{0}; refusing to score it (a diverged or damaged model)")]
    NonFinite(String),
    #[error("interrupted while training the classifier; nothing was cached")]
    Interrupted,
    #[error(transparent)]
    RunDir(#[from] gan_rundir::RunDirError),
}

/// Validation images used to choose the Parzen width.
pub const PARZEN_VALIDATION: usize = 1000;
/// Nearest neighbours defining the balls of precision and recall.
pub const PR_K: usize = 3;

/// The 10 Parzen widths: log-spaced from 0.1 to 1.0, as in the paper's protocol.
pub fn parzen_sigmas() -> Vec<f64> {
    (0..10).map(|i| 10f64.powf(-1.0 + i as f64 / 9.0)).collect()
}

/// The real images every evaluation compares against, with their classifier outputs.
pub struct EvalData {
    /// First 1,000 images of the validation split.
    pub validation: Vec<f32>,
    pub test: Split,
    test_pixels: Vec<f32>,
    test_features: Vec<f32>,
    /// Mean and covariance of `test_features`: one side of every Frechet distance.
    test_moments: (Vec<f64>, nalgebra::DMatrix<f64>),
    test_classes: Vec<f64>,
    /// The training split (for the reference row and for training the classifier).
    pub train: Split,
    pub full_validation: Split,
}

impl EvalData {
    pub fn load(data_dir: &Path, classifier: &Classifier) -> Result<EvalData, EvalError> {
        let (train, validation) =
            load_training(data_dir).map_err(|e| EvalError::Data(e.to_string()))?;
        let test = load_test(data_dir).map_err(|e| EvalError::Data(e.to_string()))?;
        Ok(EvalData::new(train, validation, test, classifier))
    }

    pub fn new(train: Split, validation: Split, test: Split, classifier: &Classifier) -> EvalData {
        let test_pixels = test.images.to_f32();
        let (test_features, _) = classifier.features_and_probs(&test_pixels);
        let test_moments = math::mean_cov(&test_features, classifier::FEATURES);
        let mut test_classes = vec![0.0f64; 10];
        for &l in &test.labels {
            test_classes[l as usize] += 1.0 / test.len() as f64;
        }
        let val = validation.clone().take_first(PARZEN_VALIDATION);
        EvalData {
            validation: val.images.to_f32(),
            test_pixels,
            test_features,
            test_moments,
            test_classes,
            test,
            train,
            full_validation: validation,
        }
    }
}

/// The Parzen estimate of images `samples` (`n x 784`).
pub fn parzen(samples: &[f32], data: &EvalData) -> Parzen {
    let sigmas = parzen_sigmas();
    let val = math::parzen_ll(samples, &data.validation, IMAGE_PIXELS, &sigmas);
    let search: Vec<[f64; 2]> = sigmas
        .iter()
        .zip(&val)
        .map(|(&s, ll)| [s, math::mean_and_std_err(ll).0])
        .collect();
    let best = search
        .iter()
        .fold(search[0], |b, &c| if c[1] > b[1] { c } else { b });
    let test = math::parzen_ll(samples, &data.test_pixels, IMAGE_PIXELS, &[best[0]]);
    let (mean_ll, std_err) = math::mean_and_std_err(&test[0]);
    Parzen {
        sigma: best[0],
        mean_ll,
        std_err,
        sigma_search: search,
    }
}

/// All metrics of images `samples` (`n x 784`, in [0, 1]); with `requested` (the digits a
/// conditional generator was asked for, one per image) also how often the classifier agrees.
pub fn evaluate_images(
    samples: &[f32],
    data: &EvalData,
    classifier: &Classifier,
    with_parzen: bool,
    requested: Option<&[u8]>,
) -> SampleMetrics {
    let n = samples.len() / IMAGE_PIXELS;
    let (features, probs) = classifier.features_and_probs(samples);
    let (m1, c1) = math::mean_cov(&features, classifier::FEATURES);
    let (m2, c2) = &data.test_moments;
    let mut histogram = vec![0u64; 10];
    for p in probs.chunks_exact(10) {
        histogram[classifier::argmax(p)] += 1;
    }
    let dist: Vec<f64> = histogram.iter().map(|&c| c as f64 / n as f64).collect();
    let (precision, recall) =
        math::precision_recall(&data.test_features, &features, classifier::FEATURES, PR_K);
    SampleMetrics {
        parzen: with_parzen.then(|| parzen(samples, data)),
        fid: math::frechet_distance(&m1, &c1, m2, c2),
        inception_score: math::inception_score(&probs, 10),
        coverage: Coverage {
            classes_over_5pct: histogram
                .iter()
                .filter(|&&c| c as f64 >= 0.05 * n as f64)
                .count() as u64,
            kl_to_test: math::kl_divergence(&dist, &data.test_classes),
            histogram,
        },
        precision,
        recall,
        label_accuracy: requested.map(|labels| {
            let agree = probs
                .chunks_exact(10)
                .zip(labels)
                .filter(|(p, &l)| classifier::argmax(p) == l as usize)
                .count();
            agree as f64 / n as f64
        }),
    }
}

/// `n` images from `generator` with noise from `seed`'s evaluation stream; a conditional
/// generator is asked for [`Generator::labels_to_ask`] (every digit equally often, in turn;
/// a self-conditioned G's clusters as often as its training data has them).
pub fn generated_images(generator: &Generator, n: usize, seed: u64) -> Vec<f32> {
    let z = sample_noise(n, generator.noise_dim(), &mut stream(seed, Stream::Eval));
    let input = generator_input(&z, &generator.labels_to_ask(n), generator.classes());
    generator.generate(&input)
}

/// Bytes the evaluation of `samples` images needs at most, for refusing a count before
/// anything is allocated: per image its pixels, its generator input and `widest` floats of
/// generation's widest layer (0 where generation goes in chunks of its own, as a DCGAN's
/// does), the classifier's hidden activations, features and logits, all twice over.
pub fn evaluation_bytes(samples: usize, input: usize, widest: usize) -> u128 {
    let floats = (IMAGE_PIXELS + input + widest + 1024 + 256 + 10) as u128;
    samples as u128 * floats * 4 * 2
}

/// [`evaluation_bytes`] for `generator`'s images.
pub fn generator_evaluation_bytes(generator: &Generator, samples: usize) -> u128 {
    let widest = match generator {
        Generator::Mlp(g) => g.sizes.iter().copied().max().unwrap_or(0),
        Generator::Dcgan(_) => 0,
    };
    evaluation_bytes(samples, generator.input_size(), widest)
}

/// Images [`for_each_generated`] hands on at a time: a multiple of the perceptrons' and the
/// DCGAN's own generation chunks (1,000 and 250 images), so every image is computed exactly
/// as in one call of [`generated_images`].
pub const GENERATED_PIECE: usize = 10_000;

/// What [`for_each_generated`] hands each piece to: its images (`n x 784` in [0, 1]) and,
/// for a generator asked for digits, those digits.
pub type EachPiece<'a> = dyn FnMut(&[f32], Option<&[u8]>) -> std::io::Result<()> + 'a;

/// The `n` images of [`generated_images`] (and their digits, as [`requested_labels`] gives
/// them), handed to `each` [`GENERATED_PIECE`] at a time, so that more images than memory
/// holds can be written out; the same bits as one call.
pub fn for_each_generated(
    generator: &Generator,
    n: usize,
    seed: u64,
    each: &mut EachPiece,
) -> std::io::Result<()> {
    for_each_generated_in(generator, n, seed, GENERATED_PIECE, each)
}

fn for_each_generated_in(
    generator: &Generator,
    n: usize,
    seed: u64,
    piece: usize,
    each: &mut EachPiece,
) -> std::io::Result<()> {
    let mut rng = stream(seed, Stream::Eval);
    let digits = generator.asks_for_digits();
    let mut start = 0;
    while start < n {
        let end = (start + piece).min(n);
        let z = sample_noise(end - start, generator.noise_dim(), &mut rng);
        let (classes, counts) = (generator.classes(), generator.label_counts());
        let labels = labels_to_ask_among(n, classes, counts, start..end);
        let images = generator.generate(&generator_input(&z, &labels, classes));
        each(&images, digits.then_some(&labels[..]))?;
        start = end;
    }
    Ok(())
}

/// The digits [`generated_images`] asks a conditional generator for; `None` for one not
/// asked for digits (unconditional, or self-conditioned on clusters, whose ids are not
/// digits).
pub fn requested_labels(generator: &Generator, n: usize) -> Option<Vec<u8>> {
    generator
        .asks_for_digits()
        .then(|| generator.labels_to_ask(n))
}

/// Evaluates a run's `model.safetensors` and writes `metrics.json` into the run.
pub fn evaluate_run(
    run: &RunDir,
    data: &EvalData,
    classifier: &Classifier,
    samples: usize,
    eval_seed: u64,
) -> Result<Metrics, EvalError> {
    let weights = run.file(gan_rundir::MODEL_FILE);
    let generator = gan_model::checkpoint::decode_model(&run.read_model()?)
        .map_err(|e| EvalError::Model(format!("{}: {e}", weights.display())))?
        .into_generator();
    let metrics = evaluate_generator(&generator, data, classifier, samples, eval_seed).map_err(
        |e| match e {
            EvalError::NonFinite(m) => EvalError::NonFinite(format!("{}: {m}", weights.display())),
            other => other,
        },
    )?;
    run.write_metrics(&metrics)?;
    Ok(metrics)
}

/// The metrics of any generator, for example another program's, loaded with
/// `gan_model::checkpoint::decode_any_generator`: the same noise and measurements as for a
/// run. Non-finite weights or pixels are refused: no metric may turn a NaN into a number.
pub fn evaluate_generator(
    generator: &Generator,
    data: &EvalData,
    classifier: &Classifier,
    samples: usize,
    eval_seed: u64,
) -> Result<Metrics, EvalError> {
    let start = Instant::now();
    check_finite_weights(generator)?;
    let images = generated_images(generator, samples, eval_seed);
    if let Some(i) = images.iter().position(|v| !v.is_finite()) {
        return Err(EvalError::NonFinite(format!(
            "generated image {} has a non-finite pixel ({})",
            i / IMAGE_PIXELS,
            images[i]
        )));
    }
    let requested = requested_labels(generator, samples);
    let generated = evaluate_images(&images, data, classifier, true, requested.as_deref());
    Ok(Metrics {
        format: METRICS_FORMAT.into(),
        samples,
        eval_seed,
        classifier: classifier.info(),
        generated,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// The first non-finite weight of `generator`, named like its checkpoint tensor.
fn check_finite_weights(generator: &Generator) -> Result<(), EvalError> {
    let tensors = match generator {
        Generator::Mlp(g) => g.slots().into_iter().map(|s| (s, &g.params)).collect(),
        Generator::Dcgan(g) => {
            let params = g.slots().into_iter().map(|s| (s, &g.params));
            let running = g.running_slots().into_iter().map(|s| (s, &g.running));
            params.chain(running).collect::<Vec<_>>()
        }
    };
    for (slot, buffer) in tensors {
        let values = &buffer[slot.range.clone()];
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(EvalError::NonFinite(format!(
                "weight generator.{}[{i}] is {}",
                slot.name, values[i]
            )));
        }
    }
    Ok(())
}

/// What the metrics are for real images and, for Parzen, for pure noise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct References {
    pub samples: usize,
    /// The first `samples` images of the training split in place of generated ones.
    pub real_train: SampleMetrics,
    /// Uniform noise images in place of generated ones (Parzen only; the classifier metrics
    /// of noise say nothing useful).
    pub noise_parzen: Parzen,
    pub classifier: ClassifierInfo,
}

pub fn references(
    data: &EvalData,
    classifier: &Classifier,
    samples: usize,
    seed: u64,
) -> References {
    let real = data.train.clone().take_first(samples).images.to_f32();
    let mut rng = stream(seed, Stream::Eval);
    let noise: Vec<f32> = (0..real.len()).map(|_| rng.gen::<f32>()).collect();
    References {
        samples: real.len() / IMAGE_PIXELS,
        real_train: evaluate_images(&real, data, classifier, true, None),
        noise_parzen: parzen(&noise, data),
        classifier: classifier.info(),
    }
}

/// The cached classifier for `data_dir`, trained (and cached) first if there is none.
pub fn ensure_classifier(
    data_dir: &Path,
    log: &mut dyn FnMut(&str),
) -> Result<Classifier, EvalError> {
    ensure_classifier_unless(data_dir, log, &|| false)
}

/// [`ensure_classifier`], stopping its training with [`EvalError::Interrupted`] (nothing
/// cached) at the first batch where `stop` says so (Ctrl-C).
pub fn ensure_classifier_unless(
    data_dir: &Path,
    log: &mut dyn FnMut(&str),
    stop: &dyn Fn() -> bool,
) -> Result<Classifier, EvalError> {
    if let Some(c) = Classifier::load_cached(data_dir)? {
        return Ok(c);
    }
    log(&format!(
        "no MNIST classifier cached in {}: training one (about a minute or two; `gan train-classifier` does the same)",
        classifier::cache_dir(data_dir).display()
    ));
    let (train, validation) =
        load_training(data_dir).map_err(|e| EvalError::Data(e.to_string()))?;
    let test = load_test(data_dir).map_err(|e| EvalError::Data(e.to_string()))?;
    let c = Classifier::train(
        &train,
        &validation,
        &test,
        TrainOptions::default(),
        &mut |epoch, acc| {
            log(&format!(
                "  classifier epoch {epoch:2}: validation accuracy {:.2}%",
                acc * 100.0
            ))
        },
        stop,
    )?;
    let path = c.save(data_dir)?;
    log(&format!(
        "classifier: test accuracy {:.2}%, saved to {}",
        c.card.test_accuracy * 100.0,
        path.display()
    ));
    Ok(c)
}

#[cfg(test)]
mod tests {
    use gan_model::{Arch, DcganShape, Gan, ModelConfig, TrainConfig};

    use super::*;

    /// Pieces of any multiple of the generators' own chunks give one call's images bit for
    /// bit, and the digits asked for.
    #[test]
    fn images_in_pieces_are_those_of_one_call() {
        let conditional = ModelConfig {
            noise_dim: 16,
            g_hidden: vec![32],
            classes: 10,
            init_std: 0.1,
            ..ModelConfig::default()
        };
        let mlp = Gan::init(&conditional, &mut stream(1, Stream::Init)).generator;
        let cfg = TrainConfig {
            model: ModelConfig {
                noise_dim: 8,
                init_std: 0.1,
                arch: Arch::Dcgan(DcganShape {
                    g_channels: [8, 4],
                    d_channels: [4, 8],
                    ..DcganShape::default()
                }),
                ..ModelConfig::default()
            },
            ..TrainConfig::tutorial()
        };
        let Arch::Dcgan(shape) = &cfg.model.arch else {
            unreachable!()
        };
        let dcgan = gan_model::dcgan::Dcgan::init(&cfg, shape, &mut stream(1, Stream::Init));
        for generator in [Generator::Mlp(mlp), Generator::Dcgan(dcgan.generator)] {
            let n = 2_500;
            let whole = generated_images(&generator, n, 4);
            let mut pieces = Vec::new();
            let mut labels = Vec::new();
            for_each_generated_in(&generator, n, 4, 1_000, &mut |images, digits| {
                pieces.extend_from_slice(images);
                labels.extend_from_slice(digits.unwrap_or_default());
                Ok(())
            })
            .unwrap();
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&pieces), bits(&whole));
            assert_eq!(
                Some(labels),
                requested_labels(&generator, n).or(Some(Vec::new()))
            );
        }
    }
}
