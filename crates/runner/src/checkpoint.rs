//! What a checkpoint holds beyond the trainer's state: where in the data order and in the
//! epoch the run stands, and the wall times so far. All of it rides in the safetensors
//! metadata of `gan_model::checkpoint::encode_any_state`.

use std::collections::BTreeMap;

use anyhow::Context;
use gan_data::{Batcher, BatcherState};
use gan_model::checkpoint::{decode_any_state, encode_any_state};
use gan_model::{AdamConfig, AnyState, AnyTrainer};

/// A step boundary: `step_in_epoch` steps of `epoch` are done (0 at an epoch's start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Position {
    pub epoch: usize,
    pub step_in_epoch: usize,
}

/// Everything needed to continue a run exactly.
#[derive(Debug, Clone)]
pub(crate) struct Resume {
    pub trainer: AnyState,
    pub batcher: BatcherState,
    pub epoch: usize,
    pub step_in_epoch: usize,
    pub epoch_seconds: Vec<f64>,
    pub partial_seconds: f64,
    /// SHA-256 of `losses.csv` up to this checkpoint's step (absent in older checkpoints).
    pub losses_sha256: Option<String>,
}

const EPOCH: &str = "run.epoch";
const STEP_IN_EPOCH: &str = "run.step_in_epoch";
const ORDER_DRAWN_AT: &str = "run.batcher.order_drawn_at";
const NEXT: &str = "run.batcher.next";
const EPOCH_SECONDS: &str = "run.epoch_seconds";
const PARTIAL_SECONDS: &str = "run.partial_epoch_seconds";
const LOSSES_SHA256: &str = "run.losses_sha256";

pub(crate) fn encode(
    trainer: &AnyTrainer,
    batches: &Batcher,
    at: Position,
    epoch_seconds: &[f64],
    partial: f64,
    losses_sha256: String,
) -> Vec<u8> {
    let b = batches.state();
    let extra = BTreeMap::from([
        (EPOCH.to_string(), at.epoch.to_string()),
        (STEP_IN_EPOCH.to_string(), at.step_in_epoch.to_string()),
        (
            ORDER_DRAWN_AT.to_string(),
            b.order_drawn_at
                .map(|p| p.to_string())
                .unwrap_or_else(|| "none".into()),
        ),
        (NEXT.to_string(), b.next.to_string()),
        (
            EPOCH_SECONDS.to_string(),
            epoch_seconds
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(","),
        ),
        (PARTIAL_SECONDS.to_string(), partial.to_string()),
        (LOSSES_SHA256.to_string(), losses_sha256),
    ]);
    encode_any_state(&trainer.state(), &extra)
}

pub(crate) fn decode(bytes: &[u8], adam: AdamConfig) -> anyhow::Result<Resume> {
    let (trainer, meta) = decode_any_state(bytes, adam)?;
    let get = |k: &str| {
        meta.get(k)
            .with_context(|| format!("metadata `{k}` is missing"))
    };
    let num = |k: &str| -> anyhow::Result<usize> {
        get(k)?.parse().with_context(|| format!("metadata `{k}`"))
    };
    let order_drawn_at = match get(ORDER_DRAWN_AT)?.as_str() {
        "none" => None,
        v => Some(
            v.parse()
                .with_context(|| format!("metadata `{ORDER_DRAWN_AT}`"))?,
        ),
    };
    let epoch_seconds = get(EPOCH_SECONDS)?
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<f64>())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("metadata `{EPOCH_SECONDS}`"))?;
    Ok(Resume {
        batcher: BatcherState {
            order_drawn_at,
            next: num(NEXT)?,
        },
        epoch: num(EPOCH)?,
        step_in_epoch: num(STEP_IN_EPOCH)?,
        epoch_seconds,
        partial_seconds: get(PARTIAL_SECONDS)?.parse().unwrap_or(0.0),
        losses_sha256: meta.get(LOSSES_SHA256).cloned(),
        trainer,
    })
}
