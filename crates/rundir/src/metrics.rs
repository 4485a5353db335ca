//! `metrics.json`: sample-quality numbers of a run's final generator.

use serde::{Deserialize, Serialize};

pub const METRICS_FORMAT: &str = "gan-metrics-v1";

/// The GAN paper's Parzen-window estimate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parzen {
    /// Window width chosen on the validation images.
    pub sigma: f64,
    /// Mean log-likelihood of the test images, in nats.
    pub mean_ll: f64,
    /// Its standard error, std / sqrt(N).
    pub std_err: f64,
    /// `[sigma, mean validation log-likelihood]` for every width tried.
    pub sigma_search: Vec<[f64; 2]>,
}

/// Which digits the classifier sees in the samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    /// Samples per predicted class 0..9.
    pub histogram: Vec<u64>,
    /// Classes holding at least 5% of the samples: 10 is full coverage, fewer is mode collapse.
    pub classes_over_5pct: u64,
    /// KL divergence of the predicted-class distribution to the test set's.
    pub kl_to_test: f64,
}

/// All metrics of one set of images (generated, or real for the reference row).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleMetrics {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parzen: Option<Parzen>,
    /// Frechet distance of classifier features to the test images' (an MNIST analogue of FID).
    pub fid: f64,
    /// exp(E[KL(p(y|x) || p(y))]), at most 10.
    pub inception_score: f64,
    pub coverage: Coverage,
    /// Fraction of samples inside the k=3 nearest-neighbour balls of the test features.
    pub precision: f64,
    /// Fraction of test images inside the k=3 balls of the sample features.
    pub recall: f64,
    /// A conditional generator's: the fraction of samples the classifier reads as the digit
    /// that was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_accuracy: Option<f64>,
}

/// The classifier the numbers were measured with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifierInfo {
    pub architecture: String,
    pub test_accuracy: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub format: String,
    /// Generated images evaluated.
    pub samples: usize,
    /// Seed of the evaluation noise.
    pub eval_seed: u64,
    pub classifier: ClassifierInfo,
    pub generated: SampleMetrics,
    /// Wall time of the evaluation.
    pub seconds: f64,
}
