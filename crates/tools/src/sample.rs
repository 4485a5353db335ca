//! `gan sample`: images from a run's generator as an IDX file (MNIST's format), and for a
//! conditional run the digits they were asked for.

use std::path::PathBuf;

use anyhow::{bail, Context};
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
    let run = RunDir::open(&args.run)?;
    let generator = gan_model::checkpoint::decode_model(&run.read_model()?)
        .with_context(|| format!("reading {}", run.file(gan_rundir::MODEL_FILE).display()))?
        .into_generator();
    let labels = gan_eval::requested_labels(&generator, args.count);
    if let (Some(path), None) = (&args.labels_out, &labels) {
        bail!(
            "--labels-out {}: {} holds a generator that is not asked for digits (unconditional, \
             or conditioned on its own clusters; model.conditional: true makes one that is)",
            path.display(),
            args.run.display()
        );
    }
    let images = gan_eval::generated_images(&generator, args.count, args.seed);
    let bytes: Vec<u8> = images
        .iter()
        .map(|&v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    let gz = args.out.extension().is_some_and(|e| e == "gz");
    gan_data::write_idx(&args.out, &[args.count, 28, 28], &bytes, gz)
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "{} images written to {} (IDX, u8, {} x 28 x 28)",
        args.count,
        args.out.display(),
        args.count
    );
    if let (Some(path), Some(labels)) = (&args.labels_out, &labels) {
        let gz = path.extension().is_some_and(|e| e == "gz");
        gan_data::write_idx(path, &[args.count], labels, gz)
            .with_context(|| format!("writing {}", path.display()))?;
        println!(
            "their digits written to {} (IDX labels, u8, {})",
            path.display(),
            args.count
        );
    }
    Ok(())
}
