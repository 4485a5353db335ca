//! Pictures of runs as PNG: grids of generated digits (and, with the tracking tools, loss
//! curves). Encoding is deterministic, so identical runs give byte-identical files.

mod curves;
mod samples;
mod text;

pub use curves::{loss_panels, Curve};
pub use samples::{encode_png, labelled_rows, sample_grid, SampleGrid};

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("cannot encode a PNG: {0}")]
    Encode(String),
}
