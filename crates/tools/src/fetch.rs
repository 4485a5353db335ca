//! `gan fetch-mnist` (also `cargo xtask fetch-mnist`).

use std::path::PathBuf;

use anyhow::Context;
use gan_fetch::{default_sources, fetch_mnist, Options, Source, DEFAULT_MIRRORS, MIRROR_ENV};

#[derive(clap::Args)]
#[command(after_help = format!(
    "Without --from, ${MIRROR_ENV} is used if set, else these mirrors in order:\n  {}",
    DEFAULT_MIRRORS.join("\n  ")
))]
pub struct Args {
    /// Folder that receives the four uncompressed files [default: data/mnist]
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Base URL, file:// URL or local folder holding the .gz (or uncompressed) files
    #[arg(long, value_name = "SOURCE")]
    from: Option<String>,
    /// Fetch again even if verified files are already present
    #[arg(long)]
    force: bool,
}

pub fn run(args: Args, paths: &crate::Paths) -> anyhow::Result<()> {
    let dir = paths.mnist_dir(args.dir);
    let sources = match &args.from {
        Some(s) => vec![Source::parse(s)],
        None => default_sources(),
    };
    let report = fetch_mnist(&Options {
        force: args.force,
        verbose: true,
        ..Options::new(&dir, sources)
    })
    .with_context(|| format!("fetching MNIST into {}", dir.display()))?;
    println!("{report}");
    Ok(())
}
