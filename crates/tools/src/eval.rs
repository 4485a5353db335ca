//! `gan eval` and `train-classifier`: sample quality in numbers.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use gan_eval::{
    ensure_classifier, evaluate_generator, references, Classifier, EvalData, References,
    TrainOptions,
};
use gan_rundir::{write_json_atomic, RunDir, SampleMetrics};

use crate::table::render;

/// Default number of generated images evaluated.
pub const DEFAULT_SAMPLES: usize = 10_000;
/// Default seed of the evaluation noise.
pub const DEFAULT_EVAL_SEED: u64 = 0;

#[derive(clap::Args)]
pub struct EvalArgs {
    /// Run directory whose model.safetensors is evaluated (writes metrics.json there)
    #[arg(required_unless_present_any = ["reference", "generator"], conflicts_with = "generator")]
    run: Option<PathBuf>,
    /// Evaluate another file's generator instead of a run's: any run's model.safetensors or
    /// checkpoint (MLP or DCGAN, conditional, self-conditioned or neither: the file says
    /// which), or another program's .safetensors with `generator.0.weight` [hidden, noise],
    /// `generator.0.bias`, `generator.2.weight` [784, hidden] and `generator.2.bias`
    /// (PyTorch's Linear-ReLU-Linear layout, sigmoid output in [0, 1];
    /// tools/lockstep/tf_generator.py converts the TF program's --save-generator file), or
    /// the DCGAN layout of
    /// tools/peers/gan_torch_dcgan.py --save-generator (metadata `architecture: dcgan`)
    #[arg(long, value_name = "FILE")]
    generator: Option<PathBuf>,
    /// With --generator: also write the metrics as JSON (metrics.json's format) to this file
    #[arg(long, value_name = "FILE", requires = "generator")]
    out: Option<PathBuf>,
    /// With --generator naming a training checkpoint (`<run>/checkpoints/step-*.safetensors`)
    /// of a run with train.g_ema: evaluate the moving average of G's weights, as the run
    /// samples it, instead of the live G (the run's spec.yaml supplies its seed and batch size)
    #[arg(long, requires = "generator")]
    average: bool,
    /// Print the reference rows instead: real training images, and pure noise for Parzen
    #[arg(long)]
    reference: bool,
    /// Generated images to evaluate (at least 10, as for a spec's eval.samples)
    #[arg(long, default_value_t = DEFAULT_SAMPLES, value_parser = at_least_10)]
    samples: usize,
    /// Seed of the evaluation noise
    #[arg(long, default_value_t = DEFAULT_EVAL_SEED)]
    seed: u64,
    /// MNIST folder [default: data/mnist]
    #[arg(long)]
    data: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct TrainClassifierArgs {
    /// MNIST folder; the classifier is cached in its sibling `classifier/` [default: data/mnist]
    #[arg(long)]
    data: Option<PathBuf>,
    /// Retrain even if a classifier is cached
    #[arg(long)]
    force: bool,
}

fn at_least_10(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 10 => Ok(n),
        Ok(n) => Err(format!(
            "{n} is too few: the metrics need at least 10 images"
        )),
        Err(e) => Err(e.to_string()),
    }
}

fn log(s: &str) {
    eprintln!("{s}");
}

