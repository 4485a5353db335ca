//! Evaluation end to end on the committed fixture (copied to a temporary folder, so the
//! classifier cache never lands in the source tree): caching, determinism, references.

use std::path::{Path, PathBuf};

use gan_eval::{
    ensure_classifier, evaluate_images, generated_images, references, Classifier, EvalData,
};
use gan_model::{stream, Gan, Generator, ModelConfig, Stream};

/// The fixture in `<tmp>/mnist`, so the classifier is cached in `<tmp>/classifier`.
fn fixture_copy(tmp: &Path) -> PathBuf {
    let dir = tmp.join("mnist");
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(gan_data::fixture_dir())
        .unwrap()
        .flatten()
    {
        std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
    dir
}

#[test]
fn the_classifier_is_trained_once_then_loaded_from_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let data = fixture_copy(tmp.path());
    let mut lines = Vec::new();
    let first = ensure_classifier(&data, &mut |s| lines.push(s.to_string())).unwrap();
    assert!(
        lines.iter().any(|l| l.contains("training one")),
        "{lines:?}"
    );
    assert!(tmp
        .path()
        .join("classifier/mnist-mlp.safetensors")
        .is_file());
    // 1,100 training images are enough to be far better than chance.
    assert!(
        first.card.test_accuracy > 0.8,
        "{}",
        first.card.test_accuracy
    );
    let mut again = Vec::new();
    let second = ensure_classifier(&data, &mut |s| again.push(s.to_string())).unwrap();
    assert!(again.is_empty(), "loaded, not retrained: {again:?}");
    let imgs = gan_data::load_test(&data).unwrap().images.to_f32();
    assert_eq!(
        first.features_and_probs(&imgs[..784 * 20]),
        second.features_and_probs(&imgs[..784 * 20])
    );
}

