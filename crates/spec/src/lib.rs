//! Experiment specs: the YAML file a run starts from.
//!
//! Every key has the tutorial's value as its default, so a spec holds only what differs.
//! Loading checks everything a user can get wrong and says where: YAML syntax (line and
//! column), unknown keys (with the closest known key), wrong types, out-of-range values,
//! and the same for `--set key=value` overrides, which go through the same checks.
//!
//! [`KEYS`] documents every key; `docs/spec.md` is the longer reference.

mod load;

use serde::{Deserialize, Serialize};

pub use load::{
    apply_override, expand_sweep, flatten, load_spec, normalized_yaml, parse_spec, SpecError,
    SweepPoint, MAX_NESTING, MAX_SWEEP_POINTS,
};

/// A full experiment description. Serialised back (`to_yaml`) it is the resolved spec a
/// run directory keeps, enough to rerun the run exactly.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Spec {
    /// Names the run directory; defaults to the spec file's stem.
    pub name: String,
    /// The seed every random stream of the run derives from.
    pub seed: u64,
    pub data: DataSpec,
    pub model: ModelSpec,
    pub train: TrainSpec,
    pub samples: SamplesSpec,
    pub eval: EvalSpec,
    pub checkpoint: CheckpointSpec,
    /// A grid over other keys: `seed: [1, 2, 3]`, `train.lr: [0.0002, 0.001]`. A spec with a
    /// sweep runs once per grid point (see [`expand_sweep`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<serde_yaml::Mapping>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataSpec {
    /// Folder with the MNIST files.
    pub dir: String,
    /// Train on only the first N images of the training split.
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSpec {
    /// The networks' kind: perceptrons (the tutorial's) or a DCGAN.
    pub arch: ArchSpec,
    pub noise_dim: usize,
    /// Width of the one hidden layer of each network, unless `g_hidden` / `d_hidden` say more.
    pub hidden: usize,
    /// G's hidden layer widths, input side first (`[]`: none); `null` means `[hidden]`.
    pub g_hidden: Option<Vec<usize>>,
    /// D's hidden layer widths; `null` means `[hidden]`.
    pub d_hidden: Option<Vec<usize>>,
    pub g_activation: ActivationSpec,
    pub d_activation: ActivationSpec,
    /// The slope of `leaky_relu` for negative inputs.
    #[serde(deserialize_with = "float")]
    pub leaky_slope: f64,
    pub g_output: GOutput,
    #[serde(deserialize_with = "float")]
    pub init_std: f64,
    /// Probability of dropping each of D's hidden units in training (0: no dropout).
    #[serde(deserialize_with = "float")]
    pub d_dropout: f64,
    /// A conditional GAN: the digit's label, one-hot, is an input of both networks.
    pub conditional: bool,
    /// Self-conditioning: the networks are conditioned on k-means clusters of the training
    /// images instead of labels, G asked for each as often as the data has it (0: off).
    pub clusters: usize,
    /// A DCGAN's G feature maps: channels at 7 x 7, then at 14 x 14.
    pub g_channels: Vec<usize>,
    /// A DCGAN's D feature maps: channels at 14 x 14, then at 7 x 7.
    pub d_channels: Vec<usize>,
    /// Whether a DCGAN's D batch-normalises its second convolution (PyTorch's example does).
    pub d_batch_norm: bool,
    /// Units of a dense hidden layer between a DCGAN's D convolutions and its logit (0: none).
    pub d_dense: usize,
}

impl ModelSpec {
    /// G's hidden widths as trained.
    pub fn g_widths(&self) -> Vec<usize> {
        self.g_hidden.clone().unwrap_or_else(|| vec![self.hidden])
    }

    /// D's hidden widths as trained.
    pub fn d_widths(&self) -> Vec<usize> {
        self.d_hidden.clone().unwrap_or_else(|| vec![self.hidden])
    }
}

/// The networks' kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArchSpec {
    /// Multi-layer perceptrons (the tutorial's family).
    #[default]
    Mlp,
    /// Convolutional networks with batch normalisation (Radford et al. 2016).
    Dcgan,
}

/// A hidden-layer nonlinearity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivationSpec {
    /// The tutorial's.
    #[default]
    Relu,
    /// With `model.leaky_slope` for negative inputs.
    LeakyRelu,
    Tanh,
}

/// G's output nonlinearity, which fixes the pixel range it trains on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GOutput {
    /// Pixels in [0, 1] (the tutorial).
    #[default]
    Sigmoid,
    /// Pixels in [-1, 1]: real images are scaled to it, pictures and metrics map it back.
    Tanh,
}