pub fn train_classifier(args: TrainClassifierArgs, paths: &crate::Paths) -> anyhow::Result<()> {
    let data = paths.mnist_dir(args.data);
    if !args.force {
        if let Some(c) = Classifier::load_cached(&data)? {
            println!(
                "classifier already cached in {} (test accuracy {:.2}%); --force retrains",
                gan_eval::classifier::cache_dir(&data).display(),
                c.card.test_accuracy * 100.0
            );
            return Ok(());
        }
    }
    let (train, validation) = gan_data::load_training(&data)
        .with_context(|| "loading MNIST (gan fetch-mnist fetches it)")?;
    let test = gan_data::load_test(&data)?;
    let c = Classifier::train(
        &train,
        &validation,
        &test,
        TrainOptions::default(),
        &mut |e, acc| eprintln!("epoch {e:2}: validation accuracy {:.2}%", acc * 100.0),
        &|| false,
    )?;
    let path = c.save(&data)?;
    println!(
        "classifier: test accuracy {:.2}%, validation {:.2}%, {:.0} s; saved to {}",
        c.card.test_accuracy * 100.0,
        c.card.validation_accuracy * 100.0,
        c.card.train_seconds,
        path.display()
    );
    if c.card.test_accuracy < 0.985 {
        bail!(
            "test accuracy {:.2}% is below the 98.5% the metrics rely on",
            c.card.test_accuracy * 100.0
        );
    }
    Ok(())
}

/// The moving average of G in the training checkpoint `path` (read into `bytes`), with the
/// seed and batch size of the run it belongs to.
fn checkpoint_average(path: &Path, bytes: &[u8]) -> anyhow::Result<gan_model::Generator> {
    let decoded = gan_model::checkpoint::decode_any_state(bytes, gan_model::AdamConfig::default());
    let state = match decoded {
        Ok((state, _)) => state,
        Err(_) if gan_model::checkpoint::decode_any_generator(bytes).is_ok() => bail!(
            "{} is saved weights, not a training checkpoint: its generator already is the \
             one its run samples (the average, with train.g_ema), so leave out --average",
            path.display()
        ),
        Err(e) => {
            return Err(e)
                .with_context(|| format!("reading {} as a training checkpoint", path.display()))
        }
    };
    let run = path
        .parent()
        .and_then(Path::parent)
        .map(|r| r.join(gan_rundir::SPEC_FILE))
        .filter(|s| s.is_file())
        .with_context(|| {
            format!(
                "--average needs the run's {} two folders above {}: give a checkpoint inside \
                 its run's checkpoints/ folder",
                gan_rundir::SPEC_FILE,
                path.display()
            )
        })?;
    let spec = gan_spec::load_spec(&run, &[])?;
    state
        .average_generator(spec.train.batch_size, spec.seed)
        .with_context(|| {
            format!(
                "{} holds no moving average of G (its run's train.g_ema is null): leave out \
                 --average to evaluate its G",
                path.display()
            )
        })
}

