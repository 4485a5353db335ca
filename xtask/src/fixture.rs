//! `cargo xtask make-fixture`: rebuilds `crates/data/fixtures/mnist-small` from full MNIST.

use std::path::PathBuf;

use anyhow::Context;
use gan_data::{load_pair, write_idx, MnistFile, IMAGE_SIDE};

/// Training-file images kept: a twelfth (100) become the fixture's validation split.
const TRAIN_IMAGES: usize = 1200;
const TEST_IMAGES: usize = 500;

#[derive(clap::Args)]
pub struct Args {
    /// Folder with the full MNIST files [default: <workspace>/data/mnist]
    #[arg(long)]
    from: Option<PathBuf>,
    /// Output folder [default: <workspace>/crates/data/fixtures/mnist-small]
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let from = crate::mnist_dir(args.from);
    let out = args.out.unwrap_or_else(gan_data::fixture_dir);
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    for (images, labels, keep) in [
        (MnistFile::TrainImages, MnistFile::TrainLabels, TRAIN_IMAGES),
        (MnistFile::TestImages, MnistFile::TestLabels, TEST_IMAGES),
    ] {
        let split = load_pair(&from, images, labels)?.take_first(keep);
        let n = split.len();
        let write = |file: MnistFile, dims: &[usize], data: &[u8]| {
            let path = out.join(format!("{}.gz", file.name()));
            write_idx(&path, dims, data, true)
                .with_context(|| format!("writing {}", path.display()))
        };
        write(
            images,
            &[n, IMAGE_SIDE, IMAGE_SIDE],
            split.images.as_bytes(),
        )?;
        write(labels, &[n], &split.labels)?;
    }
    println!("fixture written to {}", out.display());
    Ok(())
}
