//! The project's own MNIST classifier, a dfdx MLP: its penultimate layer is the feature space
//! of the Frechet distance and precision/recall, its softmax the class probabilities of the
//! Inception-Score analogue and the digit coverage.
//!
//! Trained with a fixed seed (`cargo xtask train-classifier`), cached as safetensors beside
//! the data, and retrained automatically when the cache is missing.

use std::path::{Path, PathBuf};
use std::time::Instant;

use dfdx::optim::{Adam, AdamConfig, Optimizer};
use dfdx::prelude::*;
use gan_data::{Batcher, Split, IMAGE_PIXELS};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::EvalError;

/// Width of the feature layer.
pub const FEATURES: usize = 256;

/// 784 -> 1024 (ReLU, dropout 0.2) -> 256 (ReLU) -> 10.
type Net = (
    (Linear<784, 1024>, ReLU, DropoutOneIn<5>),
    (Linear<1024, FEATURES>, ReLU),
    Linear<FEATURES, 10>,
);
type Built = <Net as BuildOnDevice<Cpu, f32>>::Built;

/// How the cached classifier was trained, and how well it does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifierCard {
    pub architecture: String,
    pub seed: u64,
    pub epochs: usize,
    pub batch_size: usize,
    pub test_accuracy: f64,
    pub validation_accuracy: f64,
    pub train_seconds: f64,
}

pub const ARCHITECTURE: &str = "mlp 784-1024(relu, dropout 0.2)-256(relu)-10, dfdx";

/// Training settings (the defaults reach about 98.8% on the test set).
#[derive(Debug, Clone, Copy)]
pub struct TrainOptions {
    pub seed: u64,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            seed: 0,
            epochs: 12,
            batch_size: 128,
            lr: 1e-3,
        }
    }
}

pub struct Classifier {
    dev: Cpu,
    net: Built,
    pub card: ClassifierCard,
}

/// Where the classifier is cached for a data folder: `<data.dir>/../classifier/`.
pub fn cache_dir(data_dir: &Path) -> PathBuf {
    data_dir
        .parent()
        .unwrap_or(Path::new("."))
        .join("classifier")
}

const WEIGHTS: &str = "mnist-mlp.safetensors";
const CARD: &str = "mnist-mlp.json";

impl Classifier {
    /// What `metrics.json` records of the classifier its numbers came from.
    pub fn info(&self) -> gan_rundir::ClassifierInfo {
        gan_rundir::ClassifierInfo {
            architecture: self.card.architecture.clone(),
            test_accuracy: self.card.test_accuracy,
        }
    }

    /// Trains on `train`, choosing nothing by the test set; reports validation and test accuracy.
    /// Stops with [`EvalError::Interrupted`] at the first batch where `stop` says so.
    /// (`progress` is a trait object so this is compiled, optimised, in this crate rather than
    /// in each caller's.)
    pub fn train(
        train: &Split,
        validation: &Split,
        test: &Split,
        opts: TrainOptions,
        progress: &mut dyn FnMut(usize, f64),
        stop: &dyn Fn() -> bool,
    ) -> Result<Classifier, EvalError> {
        let start = Instant::now();
        let dev = Cpu::seed_from_u64(opts.seed);
        let mut net = dev.build_module::<Net, f32>();
        let mut grads = net.alloc_grads();
        let mut opt = Adam::new(
            &net,
            AdamConfig {
                lr: opt_lr(opts.lr, 0, opts.epochs),
                ..Default::default()
            },
        );
        let mut order = Batcher::new(
            train.len(),
            opts.batch_size,
            ChaCha8Rng::seed_from_u64(opts.seed),
        )
        .map_err(|e| EvalError::Data(e.to_string()))?;
        let b = opts.batch_size;
        let mut images = vec![0.0f32; b * IMAGE_PIXELS];
        for epoch in 0..opts.epochs {
            opt.cfg.lr = opt_lr(opts.lr, epoch, opts.epochs);
            for _ in 0..order.steps_per_epoch() {
                if stop() {
                    return Err(EvalError::Interrupted);
                }
                let idx = order.next_batch();
                train.images.gather_f32(idx, &mut images);
                let mut onehot = vec![0.0f32; b * 10];
                for (row, &i) in idx.iter().enumerate() {
                    onehot[row * 10 + train.labels[i as usize] as usize] = 1.0;
                }
                let x = dev.tensor_from_vec(images.clone(), (b, Const::<IMAGE_PIXELS>));
                let y = dev.tensor_from_vec(onehot, (b, Const::<10>));
                let logits = net.forward_mut(x.traced(grads));
                let loss = cross_entropy_with_logits_loss(logits, y);
                grads = loss.backward();
                opt.update(&mut net, &grads)
                    .map_err(|e| EvalError::Classifier(format!("{e:?}")))?;
                net.zero_grads(&mut grads);
            }
            progress(epoch, accuracy(&dev, &net, validation));
        }
        let mut c = Classifier {
            dev,
            net,
            card: card(opts, 0.0, 0.0, 0.0),
        };
        c.card.validation_accuracy = c.accuracy(validation);
        c.card.test_accuracy = c.accuracy(test);
        c.card.train_seconds = start.elapsed().as_secs_f64();
        Ok(c)
    }

