//! IDX parsing on generated files (round trips and every malformed header we can think of),
//! MNIST splits and the committed real-MNIST fixture.

use std::io::Write;
use std::path::{Path, PathBuf};

use gan_data::{
    fixture_dir, load_test, load_training, read_idx, validation_len, write_idx, DataError, Mnist,
    MnistFile,
};

fn write_bytes(dir: &Path, name: &str, bytes: &[u8], gzip: bool) -> PathBuf {
    let path = dir.join(name);
    let mut f = std::fs::File::create(&path).unwrap();
    if gzip {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        f.write_all(&enc.finish().unwrap()).unwrap();
    } else {
        f.write_all(bytes).unwrap();
    }
    path
}

fn header(ndims: u8, dims: &[u32]) -> Vec<u8> {
    let mut h = vec![0, 0, 8, ndims];
    for d in dims {
        h.extend_from_slice(&d.to_be_bytes());
    }
    h
}

fn images_bytes(n: u32) -> Vec<u8> {
    let mut b = header(3, &[n, 28, 28]);
    b.extend((0..n as usize * 784).map(|i| (i * 7 % 256) as u8));
    b
}

#[test]
fn round_trip_plain_and_gzipped() {
    let tmp = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..3 * 4 * 5).map(|i| i as u8).collect();
    for gzip in [false, true] {
        let path = tmp.path().join(format!("a{gzip}"));
        write_idx(&path, &[3, 4, 5], &data, gzip).unwrap();
        let back = read_idx(&path, 3).unwrap();
        assert_eq!(back.dims, vec![3, 4, 5]);
        assert_eq!(back.data, data);
    }
}

#[test]
fn gzip_is_detected_by_content_not_name() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = images_bytes(2);
    let gz_named_plain = write_bytes(tmp.path(), "x.gz", &bytes, false);
    let plain_named_gz = write_bytes(tmp.path(), "x.idx", &bytes, true);
    assert_eq!(read_idx(&gz_named_plain, 3).unwrap().dims, vec![2, 28, 28]);
    assert_eq!(read_idx(&plain_named_gz, 3).unwrap().dims, vec![2, 28, 28]);
}

fn expect_err(bytes: &[u8], gzip: bool, ndims: usize) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let path = write_bytes(tmp.path(), "bad-file", bytes, gzip);
    let err = read_idx(&path, ndims).expect_err("malformed file must be rejected");
    let msg = err.to_string();
    assert!(msg.contains("bad-file"), "message names the file: {msg}");
    msg
}

#[test]
fn malformed_headers_are_clear_errors() {
    for gzip in [false, true] {
        // Bad magic: labels magic where images are expected, and garbage.
        let m = expect_err(&header(1, &[5]), gzip, 3);
        assert!(
            m.contains("magic number 0x00000801, expected 0x00000803"),
            "{m}"
        );
        let m = expect_err(b"PK\x03\x04 not idx at all", gzip, 3);
        assert!(m.contains("magic number"), "{m}");
        // Element type other than unsigned bytes.
        let mut float_idx = header(3, &[1, 28, 28]);
        float_idx[2] = 0x0d;
        assert!(expect_err(&float_idx, gzip, 3).contains("magic number"));
        // Header cut inside the dimensions.
        let m = expect_err(&header(3, &[10, 28])[..10], gzip, 3);
        assert!(m.contains("ends inside the IDX header"), "{m}");
        // Empty file.
        assert!(expect_err(&[], gzip, 1).contains("ends inside the IDX header"));
        // Data truncated.
        let mut short = images_bytes(3);
        short.truncate(short.len() - 1);
        let m = expect_err(&short, gzip, 3);
        assert!(m.contains("holds only 2351"), "{m}");
        // Extra bytes after the data.
        let mut long = images_bytes(1);
        long.push(0);
        assert!(expect_err(&long, gzip, 3).contains("more bytes than its header"));
    }
}