/// The GAN's pair of losses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossSpec {
    /// The tutorial's: cross-entropy for D, G maximises `mean(log D(G(z)))`.
    NonSaturating,
    /// The paper's original: G minimises `mean(log(1 - D(G(z))))`.
    Minimax,
    /// LSGAN (Mao et al. 2017).
    LeastSquares,
    /// The hinge loss (Lim and Ye 2017).
    Hinge,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainSpec {
    pub epochs: usize,
    pub batch_size: usize,
    #[serde(deserialize_with = "float")]
    pub lr: f64,
    #[serde(deserialize_with = "float")]
    pub beta1: f64,
    #[serde(deserialize_with = "float")]
    pub beta2: f64,
    #[serde(deserialize_with = "float")]
    pub eps: f64,
    /// `g_loss` is its name from before the other losses existed.
    #[serde(alias = "g_loss")]
    pub loss: LossSpec,
    /// G's learning rate when it differs from `lr`.
    #[serde(deserialize_with = "optional_float")]
    pub lr_g: Option<f64>,
    /// D's learning rate when it differs from `lr`.
    #[serde(deserialize_with = "optional_float")]
    pub lr_d: Option<f64>,
    /// D updates per step, each on its own batch and noise.
    pub d_steps: usize,
    /// One-sided label smoothing: D's target for real images is `1 - label_smoothing`.
    #[serde(deserialize_with = "float")]
    pub label_smoothing: f64,
    /// Decay of a moving average of G's weights used for pictures, the model and evaluation.
    #[serde(deserialize_with = "optional_float")]
    pub g_ema: Option<f64>,
    /// Flush denormal floats to zero on the training threads, as TensorFlow's CPU executor
    /// does for the tutorial's program. Denormal arithmetic is slow on Intel cores (microcode
    /// assists): a late step ran 15% faster flushed on a Xeon. `false` keeps IEEE denormals.
    pub flush_denormals: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamplesSpec {
    /// Images per sample picture (0: none).
    pub count: usize,
    /// Pictures after epoch 0 and after every `every`-th epoch (as the tutorial: 0, 9, 19, ...).
    pub every: usize,
}

/// Sample-quality metrics at the end of the run (`metrics.json`); off in the tutorial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalSpec {
    pub enabled: bool,
    /// Generated images evaluated.
    pub samples: usize,
    /// Seed of the evaluation noise (the same for every run, so runs compare on equal terms).
    pub seed: u64,
}

impl Default for EvalSpec {
    fn default() -> Self {
        EvalSpec {
            enabled: false,
            samples: 10_000,
            seed: 0,
        }
    }
}

/// Checkpoints of the full training state, so an interrupted run resumes exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckpointSpec {
    /// A checkpoint after every N epochs (0: only when interrupted).
    pub every: usize,
    /// How many of the newest checkpoints are kept.
    pub keep: usize,
}

impl Default for CheckpointSpec {
    fn default() -> Self {
        CheckpointSpec { every: 1, keep: 3 }
    }
}

/// The default data folder: relative to where the runner is started, normally the workspace.
pub const DEFAULT_DATA_DIR: &str = "data/mnist";

impl Default for DataSpec {
    fn default() -> Self {
        DataSpec {
            dir: DEFAULT_DATA_DIR.into(),
            limit: None,
        }
    }
}

impl Default for ModelSpec {
    fn default() -> Self {
        ModelSpec {
            arch: ArchSpec::Mlp,
            noise_dim: 128,
            hidden: 256,
            g_hidden: None,
            d_hidden: None,
            g_activation: ActivationSpec::Relu,
            d_activation: ActivationSpec::Relu,
            leaky_slope: 0.2,
            g_output: GOutput::Sigmoid,
            init_std: 0.01,
            d_dropout: 0.0,
            conditional: false,
            clusters: 0,
            g_channels: vec![128, 64],
            d_channels: vec![64, 128],
            d_batch_norm: true,
            d_dense: 0,
        }
    }
}

impl Default for TrainSpec {
    fn default() -> Self {
        TrainSpec {
            epochs: 100,
            batch_size: 100,
            lr: 0.0002,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            loss: LossSpec::NonSaturating,
            lr_g: None,
            lr_d: None,
            d_steps: 1,
            label_smoothing: 0.0,
            g_ema: None,
            flush_denormals: true,
        }
    }
}