    /// Loads the cached classifier for `data_dir`, if there is one.
    pub fn load_cached(data_dir: &Path) -> Result<Option<Classifier>, EvalError> {
        let dir = cache_dir(data_dir);
        let (weights, card) = (dir.join(WEIGHTS), dir.join(CARD));
        if !weights.is_file() || !card.is_file() {
            return Ok(None);
        }
        let card: ClassifierCard = serde_json::from_str(
            &std::fs::read_to_string(&card)
                .map_err(|e| EvalError::Io(card.display().to_string(), e))?,
        )
        .map_err(|e| EvalError::Classifier(format!("{}: {e}", card.display())))?;
        if card.architecture != ARCHITECTURE {
            return Ok(None); // an older design: retrain
        }
        let dev = Cpu::default();
        let mut net = dev.build_module::<Net, f32>();
        net.load_safetensors(&weights).map_err(|e| {
            EvalError::Classifier(format!(
                "{}: {e:?}; delete it to retrain",
                weights.display()
            ))
        })?;
        Ok(Some(Classifier { dev, net, card }))
    }

    /// Saves weights and card under `cache_dir(data_dir)`, each file appearing whole.
    pub fn save(&self, data_dir: &Path) -> Result<PathBuf, EvalError> {
        let dir = cache_dir(data_dir);
        std::fs::create_dir_all(&dir).map_err(|e| EvalError::Io(dir.display().to_string(), e))?;
        let tmp = dir.join(format!(".{WEIGHTS}.partial"));
        self.net
            .save_safetensors(&tmp)
            .map_err(|e| EvalError::Classifier(format!("{}: {e}", tmp.display())))?;
        std::fs::rename(&tmp, dir.join(WEIGHTS))
            .map_err(|e| EvalError::Io(dir.display().to_string(), e))?;
        gan_rundir::write_json_atomic(&dir.join(CARD), &self.card)?;
        Ok(dir.join(WEIGHTS))
    }

    /// Features (`n x 256`) and class probabilities (`n x 10`) of `n x 784` images.
    pub fn features_and_probs(&self, images: &[f32]) -> (Vec<f32>, Vec<f32>) {
        predict(&self.dev, &self.net, images)
    }

    /// Fraction of `split` classified correctly.
    pub fn accuracy(&self, split: &Split) -> f64 {
        accuracy(&self.dev, &self.net, split)
    }
}

fn predict(dev: &Cpu, net: &Built, images: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let n = images.len() / IMAGE_PIXELS;
    let mut feats = Vec::with_capacity(n * FEATURES);
    let mut probs = Vec::with_capacity(n * 10);
    for chunk in images.chunks(1000 * IMAGE_PIXELS) {
        let rows = chunk.len() / IMAGE_PIXELS;
        let x = dev.tensor_from_vec(chunk.to_vec(), (rows, Const::<IMAGE_PIXELS>));
        // `forward` (not `forward_mut`): dropout is off at inference.
        let f = net.1.forward(net.0.forward(x));
        let p = net.2.forward(f.clone()).softmax::<Axis<1>>();
        feats.extend(f.as_vec());
        probs.extend(p.as_vec());
    }
    (feats, probs)
}

fn accuracy(dev: &Cpu, net: &Built, split: &Split) -> f64 {
    let (_, probs) = predict(dev, net, &split.images.to_f32());
    let correct = probs
        .chunks_exact(10)
        .zip(&split.labels)
        .filter(|(p, &l)| argmax(p) == l as usize)
        .count();
    correct as f64 / split.len().max(1) as f64
}

/// Step decay: the full rate for the first half, a tenth of it for the last quarter.
fn opt_lr(lr: f64, epoch: usize, epochs: usize) -> f64 {
    if epoch * 4 >= epochs * 3 {
        lr * 0.1
    } else if epoch * 2 >= epochs {
        lr * 0.3
    } else {
        lr
    }
}

fn card(o: TrainOptions, test: f64, valid: f64, secs: f64) -> ClassifierCard {
    ClassifierCard {
        architecture: ARCHITECTURE.into(),
        seed: o.seed,
        epochs: o.epochs,
        batch_size: o.batch_size,
        test_accuracy: test,
        validation_accuracy: valid,
        train_seconds: secs,
    }
}

pub fn argmax(p: &[f32]) -> usize {
    p.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
            if v > bv {
                (i, v)
            } else {
                (bi, bv)
            }
        })
        .0
}