#[test]
fn a_header_claiming_four_billion_images_is_rejected_without_allocating() {
    for gzip in [false, true] {
        let mut lie = header(3, &[u32::MAX, 28, 28]);
        lie.extend(std::iter::repeat_n(7, 784 * 2));
        let m = expect_err(&lie, gzip, 3);
        assert!(m.contains("4294967295"), "{m}");
        assert!(m.contains("holds only 1568"), "{m}");
        let mut lie = header(3, &[u32::MAX, u32::MAX, u32::MAX]);
        lie.extend([1, 2, 3]);
        let m = expect_err(&lie, gzip, 3);
        assert!(m.contains("too large") || m.contains("holds only 3"), "{m}");
    }
}

#[test]
fn a_corrupt_gzip_stream_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write_bytes(tmp.path(), "cut.gz", &images_bytes(50), true);
    let full = std::fs::read(&path).unwrap();
    std::fs::write(&path, &full[..full.len() / 2]).unwrap();
    let m = read_idx(&path, 3).unwrap_err().to_string();
    assert!(m.contains("cut.gz"), "{m}");
}

fn write_mnist_pair(dir: &Path, n_images: u32, n_labels: u32, rows: u32, label: u8, test: bool) {
    let (img, lab) = if test {
        (MnistFile::TestImages, MnistFile::TestLabels)
    } else {
        (MnistFile::TrainImages, MnistFile::TrainLabels)
    };
    let mut images = header(3, &[n_images, rows, 28]);
    images.extend(std::iter::repeat_n(255, (n_images * rows * 28) as usize));
    write_bytes(dir, img.name(), &images, false);
    let mut labels = header(1, &[n_labels]);
    labels.extend(std::iter::repeat_n(label, n_labels as usize));
    write_bytes(dir, &format!("{}.gz", lab.name()), &labels, true);
}

#[test]
fn mnist_level_checks() {
    let tmp = tempfile::tempdir().unwrap();
    write_mnist_pair(tmp.path(), 24, 23, 28, 1, false);
    let m = load_training(tmp.path()).unwrap_err().to_string();
    assert!(
        m.contains("holds 24 images") && m.contains("holds 23 labels"),
        "{m}"
    );

    write_mnist_pair(tmp.path(), 24, 24, 27, 1, false);
    assert!(matches!(
        load_training(tmp.path()),
        Err(DataError::WrongImageSize { rows: 27, .. })
    ));

    write_mnist_pair(tmp.path(), 24, 24, 28, 10, false);
    assert!(load_training(tmp.path())
        .unwrap_err()
        .to_string()
        .contains("label 10"));

    let empty = tempfile::tempdir().unwrap();
    let m = load_test(empty.path()).unwrap_err().to_string();
    assert!(
        m.contains("t10k-images-idx3-ubyte") && m.contains("gan fetch-mnist"),
        "{m}"
    );
}

#[test]
fn splits_follow_input_data() {
    assert_eq!(validation_len(60_000), 5_000);
    let tmp = tempfile::tempdir().unwrap();
    write_mnist_pair(tmp.path(), 24, 24, 28, 3, false);
    write_mnist_pair(tmp.path(), 5, 5, 28, 4, true);
    let m = Mnist::load(tmp.path()).unwrap();
    assert_eq!(
        (m.validation.len(), m.train.len(), m.test.len()),
        (2, 22, 5)
    );
    assert_eq!(m.train.take_first(7).len(), 7);
    let px = m.test.images.to_f32();
    assert!(px.iter().all(|&p| p == 1.0));
}

#[test]
fn the_fixture_is_real_mnist() {
    let m = Mnist::load(&fixture_dir()).unwrap();
    assert_eq!(
        (m.validation.len(), m.train.len(), m.test.len()),
        (100, 1100, 500)
    );
    // The official training file's first labels are 5 0 4 1 9 2 1 3 1 4.
    assert_eq!(&m.validation.labels[..10], &[5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
    assert_eq!(&m.test.labels[..10], &[7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
    let px = m.train.images.to_f32();
    assert!(px.iter().all(|&p| (0.0..=1.0).contains(&p)));
    let mean = px.iter().sum::<f32>() / px.len() as f32;
    assert!(
        (0.10..0.16).contains(&mean),
        "MNIST's mean pixel is about 0.13, got {mean}"
    );
}