impl Default for SamplesSpec {
    fn default() -> Self {
        SamplesSpec {
            count: 10,
            every: 10,
        }
    }
}

/// A float key: a YAML number, or `nan` / `inf` / `-inf` written plainly (YAML's own
/// spellings are `.nan` / `.inf`), so every spelling of a non-finite value reaches the range
/// check and gets the same message instead of a type error for some of them.
fn float<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(f64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Number(v) => Ok(v),
        Raw::Text(t) => match t
            .trim()
            .trim_start_matches('+')
            .to_ascii_lowercase()
            .as_str()
        {
            "nan" | ".nan" => Ok(f64::NAN),
            "inf" | ".inf" | "infinity" => Ok(f64::INFINITY),
            "-inf" | "-.inf" | "-infinity" => Ok(f64::NEG_INFINITY),
            _ => Err(serde::de::Error::custom(format!(
                "invalid type: string {t:?}, expected a number"
            ))),
        },
    }
}

/// [`float`] for a key that may also be `null`.
fn optional_float<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    #[derive(Deserialize)]
    struct Wrapped(#[serde(deserialize_with = "float")] f64);
    Ok(Option::<Wrapped>::deserialize(d)?.map(|w| w.0))
}

/// One documented key: dotted path, default as written in YAML, meaning.
pub struct KeyDoc {
    pub key: &'static str,
    pub default: &'static str,
    pub meaning: &'static str,
}

