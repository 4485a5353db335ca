//! The per-run summary row shared by `runs` and `compare`, and table rendering.

use comfy_table::{presets, Cell, CellAlignment, ContentArrangement, Table};
use gan_rundir::RunSummary;

/// Columns of a run summary.
pub const SUMMARY_HEADER: [&str; 14] = [
    "run",
    "name",
    "status",
    "seed",
    "epochs",
    "d_loss",
    "g_loss",
    "D(x)",
    "D(G(z))",
    "wall",
    "parzen_ll",
    "fid",
    "coverage",
    "label_acc",
];

/// One run as text cells (last epoch's means; metrics when present; `-` when unknown).
pub fn summary_row(s: &RunSummary, label: &str) -> Vec<String> {
    let dash = || "-".to_string();
    let info = s.info.as_ref();
    let f4 = |v: Option<f64>| v.map(|v| format!("{v:.4}")).unwrap_or_else(dash);
    let m = s.last_epoch;
    let h = s.headline.unwrap_or_default();
    vec![
        label.to_string(),
        info.map(|i| i.name.clone()).unwrap_or_else(dash),
        s.shown.to_string(),
        info.map(|i| i.seed.to_string()).unwrap_or_else(dash),
        info.map(|i| format!("{}/{}", i.epochs_done, i.epochs_planned))
            .unwrap_or_else(dash),
        f4(m.map(|m| m.d_loss)),
        f4(m.map(|m| m.g_loss)),
        f4(m.map(|m| m.d_real)),
        f4(m.map(|m| m.d_fake)),
        info.map(|i| duration(i.wall_seconds()))
            .unwrap_or_else(dash),
        h.parzen_ll.map(|v| format!("{v:.1}")).unwrap_or_else(dash),
        h.fid.map(|v| format!("{v:.2}")).unwrap_or_else(dash),
        h.coverage.map(|v| format!("{v}/10")).unwrap_or_else(dash),
        h.label_accuracy
            .map(|v| format!("{:.1}%", 100.0 * v))
            .unwrap_or_else(dash),
    ]
}

/// `4m12s`, `1h03m`, `12.3s`.
pub fn duration(secs: f64) -> String {
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else if secs < 3600.0 {
        format!("{}m{:02}s", (secs / 60.0) as u64, (secs % 60.0) as u64)
    } else {
        format!(
            "{}h{:02}m",
            (secs / 3600.0) as u64,
            ((secs % 3600.0) / 60.0) as u64
        )
    }
}

/// A table for the terminal (aligned, numbers right-aligned) or as Markdown.
pub fn render(header: &[&str], rows: &[Vec<String>], markdown: bool) -> String {
    let mut t = Table::new();
    if markdown {
        t.load_preset(presets::ASCII_MARKDOWN);
    } else {
        // Columns separated by spaces, one rule under the header: easy to read and to grep.
        t.load_preset(presets::NOTHING);
        t.set_style(comfy_table::TableComponent::HeaderLines, '-');
        t.set_style(comfy_table::TableComponent::MiddleHeaderIntersections, ' ');
    }
    t.set_content_arrangement(ContentArrangement::Disabled);
    t.set_header(header.iter().map(Cell::new));
    for row in rows {
        t.add_row(row.iter().map(|c| {
            let numeric = c.parse::<f64>().is_ok() || c.ends_with("/10");
            Cell::new(c).set_alignment(if numeric {
                CellAlignment::Right
            } else {
                CellAlignment::Left
            })
        }));
    }
    t.to_string()
}