pub fn eval(args: EvalArgs, paths: &crate::Paths) -> anyhow::Result<()> {
    let data = paths.mnist_dir(args.data);
    // The generator first: a missing, damaged or broken model is reported at once, not after
    // minutes of classifier training.
    let target = match (&args.generator, &args.run) {
        (Some(path), _) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let generator = if args.average {
                checkpoint_average(path, &bytes)?
            } else {
                gan_model::checkpoint::decode_any_generator(&bytes)
                    .with_context(|| format!("reading a generator from {}", path.display()))?
            };
            Some((path.clone(), generator, None))
        }
        (None, Some(path)) => {
            let run = RunDir::open(path)?;
            let model =
                gan_model::checkpoint::decode_model(&run.read_model()?).with_context(|| {
                    format!("reading {}", run.file(gan_rundir::MODEL_FILE).display())
                })?;
            Some((path.clone(), model.into_generator(), Some(run)))
        }
        (None, None) => None,
    };
    // Refused before anything is computed, as the runner refuses eval.samples: the reference
    // rows (as many noise images) and the generated images.
    let need = match &target {
        Some((_, generator, _)) => gan_eval::generator_evaluation_bytes(generator, args.samples),
        None => gan_eval::evaluation_bytes(args.samples, 0, 0),
    };
    if let Some(have) = crate::machine_memory().filter(|&have| need > have) {
        bail!(
            "--samples {}: evaluating that many images needs about {} of memory, more than the \
             {} this machine has; lower --samples",
            args.samples,
            crate::gib(need),
            crate::gib(have)
        );
    }
    let classifier = ensure_classifier(&data, &mut log)?;
    let eval_data = EvalData::load(&data, &classifier)?;
    let refs = cached_references(&data, &eval_data, &classifier, args.samples, args.seed)?;
    let mut rows = vec![row(
        "real training images (reference)",
        &refs.real_train,
        refs.samples,
    )];
    rows.push(vec![
        "uniform noise (reference)".into(),
        refs.samples.to_string(),
        parzen_text(Some(&refs.noise_parzen)),
        "-".into(),
        "-".into(),
        "-".into(),
        "-".into(),
        "-".into(),
        "-".into(),
    ]);
    if let Some((path, generator, run)) = target {
        let start = Instant::now();
        let m = evaluate_generator(&generator, &eval_data, &classifier, args.samples, args.seed)
            .with_context(|| format!("evaluating {}", path.display()))?;
        let mut written = Vec::new();
        if let Some(run) = run {
            let _lock = run.lock()?;
            run.write_metrics(&m)?;
            written.push(run.file(gan_rundir::METRICS_FILE));
            // The metrics join the run's TensorBoard log (its HParams tab's metric columns).
            gan_tensorboard::RunLog::rebuild(&run, None)
                .with_context(|| format!("updating the TensorBoard log of {}", path.display()))?;
        }
        if let Some(out) = &args.out {
            write_json_atomic(out, &m)?;
            written.push(out.clone());
        }
        for w in written {
            eprintln!(
                "{} written in {:.1} s",
                w.display(),
                start.elapsed().as_secs_f64()
            );
        }
        rows.insert(0, row(&path.display().to_string(), &m.generated, m.samples));
    }
    println!(
        "{}",
        render(
            &[
                "images",
                "n",
                "parzen_ll (sigma)",
                "fid",
                "IS",
                "coverage",
                "kl_to_test",
                "precision",
                "recall",
                "label_acc"
            ],
            &rows,
            false
        )
    );
    println!(
        "classifier: {} (test accuracy {:.2}%); the GAN paper reports 225 +- 2 nats for its GAN (Parzen, MNIST)",
        classifier.card.architecture,
        classifier.card.test_accuracy * 100.0
    );
    Ok(())
}

fn parzen_text(p: Option<&gan_rundir::Parzen>) -> String {
    p.map(|p| format!("{:.1} +- {:.1} ({:.3})", p.mean_ll, p.std_err, p.sigma))
        .unwrap_or_else(|| "-".into())
}

fn row(label: &str, m: &SampleMetrics, n: usize) -> Vec<String> {
    vec![
        label.to_string(),
        n.to_string(),
        parzen_text(m.parzen.as_ref()),
        format!("{:.2}", m.fid),
        format!("{:.2}", m.inception_score),
        format!("{}/10", m.coverage.classes_over_5pct),
        format!("{:.4}", m.coverage.kl_to_test),
        format!("{:.3}", m.precision),
        format!("{:.3}", m.recall),
        m.label_accuracy
            .map(|v| format!("{:.1}%", 100.0 * v))
            .unwrap_or_else(|| "-".into()),
    ]
}

/// References depend only on the data, the classifier, the count and the seed: cached beside
/// the classifier so every `eval` prints them without recomputing.
fn cached_references(
    data: &Path,
    eval_data: &EvalData,
    classifier: &Classifier,
    samples: usize,
    seed: u64,
) -> anyhow::Result<References> {
    let path =
        gan_eval::classifier::cache_dir(data).join(format!("references-{samples}-{seed}.json"));
    if let Some(r) = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str::<References>(&t).ok())
        .filter(|r| r.classifier == classifier.info())
    {
        return Ok(r);
    }
    eprintln!(
        "computing the reference rows (once; cached in {})",
        path.display()
    );
    let r = references(eval_data, classifier, samples, seed);
    write_json_atomic(&path, &r)?;
    Ok(r)
}