#[test]
fn metrics_are_deterministic_and_references_give_a_scale() {
    let tmp = tempfile::tempdir().unwrap();
    let data = fixture_copy(tmp.path());
    let classifier: Classifier = ensure_classifier(&data, &mut |_| {}).unwrap();
    let eval_data = EvalData::load(&data, &classifier).unwrap();
    let gan = Gan::init(&ModelConfig::default(), &mut stream(1, Stream::Init));
    let images = generated_images(&Generator::Mlp(gan.generator.clone()), 300, 4);
    let in_pool = |t: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build()
            .unwrap()
            .install(|| evaluate_images(&images, &eval_data, &classifier, true, None))
    };
    let a = in_pool(1);
    assert_eq!(
        a,
        in_pool(3),
        "same images, same numbers at any thread count"
    );
    let refs = references(&eval_data, &classifier, 300, 4);
    let real = &refs.real_train;
    let untrained = a.parzen.as_ref().unwrap().mean_ll;
    let noise = refs.noise_parzen.mean_ll;
    let real_ll = real.parzen.as_ref().unwrap().mean_ll;
    assert!(
        real_ll > untrained && untrained > noise,
        "real {real_ll} > untrained G {untrained} > noise {noise}"
    );
    assert!(real.fid < a.fid, "real {} vs untrained {}", real.fid, a.fid);
    assert!(real.inception_score > a.inception_score);
    assert!((1.0..=10.0).contains(&real.inception_score));
    assert_eq!(
        real.coverage.classes_over_5pct, 10,
        "real digits cover every class"
    );
    assert!(
        real.precision > 0.5 && real.recall > 0.5,
        "{} {}",
        real.precision,
        real.recall
    );
    assert_eq!(a.coverage.histogram.iter().sum::<u64>(), 300);
    assert_eq!(
        a.label_accuracy, None,
        "an unconditional generator has no labels"
    );
    // Label accuracy against the digits asked for: with real test images and their own
    // labels it is the classifier's test accuracy, measured independently.
    let test_split = gan_data::load_test(&data).unwrap();
    let pixels = test_split.images.to_f32();
    let with_labels = evaluate_images(
        &pixels,
        &eval_data,
        &classifier,
        false,
        Some(&test_split.labels),
    );
    let accuracy = classifier.accuracy(&test_split);
    assert!(
        (with_labels.label_accuracy.unwrap() - accuracy).abs() < 1e-12,
        "{:?} vs {accuracy}",
        with_labels.label_accuracy
    );
    // A conditional generator is asked for each digit in turn, and says which.
    let cond = Gan::init(
        &ModelConfig {
            classes: 10,
            ..ModelConfig::default()
        },
        &mut stream(1, Stream::Init),
    );
    let asked = gan_eval::requested_labels(&Generator::Mlp(cond.generator.clone()), 25).unwrap();
    assert_eq!(asked[..12], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
    assert_eq!(
        generated_images(&Generator::Mlp(cond.generator.clone()), 25, 4).len(),
        25 * 784
    );
    // A self-conditioned generator is asked for its clusters as often as its counts say, and
    // its cluster ids are not digits: no label accuracy. With counts that give every image
    // to cluster 7, its images are those of asking for 7 each time.
    let mut clustered = cond.generator.clone();
    clustered.label_counts = vec![0, 0, 0, 0, 0, 0, 0, 12, 0, 0];
    let clustered = Generator::Mlp(clustered);
    assert_eq!(gan_eval::requested_labels(&clustered, 25), None);
    let noise = gan_model::train::input::sample_noise(25, 128, &mut stream(4, Stream::Eval));
    let all_sevens = gan_model::train::input::generator_input(&noise, &[7; 25], 10);
    assert_eq!(
        generated_images(&clustered, 25, 4),
        clustered.generate(&all_sevens)
    );
    // The width is the one the validation images like best (not merely one of the ten),
    // and the test log-likelihood is the Parzen density with that width, computed here
    // naively in f64 as an independent check.
    let p = a.parzen.as_ref().unwrap();
    let best = p
        .sigma_search
        .iter()
        .max_by(|x, y| x[1].total_cmp(&y[1]))
        .unwrap();
    let worst = p
        .sigma_search
        .iter()
        .min_by(|x, y| x[1].total_cmp(&y[1]))
        .unwrap();
    assert_eq!(p.sigma, best[0], "{:?}", p.sigma_search);
    assert!(best[1] > worst[1] + 1.0, "{:?}", p.sigma_search);
    let test = gan_data::load_test(&data).unwrap().images.to_f32();
    let naive = naive_parzen(&images, &test, p.sigma);
    assert!(
        (p.mean_ll - naive).abs() < 1e-3 * naive.abs(),
        "{} vs {naive}",
        p.mean_ll
    );
    let sigmas: Vec<f64> = a
        .parzen
        .as_ref()
        .unwrap()
        .sigma_search
        .iter()
        .map(|s| s[0])
        .collect();
    assert!(
        (sigmas[0] - 0.1).abs() < 1e-12 && (sigmas[9] - 1.0).abs() < 1e-12 && sigmas.len() == 10
    );
}

/// Mean over `points` of log((1/n) sum_j N(x; s_j, sigma^2 I)), straight from the formula.
fn naive_parzen(samples: &[f32], points: &[f32], sigma: f64) -> f64 {
    let d = 784;
    let n = samples.len() / d;
    let norm =
        -(n as f64).ln() - d as f64 / 2.0 * (2.0 * std::f64::consts::PI * sigma * sigma).ln();
    let lls: Vec<f64> = points
        .chunks_exact(d)
        .map(|x| {
            let e: Vec<f64> = samples
                .chunks_exact(d)
                .map(|s| {
                    let d2: f64 = x
                        .iter()
                        .zip(s)
                        .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
                        .sum();
                    -d2 / (2.0 * sigma * sigma)
                })
                .collect();
            let m = e.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            m + e.iter().map(|v| (v - m).exp()).sum::<f64>().ln() + norm
        })
        .collect();
    lls.iter().sum::<f64>() / lls.len() as f64
}

/// The classifier's training stops at once when asked (Ctrl-C in the runner), caching
/// nothing, so the next call trains afresh rather than loading half a classifier.
#[test]
fn the_classifiers_training_stops_when_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let data = fixture_copy(tmp.path());
    let started = std::time::Instant::now();
    let e = gan_eval::ensure_classifier_unless(&data, &mut |_| {}, &|| true)
        .err()
        .expect("stopped");
    assert!(matches!(e, gan_eval::EvalError::Interrupted), "{e}");
    assert!(started.elapsed().as_secs_f64() < 10.0);
    assert!(gan_eval::Classifier::load_cached(&data).unwrap().is_none());
}
