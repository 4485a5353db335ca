//! `gan compare`: what differs between runs, how their losses compare, whether they
//! reproduce each other bit for bit, and pictures of their curves and final samples.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use gan_plot::{labelled_rows, loss_panels, Curve};
use gan_rundir::{compare_losses, summarize, write_atomic, LossComparison, RunSummary};
use serde::Serialize;

use crate::table::{render, summary_row, SUMMARY_HEADER};

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Markdown,
    Csv,
    Json,
}

#[derive(clap::Args)]
pub struct Args {
    /// Run directories to compare, or sweep folders (their runs are taken)
    #[arg(required = true, value_name = "RUN")]
    runs: Vec<PathBuf>,
    /// Folder for the pictures (losses.png, samples.png) and report.md [default: runs/compare-<UTC time>]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Output format on stdout (csv: one row per run, with the keys that differ)
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

#[derive(Serialize)]
struct Report {
    runs: Vec<RunReport>,
    /// Spec keys whose values differ, with one value per run.
    spec_differences: BTreeMap<String, Vec<String>>,
    agreeing_keys: Vec<String>,
    pairs: Vec<PairReport>,
    /// Runs whose specs differ only in `seed` (and `name`): statistics over the seeds.
    seed_groups: Vec<SeedGroup>,
    pictures: Vec<String>,
    /// Sample pictures that could not be read (`path: why`), left out of `samples.png`.
    unreadable_pictures: Vec<String>,
}

#[derive(Serialize)]
struct RunReport {
    label: String,
    dir: String,
    summary: BTreeMap<String, String>,
    problem: Option<String>,
}

#[derive(Serialize)]
struct PairReport {
    first: String,
    second: String,
    losses: String,
    bit_identical_losses: bool,
    samples: String,
    identical_samples: bool,
}

#[derive(Serialize)]
struct SeedGroup {
    runs: Vec<String>,
    /// statistic -> (mean, sample standard deviation) over the group's runs
    stats: BTreeMap<String, (f64, f64)>,
}

pub fn run(args: Args, paths: &crate::Paths) -> anyhow::Result<()> {
    let dirs = expand(&args.runs)?;
    if dirs.len() < 2 {
        bail!("compare needs at least two runs (got {})", dirs.len());
    }
    let summaries: Vec<RunSummary> = dirs.iter().map(|d| summarize(d)).collect();
    let labels = labels(&dirs);
    let specs: Vec<BTreeMap<String, String>> = dirs.iter().map(|d| flat_spec(d)).collect();

    let all_keys: BTreeSet<&String> = specs.iter().flat_map(|s| s.keys()).collect();
    let mut spec_differences = BTreeMap::new();
    let mut agreeing_keys = Vec::new();
    for key in all_keys {
        let values: Vec<String> = specs
            .iter()
            .map(|s| s.get(key).cloned().unwrap_or_else(|| "?".into()))
            .collect();
        if values.iter().all(|v| v == &values[0]) {
            agreeing_keys.push(key.clone());
        } else {
            spec_differences.insert(key.clone(), values);
        }
    }

    let samples: Vec<BTreeMap<usize, Vec<u8>>> = summaries.iter().map(sample_map).collect();
    let mut pairs = Vec::new();
    for i in 0..dirs.len() {
        for j in i + 1..dirs.len() {
            let (a, b) = ((&summaries[i], &samples[i]), (&summaries[j], &samples[j]));
            pairs.push(pair(a, b, &labels[i], &labels[j]));
        }
    }

    let out = match args.out {
        Some(p) => p,
        None => paths.runs_dir().join(format!(
            "compare-{}",
            gan_rundir::compact_timestamp(std::time::SystemTime::now())
        )),
    };
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let (pictures, unreadable_pictures) = pictures(&summaries, &labels, &out)?;
    for u in &unreadable_pictures {
        eprintln!("warning: {u}; samples.png leaves it out");
    }

    let report = Report {
        runs: summaries
            .iter()
            .zip(&labels)
            .map(|(s, l)| RunReport {
                label: l.clone(),
                dir: s.dir.display().to_string(),
                summary: SUMMARY_HEADER
                    .iter()
                    .map(|h| h.to_string())
                    .zip(summary_row(s, l))
                    .collect(),
                problem: s.problem.clone(),
            })
            .collect(),
        seed_groups: seed_groups(&summaries, &labels, &specs),
        spec_differences,
        agreeing_keys,
        pairs,
        pictures: pictures.iter().map(|p| p.display().to_string()).collect(),
        unreadable_pictures,
    };
    let markdown = render_text(&report, &summaries, &labels, true);
    write_atomic(&out.join("report.md"), markdown.as_bytes())?;
    match args.format {
        Format::Table => print!("{}", render_text(&report, &summaries, &labels, false)),
        Format::Markdown => print!("{markdown}"),
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Csv => print_csv(&report, &summaries, &labels)?,
    }
    Ok(())
}

/// Run directories named on the command line, with sweep folders replaced by their runs.
/// A path that is neither (no `run.json`, no `sweep.json`) is an error naming it: comparing
/// whatever folder was typed by mistake would report nonsense with a success status.
pub(crate) fn expand(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut not_runs = Vec::new();
    for p in paths {
        if p.join(gan_rundir::RUN_FILE).is_file() {
            // Damaged runs are still compared: their problems show in the report.
            out.push(p.clone());
        } else if p.join(gan_rundir::SWEEP_FILE).is_file() {
            let runs = gan_rundir::sweep_runs(p);
            out.extend(runs.with_context(|| format!("reading {}", p.display()))?);
        } else {
            not_runs.push(p.display().to_string());
        }
    }
    if !not_runs.is_empty() {
        bail!(
            "not a run directory or sweep folder (no {} or {}): {}; give runs such as \
             runs/<name>-<time>, or a sweep's --run-dir",
            gan_rundir::RUN_FILE,
            gan_rundir::SWEEP_FILE,
            not_runs.join(", ")
        );
    }
    Ok(out)
}

/// Short unique names: the folder name, or the path when two runs share a folder name.
fn labels(dirs: &[PathBuf]) -> Vec<String> {
    let names: Vec<String> = dirs
        .iter()
        .map(|d| {
            d.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    names
        .iter()
        .zip(dirs)
        .map(|(n, d)| {
            if names.iter().filter(|m| *m == n).count() > 1 {
                d.display().to_string()
            } else {
                n.clone()
            }
        })
        .collect()
}

/// `spec.yaml` as `dotted.key -> value` (empty when it is missing or unreadable: the
/// run's problem shows in its summary).
fn flat_spec(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(dir.join(gan_rundir::SPEC_FILE))
        .ok()
        .and_then(|t| serde_yaml::from_str::<serde_yaml::Value>(&t).ok())
        .map(|v| gan_spec::flatten(&v))
        .unwrap_or_default()
}

/// A run's summary with its sample pictures (epoch -> PNG bytes).
type RunWithSamples<'a> = (&'a RunSummary, &'a BTreeMap<usize, Vec<u8>>);

fn pair((a, sa): RunWithSamples, (b, sb): RunWithSamples, la: &str, lb: &str) -> PairReport {
    let cmp = compare_losses(&a.losses, &b.losses);
    let (losses, bit_identical_losses) = match &cmp {
        _ if a.losses.is_empty() || b.losses.is_empty() => ("no loss log to compare".to_string(), false),
        LossComparison::Identical { steps } => (format!("bit-identical ({steps} steps)"), true),
        LossComparison::Prefix { common, longer_by, first_is_longer } => (
            format!(
                "identical for the {common} steps both have; {} has {longer_by} more",
                if *first_is_longer { la } else { lb }
            ),
            false,
        ),
        LossComparison::Diverged { step, column, first, second, max_diff, max_diff_step, max_diff_column } => (
            format!(
                "diverge at step {step}: {column} {first} vs {second}; largest difference after: {max_diff:.4} ({max_diff_column}, step {max_diff_step})"
            ),
            false,
        ),
    };
    let common: Vec<&usize> = sa.keys().filter(|e| sb.contains_key(e)).collect();
    let differing: Vec<&&usize> = common.iter().filter(|e| sa[e] != sb[e]).collect();
    let (samples, identical_samples) = if common.is_empty() {
        ("no sample pictures in common".to_string(), false)
    } else if differing.is_empty() {
        (format!("all {} pictures identical", common.len()), true)
    } else {
        (
            format!(
                "{} of {} pictures identical; first difference {:03}.png",
                common.len() - differing.len(),
                common.len(),
                differing[0]
            ),
            false,
        )
    };
    PairReport {
        first: la.to_string(),
        second: lb.to_string(),
        losses,
        bit_identical_losses,
        samples,
        identical_samples,
    }
}

fn sample_map(s: &RunSummary) -> BTreeMap<usize, Vec<u8>> {
    match gan_rundir::RunDir::open(&s.dir) {
        Ok(d) => d
            .sample_paths()
            .into_iter()
            .filter_map(|(e, p)| std::fs::read(p).ok().map(|b| (e, b)))
            .collect(),
        Err(_) => BTreeMap::new(),
    }
}

/// Groups runs whose specs agree except for `seed` and `name`; groups with two or more
/// seeds get the mean and standard deviation of every headline number.
fn seed_groups(
    summaries: &[RunSummary],
    labels: &[String],
    specs: &[BTreeMap<String, String>],
) -> Vec<SeedGroup> {
    let mut groups: BTreeMap<Vec<(String, String)>, Vec<usize>> = BTreeMap::new();
    for (i, spec) in specs.iter().enumerate() {
        let key: Vec<(String, String)> = spec
            .iter()
            .filter(|(k, _)| *k != "seed" && *k != "name")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        groups.entry(key).or_default().push(i);
    }
    let distinct_seeds = |members: &Vec<usize>| {
        members
            .iter()
            .map(|&i| specs[i].get("seed"))
            .collect::<BTreeSet<_>>()
            .len()
    };
    groups
        .into_values()
        .filter(|members| distinct_seeds(members) >= 2)
        .map(|members| {
            let mut stats = BTreeMap::new();
            let columns: [(&str, Statistic); 8] = [
                ("final epoch d_loss", |s| s.last_epoch.map(|m| m.d_loss)),
                ("final epoch g_loss", |s| s.last_epoch.map(|m| m.g_loss)),
                ("final epoch D(x)", |s| s.last_epoch.map(|m| m.d_real)),
                ("final epoch D(G(z))", |s| s.last_epoch.map(|m| m.d_fake)),
                ("parzen_ll", |s| s.headline.and_then(|h| h.parzen_ll)),
                ("fid", |s| s.headline.and_then(|h| h.fid)),
                ("coverage", |s| {
                    s.headline.and_then(|h| h.coverage.map(|c| c as f64))
                }),
                ("label_accuracy", |s| {
                    s.headline.and_then(|h| h.label_accuracy)
                }),
            ];
            for (name, get) in columns {
                let values: Vec<f64> = members.iter().filter_map(|&i| get(&summaries[i])).collect();
                if values.len() == members.len() {
                    stats.insert(name.to_string(), mean_std(&values));
                }
            }
            SeedGroup {
                runs: members.iter().map(|&i| labels[i].clone()).collect(),
                stats,
            }
        })
        .collect()
}

/// Reads one headline number of a run.
type Statistic = fn(&RunSummary) -> Option<f64>;

/// Mean and sample standard deviation (n - 1).
fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// Writes `losses.png` and `samples.png` (each run's last sample picture) into `out`;
/// returns their paths, and the pictures that could not be read (`path: why`), which
/// `samples.png` leaves out: one damaged picture does not stop the comparison.
fn pictures(
    summaries: &[RunSummary],
    labels: &[String],
    out: &Path,
) -> anyhow::Result<(Vec<PathBuf>, Vec<String>)> {
    let mut written = Vec::new();
    let curves: Vec<Curve> = summaries
        .iter()
        .zip(labels)
        .filter(|(s, _)| !s.losses.is_empty())
        .map(|(s, l)| Curve::from_losses(l, &s.losses))
        .collect();
    if !curves.is_empty() {
        let png = loss_panels(&curves, "Per-epoch means of the loss log")?;
        let path = out.join("losses.png");
        write_atomic(&path, &png)?;
        written.push(path);
    }
    let (mut rows, mut unreadable) = (Vec::new(), Vec::new());
    for (s, l) in summaries.iter().zip(labels) {
        let last = gan_rundir::RunDir::open(&s.dir)
            .ok()
            .and_then(|d| d.sample_paths().pop());
        if let Some((epoch, path)) = last {
            match image::open(&path) {
                Ok(img) => rows.push((format!("{l} (epoch {epoch:03})"), img.to_luma8())),
                Err(e) => unreadable.push(format!("{} is unreadable ({e})", path.display())),
            }
        }
    }
    if !rows.is_empty() {
        let path = out.join("samples.png");
        write_atomic(&path, &labelled_rows(&rows)?)?;
        written.push(path);
    }
    Ok((written, unreadable))
}

fn render_text(r: &Report, summaries: &[RunSummary], labels: &[String], markdown: bool) -> String {
    let h = |t: &str| {
        if markdown {
            format!("\n## {t}\n\n")
        } else {
            format!("\n{t}\n")
        }
    };
    let mut s = String::new();
    if markdown {
        s.push_str("# Run comparison\n");
    }
    s.push_str(&h("Runs (last epoch's means)"));
    let rows: Vec<Vec<String>> = summaries
        .iter()
        .zip(labels)
        .map(|(x, l)| summary_row(x, l))
        .collect();
    s.push_str(&render(&SUMMARY_HEADER, &rows, markdown));
    s.push('\n');
    for (run, l) in summaries.iter().zip(labels) {
        if let Some(p) = &run.problem {
            s.push_str(&format!("{l}: {p}\n"));
        }
    }

    s.push_str(&h("Spec"));
    if r.spec_differences.is_empty() {
        s.push_str("The specs are identical.\n");
    } else {
        let mut header = vec!["key"];
        header.extend(labels.iter().map(String::as_str));
        let rows: Vec<Vec<String>> = r
            .spec_differences
            .iter()
            .map(|(k, v)| {
                std::iter::once(k.clone())
                    .chain(v.iter().cloned())
                    .collect()
            })
            .collect();
        s.push_str(&render(&header, &rows, markdown));
        s.push('\n');
    }
    s.push_str(&format!(
        "{} keys agree: {}\n",
        r.agreeing_keys.len(),
        r.agreeing_keys.join(", ")
    ));

    s.push_str(&h("Reproducibility"));
    let rows: Vec<Vec<String>> = r
        .pairs
        .iter()
        .map(|p| {
            vec![
                format!("{} vs {}", p.first, p.second),
                p.losses.clone(),
                p.samples.clone(),
            ]
        })
        .collect();
    s.push_str(&render(&["pair", "losses.csv", "samples"], &rows, markdown));
    s.push('\n');

    for g in &r.seed_groups {
        s.push_str(&h(&format!(
            "Across seeds ({} runs: {})",
            g.runs.len(),
            g.runs.join(", ")
        )));
        let rows: Vec<Vec<String>> = g
            .stats
            .iter()
            .map(|(k, (m, sd))| vec![k.clone(), format!("{m:.4}"), format!("{sd:.4}")])
            .collect();
        s.push_str(&render(&["statistic", "mean", "std"], &rows, markdown));
        s.push('\n');
    }
    if !r.pictures.is_empty() || !r.unreadable_pictures.is_empty() {
        s.push_str(&h("Pictures"));
        for p in &r.pictures {
            s.push_str(&format!("{p}\n"));
        }
        for u in &r.unreadable_pictures {
            s.push_str(&format!("{u}: left out of samples.png\n"));
        }
    }
    s
}

fn print_csv(r: &Report, summaries: &[RunSummary], labels: &[String]) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(std::io::stdout());
    let mut header: Vec<String> = SUMMARY_HEADER.iter().map(|h| h.to_string()).collect();
    header.extend(r.spec_differences.keys().cloned());
    w.write_record(&header)?;
    for (i, (s, l)) in summaries.iter().zip(labels).enumerate() {
        let mut row = summary_row(s, l);
        row.extend(r.spec_differences.values().map(|v| v[i].clone()));
        w.write_record(&row)?;
    }
    w.flush()?;
    Ok(())
}
