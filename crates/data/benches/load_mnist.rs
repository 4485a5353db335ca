//! Loading all of MNIST (target: well under a second from gzipped IDX, release build).
//!
//! Uses the fetched copy in `data/mnist` (`cargo xtask fetch-mnist`) or `MNIST_DIR`; the
//! gzipped variant is made once in a temporary folder before timing. Without MNIST the
//! benchmark says so and measures nothing.

use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, Criterion};
use gan_data::{load_pair, write_idx, Mnist, MnistFile, IMAGE_SIDE};

fn mnist_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("MNIST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist"));
    MnistFile::TrainImages.locate(&dir).is_ok().then_some(dir)
}

fn gzipped_copy(from: &Path, to: &Path) {
    for (images, labels) in [
        (MnistFile::TrainImages, MnistFile::TrainLabels),
        (MnistFile::TestImages, MnistFile::TestLabels),
    ] {
        let s = load_pair(from, images, labels).expect("MNIST loads");
        let gz = |f: MnistFile| to.join(format!("{}.gz", f.name()));
        write_idx(
            &gz(images),
            &[s.len(), IMAGE_SIDE, IMAGE_SIDE],
            s.images.as_bytes(),
            true,
        )
        .unwrap();
        write_idx(&gz(labels), &[s.len()], &s.labels, true).unwrap();
    }
}

fn load(c: &mut Criterion) {
    let Some(dir) = mnist_dir() else {
        eprintln!(
            "load_mnist: no MNIST in data/mnist; run `cargo xtask fetch-mnist` or set MNIST_DIR"
        );
        return;
    };
    let gz_dir = tempfile::tempdir().unwrap();
    gzipped_copy(&dir, gz_dir.path());
    let mut group = c.benchmark_group("load_mnist");
    group.sample_size(10);
    for (name, dir) in [("gzipped", gz_dir.path()), ("as_fetched", dir.as_path())] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let m = Mnist::load(dir).expect("MNIST loads");
                assert_eq!(m.train.len() + m.validation.len() + m.test.len(), 70_000);
                m
            })
        });
    }
    group.finish();
}

criterion_group!(benches, load);
criterion_main!(benches);
