//! The four MNIST files and the splits of TensorFlow's `input_data.read_data_sets`.

use std::path::{Path, PathBuf};

use crate::{read_idx, DataError};

pub const IMAGE_SIDE: usize = 28;
pub const IMAGE_PIXELS: usize = IMAGE_SIDE * IMAGE_SIDE;

/// The four files of MNIST under their official names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MnistFile {
    TrainImages,
    TrainLabels,
    TestImages,
    TestLabels,
}

impl MnistFile {
    pub const ALL: [MnistFile; 4] = [
        MnistFile::TrainImages,
        MnistFile::TrainLabels,
        MnistFile::TestImages,
        MnistFile::TestLabels,
    ];

    /// The official, uncompressed file name.
    pub fn name(self) -> &'static str {
        match self {
            MnistFile::TrainImages => "train-images-idx3-ubyte",
            MnistFile::TrainLabels => "train-labels-idx1-ubyte",
            MnistFile::TestImages => "t10k-images-idx3-ubyte",
            MnistFile::TestLabels => "t10k-labels-idx1-ubyte",
        }
    }

    /// Where the file is in `dir`: the uncompressed name if present, else `<name>.gz`.
    pub fn locate(self, dir: &Path) -> Result<PathBuf, DataError> {
        let plain = dir.join(self.name());
        if plain.is_file() {
            return Ok(plain);
        }
        let gz = dir.join(format!("{}.gz", self.name()));
        if gz.is_file() {
            return Ok(gz);
        }
        Err(DataError::Missing {
            dir: dir.to_path_buf(),
            name: self.name(),
        })
    }
}

/// Images as compact bytes, `len() x 784`, row-major.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Images {
    pixels: Vec<u8>,
}

impl Images {
    /// Wraps `n x 784` bytes; `pixels.len()` must be a multiple of 784.
    pub fn from_pixels(pixels: Vec<u8>) -> Self {
        assert_eq!(pixels.len() % IMAGE_PIXELS, 0, "not whole 28x28 images");
        Images { pixels }
    }

    pub fn len(&self) -> usize {
        self.pixels.len() / IMAGE_PIXELS
    }

    pub fn is_empty(&self) -> bool {
        self.pixels.is_empty()
    }

    pub fn image(&self, i: usize) -> &[u8] {
        &self.pixels[i * IMAGE_PIXELS..(i + 1) * IMAGE_PIXELS]
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.pixels
    }

    /// Writes images `indices` into `out` (`indices.len() x 784`) as `f32` in [0, 1],
    /// scaled the way `input_data` does it: `x * (1/255)` in single precision.
    pub fn gather_f32(&self, indices: &[u32], out: &mut [f32]) {
        assert_eq!(out.len(), indices.len() * IMAGE_PIXELS);
        const SCALE: f32 = 1.0 / 255.0;
        for (row, &i) in out.chunks_exact_mut(IMAGE_PIXELS).zip(indices) {
            for (o, &p) in row.iter_mut().zip(self.image(i as usize)) {
                *o = p as f32 * SCALE;
            }
        }
    }

    /// All images as `f32` in [0, 1], `len() x 784`.
    pub fn to_f32(&self) -> Vec<f32> {
        let indices: Vec<u32> = (0..self.len() as u32).collect();
        let mut out = vec![0.0; self.pixels.len()];
        self.gather_f32(&indices, &mut out);
        out
    }

    fn split_off(&mut self, at: usize) -> Images {
        Images {
            pixels: self.pixels.split_off(at * IMAGE_PIXELS),
        }
    }

    fn truncate(&mut self, n: usize) {
        self.pixels.truncate(n * IMAGE_PIXELS);
    }
}

/// Images with their labels.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Split {
    pub images: Images,
    pub labels: Vec<u8>,
}

impl Split {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Keeps only the first `n` examples (all of them if there are fewer).
    pub fn take_first(mut self, n: usize) -> Split {
        let n = n.min(self.len());
        self.images.truncate(n);
        self.labels.truncate(n);
        self
    }

    fn split_off(&mut self, at: usize) -> Split {
        Split {
            images: self.images.split_off(at),
            labels: self.labels.split_off(at),
        }
    }
}

/// MNIST split as TensorFlow's tutorial loader does it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mnist {
    /// The training file without its validation part: 55,000 images for MNIST.
    pub train: Split,
    /// The first twelfth of the training file: MNIST's first 5,000 images.
    pub validation: Split,
    /// The 10,000 test images.
    pub test: Split,
}

impl Mnist {
    /// Loads all four files from `dir` (each uncompressed or gzipped).
    pub fn load(dir: &Path) -> Result<Mnist, DataError> {
        let (train, validation) = load_training(dir)?;
        let test = load_test(dir)?;
        Ok(Mnist {
            train,
            validation,
            test,
        })
    }
}

/// How many leading images of a training file form the validation split: 5,000 of MNIST's
/// 60,000 as in `input_data`, and the same twelfth of a smaller file such as the fixture.
pub fn validation_len(training_file_len: usize) -> usize {
    training_file_len / 12
}

/// Loads the training file and splits it into (train, validation).
pub fn load_training(dir: &Path) -> Result<(Split, Split), DataError> {
    let mut all = load_pair(dir, MnistFile::TrainImages, MnistFile::TrainLabels)?;
    let train = all.split_off(validation_len(all.len()));
    Ok((train, all))
}

/// Loads the test files.
pub fn load_test(dir: &Path) -> Result<Split, DataError> {
    load_pair(dir, MnistFile::TestImages, MnistFile::TestLabels)
}

/// Loads one image file and its label file as they are, without splitting.
pub fn load_pair(dir: &Path, images: MnistFile, labels: MnistFile) -> Result<Split, DataError> {
    let images_path = images.locate(dir)?;
    let labels_path = labels.locate(dir)?;
    // Labels first: they are small, so a mismatch is found before 47 MB are decoded.
    let label_arr = read_idx(&labels_path, 1)?;
    let image_arr = read_idx(&images_path, 3)?;
    let (n, rows, cols) = (image_arr.dims[0], image_arr.dims[1], image_arr.dims[2]);
    if rows != IMAGE_SIDE || cols != IMAGE_SIDE {
        return Err(DataError::WrongImageSize {
            path: images_path,
            rows,
            cols,
        });
    }
    if label_arr.dims[0] != n {
        return Err(DataError::CountMismatch {
            images_path,
            labels_path,
            images: n,
            labels: label_arr.dims[0],
        });
    }
    if let Some((index, &value)) = label_arr.data.iter().enumerate().find(|(_, &v)| v > 9) {
        return Err(DataError::BadLabel {
            path: labels_path,
            index,
            value,
        });
    }
    Ok(Split {
        images: Images::from_pixels(image_arr.data),
        labels: label_arr.data,
    })
}

/// A small real-MNIST set committed to the repository so tests run offline: the first
/// 1,200 training images and the first 500 test images, in the official file layout.
/// See `fixtures/README.md` for its origin and licence.
pub fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/mnist-small")
}
