//! `gan sample`: images from a run's generator as an IDX file (MNIST's format), and for a
//! conditional run the digits they were asked for.

use std::path::PathBuf;

use anyhow::{bail, Context};
use gan_data::IdxWriter;
use gan_rundir::RunDir;

use crate::eval::DEFAULT_EVAL_SEED;

#[derive(clap::Args)]
pub struct Args {
    /// Run directory with model.safetensors
    run: PathBuf,
    /// Images to generate
    #[arg(long)]
    count: usize,
    /// Seed of the noise
    #[arg(long, default_value_t = DEFAULT_EVAL_SEED)]
    seed: u64,
    /// IDX file to write (MNIST's format: u8 pixels, count x 28 x 28); `.gz` gzips it
    #[arg(long)]
    out: PathBuf,
    /// For a conditional run: also write the digit asked for of each image, as an IDX labels
    /// file (MNIST's format, count bytes). The digits take turns 0, 1, ..., 9, 0, ..., so
    /// each is drawn equally often (within one when --count is not a multiple of 10)
    #[arg(long, value_name = "FILE")]
    labels_out: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.count == 0 {
        bail!("--count must be at least 1");
    }
    if args.count > u32::MAX as usize {
        bail!(
            "--count {}: an IDX file holds at most {} images",
            args.count,
            u32::MAX
        );
    }
    let run = RunDir::open(&args.run)?;
    let generator = gan_model::checkpoint::decode_model(&run.read_model()?)
        .with_context(|| format!("reading {}", run.file(gan_rundir::MODEL_FILE).display()))?
        .into_generator();
    if let (Some(path), false) = (&args.labels_out, generator.asks_for_digits()) {
        bail!(
            "--labels-out {}: {} holds a generator that is not asked for digits (unconditional, \
             or conditioned on its own clusters; model.conditional: true makes one that is)",
            path.display(),
            args.run.display()
        );
    }
    if let Some(labels) = &args.labels_out {
        if resolved(labels) == resolved(&args.out) {
            bail!(
                "--out {} and --labels-out {} are the same file: give the labels a name of \
                 their own",
                args.out.display(),
                labels.display()
            );
        }
    }
    // Written a piece at a time, so any count fits in memory.
    let gz = |p: &std::path::Path| p.extension().is_some_and(|e| e == "gz");
    let mut images = IdxWriter::create(&args.out, &[args.count, 28, 28], gz(&args.out))
        .with_context(|| format!("writing {}", args.out.display()))?;
    let mut labels = match &args.labels_out {
        Some(path) => Some(
            IdxWriter::create(path, &[args.count], gz(path))
                .with_context(|| format!("writing {}", path.display()))?,
        ),
        None => None,
    };
    let bar = crate::progress(args.count as u64, "images");
    gan_eval::for_each_generated(&generator, args.count, args.seed, &mut |pixels, digits| {
        let bytes: Vec<u8> = pixels
            .iter()
            .map(|&v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
            .collect();
        images.write(&bytes)?;
        if let (Some(w), Some(d)) = (labels.as_mut(), digits) {
            w.write(d)?;
        }
        bar.inc((pixels.len() / 784) as u64);
        Ok(())
    })
    .and_then(|()| images.finish())
    .with_context(|| format!("writing {}", args.out.display()))?;
    bar.finish_and_clear();
    println!(
        "{} images written to {} (IDX, u8, {} x 28 x 28)",
        args.count,
        args.out.display(),
        args.count
    );
    if let (Some(path), Some(w)) = (&args.labels_out, labels) {
        w.finish()
            .with_context(|| format!("writing {}", path.display()))?;
        println!(
            "their digits written to {} (IDX labels, u8, {})",
            path.display(),
            args.count
        );
    }
    Ok(())
}

/// `path` as the file system resolves it: its folder's canonical path (links and `..`
/// followed) and its name, and the file's own canonical path where it exists (a link).
fn resolved(path: &std::path::Path) -> PathBuf {
    if let Ok(p) = path.canonicalize() {
        return p;
    }
    let folder = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(p) => p.to_path_buf(),
        None => PathBuf::from("."),
    };
    let folder = folder.canonicalize().unwrap_or(folder);
    match path.file_name() {
        Some(name) => folder.join(name),
        None => folder,
    }
}