/// Every key a spec may hold. Tests check this list against [`Spec`] and the README.
pub const KEYS: &[KeyDoc] = &[
    KeyDoc {
        key: "name",
        default: "<spec file stem>",
        meaning: "names the run directory runs/<name>-<UTC time>",
    },
    KeyDoc {
        key: "seed",
        default: "0",
        meaning: "seed of every random stream (init, data order, noise, samples)",
    },
    KeyDoc {
        key: "data.dir",
        default: DEFAULT_DATA_DIR,
        meaning: "folder with MNIST; the default one is fetched when empty",
    },
    KeyDoc {
        key: "data.limit",
        default: "null",
        meaning: "train on the first N images of the 55,000-image train split",
    },
    KeyDoc {
        key: "model.arch",
        default: "mlp",
        meaning: "the networks: mlp (perceptrons, the tutorial's) or dcgan (convolutional)",
    },
    KeyDoc {
        key: "model.noise_dim",
        default: "128",
        meaning: "length of the noise vector z",
    },
    KeyDoc {
        key: "model.hidden",
        default: "256",
        meaning: "hidden units of G's and D's one hidden layer (unless g_hidden / d_hidden)",
    },
    KeyDoc {
        key: "model.g_hidden",
        default: "null",
        meaning: "G's hidden layer widths, e.g. [512, 512] ([] for none; null: [model.hidden])",
    },
    KeyDoc {
        key: "model.d_hidden",
        default: "null",
        meaning: "D's hidden layer widths (null: [model.hidden])",
    },
    KeyDoc {
        key: "model.g_activation",
        default: "relu",
        meaning: "G's hidden nonlinearity: relu (tutorial), leaky_relu or tanh",
    },
    KeyDoc {
        key: "model.d_activation",
        default: "relu",
        meaning: "D's hidden nonlinearity: relu (tutorial), leaky_relu or tanh",
    },
    KeyDoc {
        key: "model.leaky_slope",
        default: "0.2",
        meaning: "leaky_relu's slope for negative inputs",
    },
    KeyDoc {
        key: "model.g_output",
        default: "sigmoid",
        meaning: "G's output: sigmoid on [0, 1] pixels (tutorial) or tanh on [-1, 1]",
    },
    KeyDoc {
        key: "model.init_std",
        default: "0.01",
        meaning: "std of the N(0, std) weight init (biases 0)",
    },
    KeyDoc {
        key: "model.conditional",
        default: "false",
        meaning:
            "a conditional GAN: the digit, one-hot, goes into G after the noise and into D (mlp: after the pixels; dcgan: a projection, the logit gains embed[digit] . D's last features); pictures: a row per digit",
    },
    KeyDoc {
        key: "model.clusters",
        default: "0",
        meaning:
            "self-conditioning without labels: k-means (this many clusters, 2 to 256) on the training pixels, the networks conditioned on the cluster ids as model.conditional is on digits, G asked for each cluster as often as the data has it (0: off)",
    },
    KeyDoc {
        key: "model.d_dropout",
        default: "0.0",
        meaning: "probability of dropping each of D's hidden units (dcgan: after each activation) in training (0: none)",
    },
    KeyDoc {
        key: "model.g_channels",
        default: "[128, 64]",
        meaning: "dcgan: G's channels at 7 x 7, then at 14 x 14",
    },
    KeyDoc {
        key: "model.d_channels",
        default: "[64, 128]",
        meaning: "dcgan: D's channels at 14 x 14, then at 7 x 7",
    },
    KeyDoc {
        key: "model.d_batch_norm",
        default: "true",
        meaning: "dcgan: batch normalisation in D (false: a bias instead, as TF's DCGAN tutorial)",
    },
    KeyDoc {
        key: "model.d_dense",
        default: "0",
        meaning: "dcgan: units of a dense hidden layer (D's activation) between D's convolutions and its logit (0: none; InfoGAN's MNIST D has 1024)",
    },
    KeyDoc {
        key: "train.epochs",
        default: "100",
        meaning: "passes over the training images",
    },
    KeyDoc {
        key: "train.batch_size",
        default: "100",
        meaning: "images (and noise vectors) per step",
    },
    KeyDoc {
        key: "train.lr",
        default: "0.0002",
        meaning: "Adam learning rate of both networks (unless lr_g / lr_d)",
    },
    KeyDoc {
        key: "train.lr_g",
        default: "null",
        meaning: "G's learning rate, when it differs from train.lr",
    },
    KeyDoc {
        key: "train.lr_d",
        default: "null",
        meaning: "D's learning rate, when it differs from train.lr",
    },
    KeyDoc {
        key: "train.beta1",
        default: "0.9",
        meaning: "Adam beta1 (TensorFlow's default)",
    },
    KeyDoc {
        key: "train.beta2",
        default: "0.999",
        meaning: "Adam beta2 (TensorFlow's default)",
    },
    KeyDoc {
        key: "train.eps",
        default: "1.0e-8",
        meaning: "Adam epsilon (TensorFlow's default)",
    },
    KeyDoc {
        key: "train.loss",
        default: "non_saturating",
        meaning: "non_saturating (tutorial), minimax, least_squares or hinge (also: train.g_loss)",
    },
    KeyDoc {
        key: "train.d_steps",
        default: "1",
        meaning: "D updates per G update, each on its own batch and noise",
    },
    KeyDoc {
        key: "train.label_smoothing",
        default: "0.0",
        meaning: "one-sided label smoothing: D's target for real images is 1 - this",
    },
    KeyDoc {
        key: "train.g_ema",
        default: "null",
        meaning:
            "decay of a moving average of G's weights for pictures, model and eval (e.g. 0.999)",
    },
    KeyDoc {
        key: "train.flush_denormals",
        default: "true",
        meaning: "flush denormal floats to zero while training, as TensorFlow does (faster)",
    },
    KeyDoc {
        key: "samples.count",
        default: "10",
        meaning: "images in each sample picture (0: no pictures)",
    },
    KeyDoc {
        key: "eval.enabled",
        default: "false",
        meaning: "measure sample quality at the end of the run into metrics.json",
    },
    KeyDoc {
        key: "eval.samples",
        default: "10000",
        meaning: "generated images evaluated (Parzen, FID, IS, coverage, precision/recall)",
    },
    KeyDoc {
        key: "eval.seed",
        default: "0",
        meaning: "seed of the evaluation noise, the same for every run by default",
    },
    KeyDoc {
        key: "checkpoint.every",
        default: "1",
        meaning: "save the full training state after every N epochs (0: only on Ctrl-C)",
    },
    KeyDoc {
        key: "checkpoint.keep",
        default: "3",
        meaning: "newest checkpoints kept in checkpoints/",
    },
    KeyDoc {
        key: "samples.every",
        default: "10",
        meaning: "a picture after epoch 0 and every N-th epoch: 000, 009, 019, ...",
    },
];

impl Spec {
    /// The spec as YAML with every key present.
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).expect("a spec always serialises")
    }

    /// Whether a sample picture is saved after `epoch` (0-based): after epoch 0 and every
    /// `samples.every`-th epoch, as the tutorial does. A test, not a list, so nothing grows
    /// with `train.epochs`.
    pub fn is_sample_epoch(&self, epoch: usize) -> bool {
        let every = self.samples.every.max(1);
        self.samples.count > 0
            && epoch < self.train.epochs
            && (epoch == 0 || (epoch + 1).is_multiple_of(every))
    }
}
