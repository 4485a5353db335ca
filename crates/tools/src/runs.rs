//! `gan runs`: one line per run, newest first.

use std::path::PathBuf;

use anyhow::Context;
use gan_rundir::list_runs;

use crate::table::{render, summary_row, SUMMARY_HEADER};

#[derive(clap::Args)]
pub struct Args {
    /// Folder holding run directories [default: runs]
    dir: Option<PathBuf>,
    /// Print a Markdown table
    #[arg(long)]
    markdown: bool,
}

pub fn run(args: Args, paths: &crate::Paths) -> anyhow::Result<()> {
    let root = args.dir.unwrap_or_else(|| paths.runs_dir());
    let runs = list_runs(&root).with_context(|| format!("listing {}", root.display()))?;
    if runs.is_empty() {
        println!("no runs in {}", root.display());
        return Ok(());
    }
    let mut header: Vec<&str> = SUMMARY_HEADER.to_vec();
    header.push("note");
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|s| {
            let label = s
                .dir
                .strip_prefix(&root)
                .unwrap_or(&s.dir)
                .display()
                .to_string();
            let mut row = summary_row(s, &label);
            row.push(s.problem.clone().unwrap_or_default());
            row
        })
        .collect();
    print!("{}", render(&header, &rows, args.markdown));
    println!();
    Ok(())
}
