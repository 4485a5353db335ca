//! What a run trains on: MNIST's training split as the spec limits it (fetched into the
//! default folder when missing), and for `model.clusters` its k-means clusters.

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Context};
use gan_data::{load_training, MnistFile, Split};
use gan_spec::{Spec, DEFAULT_DATA_DIR};

use crate::console;

/// Fetches MNIST into the default data folder when it is not complete there yet.
pub(crate) fn ensure_data(spec: &Spec, quiet: bool) -> anyhow::Result<()> {
    let dir = Path::new(&spec.data.dir);
    let missing = MnistFile::ALL.iter().any(|f| f.locate(dir).is_err());
    if missing && spec.data.dir == DEFAULT_DATA_DIR {
        if !quiet {
            eprintln!(
                "MNIST is not in {DEFAULT_DATA_DIR} yet: fetching it (the same as `gan fetch-mnist`)"
            );
        }
        let opts = gan_fetch::Options {
            verbose: !quiet,
            ..gan_fetch::Options::new(dir, gan_fetch::default_sources())
        };
        let report = gan_fetch::fetch_mnist(&opts).context(
            "fetching MNIST failed; fetch it yourself with `gan fetch-mnist --from <mirror or folder>`",
        )?;
        if !quiet {
            eprintln!("{report}");
        }
    }
    Ok(())
}

/// What a run trains on.
pub(crate) struct TrainingData {
    /// MNIST's training split as the spec limits it; with `model.clusters` its labels are
    /// the images' cluster ids instead of their digits.
    pub split: Split,
    /// The clusters' sizes (empty without `model.clusters`).
    pub label_counts: Vec<u32>,
}

/// Rounds of Lloyd's k-means for `model.clusters` (as in `tools/peers/dcgan_screen.py`).
const KMEANS_ROUNDS: usize = 30;

/// Ctrl-C stopped a preparation before training started: nothing was made of the run.
#[derive(Debug)]
pub(crate) struct Stopped(pub &'static str);

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "interrupted while {}, before training started", self.0)
    }
}

impl std::error::Error for Stopped {}

/// Whether `e` is a [`Stopped`] preparation.
pub(crate) fn stopped(e: &anyhow::Error) -> bool {
    e.downcast_ref::<Stopped>().is_some()
}

/// The training split (limited as the spec says), fetching MNIST into the default folder
/// when it is not there yet; clustered with `threads` threads for `model.clusters`. Raising
/// `interrupt` stops it between its phases and k-means rounds with [`Stopped`].
pub(crate) fn training_images(
    spec: &Spec,
    quiet: bool,
    threads: usize,
    interrupt: &AtomicBool,
) -> anyhow::Result<TrainingData> {
    let check = |what| {
        if interrupt.load(Ordering::SeqCst) {
            Err(Stopped(what))
        } else {
            Ok(())
        }
    };
    check("checking the data")?;
    ensure_data(spec, quiet)?;
    check("fetching the data")?;
    let (train, _) = load_training(Path::new(&spec.data.dir))
        .with_context(|| format!("loading MNIST for data.dir = {}", spec.data.dir))?;
    check("loading the data")?;
    let available = train.len();
    let mut train = match spec.data.limit {
        Some(n) => train.take_first(n),
        None => train,
    };
    let limit = match spec.data.limit {
        Some(n) if n < available => format!(" (data.limit is {n})"),
        _ => String::new(),
    };
    if spec.train.batch_size > train.len() {
        bail!(
            "train.batch_size {} is larger than the {} training images{limit}",
            spec.train.batch_size,
            train.len()
        );
    }
    let k = spec.model.clusters;
    if k > train.len() {
        bail!(
            "model.clusters {k} is more than the {} training images{limit}: each cluster needs \
             an image",
            train.len()
        );
    }
    let label_counts = if k > 0 {
        cluster_labels(&mut train, spec, quiet, threads, interrupt)?
    } else {
        Vec::new()
    };
    Ok(TrainingData {
        split: train,
        label_counts,
    })
}

/// Self-conditioning: replaces the images' labels with their k-means cluster ids (the seed's
/// own stream, so a resumed run finds the same clusters) and returns the clusters' sizes.
fn cluster_labels(
    train: &mut Split,
    spec: &Spec,
    quiet: bool,
    threads: usize,
    interrupt: &AtomicBool,
) -> anyhow::Result<Vec<u32>> {
    let k = spec.model.clusters;
    let started = std::time::Instant::now();
    let bar = console::rounds(
        KMEANS_ROUNDS as u64,
        quiet,
        format!("k-means of {} images into {k} clusters", train.len()),
    );
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("starting the k-means threads")?;
    let clusters = pool.install(|| {
        gan_model::train::clusters::kmeans(
            train.images.as_bytes(),
            gan_model::IMAGE_PIXELS,
            k,
            KMEANS_ROUNDS,
            &mut gan_model::stream(spec.seed, gan_model::Stream::Clusters),
            &mut |round| {
                bar.set_position(round as u64);
                if interrupt.load(Ordering::SeqCst) {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            },
        )
    });
    bar.finish_and_clear();
    let clusters = clusters.ok_or(Stopped("sorting the images into k-means clusters"))?;
    if !quiet {
        let (small, large) = (
            clusters.sizes.iter().min().copied().unwrap_or(0),
            clusters.sizes.iter().max().copied().unwrap_or(0),
        );
        println!(
            "model.clusters: {} training images in {k} k-means clusters of {small} to {large} \
             images ({:.1} s)",
            train.len(),
            started.elapsed().as_secs_f64()
        );
    }
    train.labels = clusters.ids;
    Ok(clusters.sizes)
}
