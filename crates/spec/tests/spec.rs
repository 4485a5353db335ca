//! Spec loading: defaults, every kind of user mistake, overrides, round trips.

use gan_spec::{parse_spec, LossSpec, Spec, KEYS};

fn parse(text: &str, overrides: &[&str]) -> Result<Spec, String> {
    let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    parse_spec(text, "exp.yaml", "exp", &o).map_err(|e| e.to_string())
}

#[test]
fn an_empty_spec_is_the_tutorial() {
    let s = parse("", &[]).unwrap();
    assert_eq!(s.name, "exp");
    assert_eq!(
        (s.model.noise_dim, s.model.hidden, s.model.init_std),
        (128, 256, 0.01)
    );
    assert_eq!(
        (s.train.epochs, s.train.batch_size, s.train.lr),
        (100, 100, 0.0002)
    );
    assert_eq!(
        (s.train.beta1, s.train.beta2, s.train.eps),
        (0.9, 0.999, 1e-8)
    );
    assert_eq!(s.train.loss, LossSpec::NonSaturating);
    assert_eq!((s.samples.count, s.samples.every), (10, 10));
    assert_eq!(s.data.limit, None);
    let epochs: Vec<usize> = (0..200).filter(|&e| s.is_sample_epoch(e)).collect();
    assert_eq!(epochs, vec![0, 9, 19, 29, 39, 49, 59, 69, 79, 89, 99]);
}

#[test]
fn unknown_keys_name_the_line_and_the_closest_key() {
    let e = parse("seed: 1\ntrain:\n  batch_size: 10\n  epoch: 3\n", &[]).unwrap_err();
    assert!(e.contains("exp.yaml line 4"), "{e}");
    assert!(e.contains("unknown key `train.epoch`"), "{e}");
    assert!(e.contains("did you mean `train.epochs`?"), "{e}");
    let e = parse("epochs: 3\n", &[]).unwrap_err();
    assert!(e.contains("did you mean `train.epochs`?"), "{e}");
    let e = parse("zzzzzzzzzz: 3\n", &[]).unwrap_err();
    assert!(!e.contains("did you mean"), "no far-fetched guess: {e}");
}

#[test]
fn syntax_and_type_errors_carry_line_and_column() {
    let e = parse("seed: 1\ntrain: [1, 2\n", &[]).unwrap_err();
    assert!(e.contains("YAML syntax error at line"), "{e}");
    let e = parse("seed: 1\ntrain:\n  batch_size: many\n", &[]).unwrap_err();
    assert!(e.contains("exp.yaml line 3"), "{e}");
    assert!(e.contains("batch_size"), "{e}");
    let e = parse("train:\n  g_loss: wasserstein\n", &[]).unwrap_err();
    assert!(e.contains("non_saturating") && e.contains("minimax"), "{e}");
    let e = parse("- a\n- b\n", &[]).unwrap_err();
    assert!(e.contains("mapping"), "{e}");
}

#[test]
fn out_of_range_values_are_rejected() {
    for (text, key) in [
        (
            "train:\n  batch_size: 0\n",
            "train.batch_size must be at least 1",
        ),
        ("train:\n  epochs: 0\n", "train.epochs must be at least 1"),
        (
            "train:\n  lr: -0.1\n",
            "train.lr must be a positive finite number",
        ),
        (
            "train:\n  lr: .nan\n",
            "train.lr must be a positive finite number",
        ),
        ("train:\n  lr: nan\n", "3.4e38 (got NaN)"),
        (
            "train:\n  lr: 1e39\n",
            "train.lr must be a positive finite number",
        ),
        ("train:\n  eps: 1e-300\n", "(got 1e-300, which is 0 in f32)"),
        (
            "train:\n  beta1: 0.99999999\n",
            "train.beta1 must be in [0, 1) in single precision",
        ),
        ("model:\n  init_std: .inf\n", "model.init_std"),
        ("train:\n  beta2: 1.0\n", "train.beta2 must be in [0, 1)"),
        ("model:\n  hidden: 0\n", "model.hidden must be at least 1"),
        ("model:\n  init_std: -1\n", "model.init_std"),
        ("data:\n  limit: 0\n", "data.limit must be at least 1"),
        ("samples:\n  every: 0\n", "samples.every must be at least 1"),
        ("name: ../escape\n", "name `../escape`"),
    ] {
        let e = parse(text, &[]).unwrap_err();
        assert!(
            e.contains(key) && e.starts_with("exp.yaml"),
            "{text:?}: {e}"
        );
    }
    let e = parse("train:\n  epochs: -1\n", &[]).unwrap_err();
    assert!(e.contains("line 2") && e.contains("epochs"), "{e}");
    // Every spelling of a non-finite value, in the file or on the command line, gets the
    // same range message rather than a type error for some of them.
    for v in ["nan", ".nan", "NaN", "inf", "-.inf"] {
        let e = parse("", &[&format!("train.lr={v}")]).unwrap_err();
        assert!(
            e.contains("train.lr must be a positive finite number"),
            "{v}: {e}"
        );
    }
    let e = parse("train:\n  lr: fast\n", &[]).unwrap_err();
    assert!(
        e.contains("line 2") && e.contains("expected a number"),
        "{e}"
    );
}

#[test]
fn overrides_are_applied_and_type_checked() {
    let s = parse(
        "seed: 1\n",
        &[
            "train.epochs=2",
            "seed=7",
            "data.limit=500",
            "train.g_loss=minimax",
        ],
    )
    .unwrap();
    assert_eq!(
        (s.train.epochs, s.seed, s.data.limit, s.train.loss),
        (2, 7, Some(500), LossSpec::Minimax)
    );
    let s = parse("data:\n  limit: 10\n", &["data.limit=null"]).unwrap();
    assert_eq!(s.data.limit, None);

    let e = parse("", &["train.epochs=two"]).unwrap_err();
    assert!(e.starts_with("--set train.epochs=two"), "{e}");
    let e = parse("", &["train.epoch=2"]).unwrap_err();
    assert!(
        e.contains("unknown key `train.epoch`") && e.contains("train.epochs"),
        "{e}"
    );
    let e = parse("", &["train.epochs"]).unwrap_err();
    assert!(e.contains("KEY=VALUE"), "{e}");
    let e = parse("", &["train.batch_size=0"]).unwrap_err();
    assert!(
        e.contains("--set train.batch_size=0") && e.contains("at least 1"),
        "{e}"
    );
}

#[test]
fn the_resolved_spec_reads_back_identically() {
    let s = parse(
        "name: x\nseed: 3\ntrain:\n  lr: 0.001\n",
        &["data.limit=40"],
    )
    .unwrap();
    let again = parse(&s.to_yaml(), &[]).unwrap();
    assert_eq!(s, again);
    assert!(s.to_yaml().contains("limit: 40"));
}

/// Every leaf of the spec is documented in `KEYS` and the other way round.
#[test]
fn the_key_list_is_complete() {
    let from_type: Vec<String> = gan_spec::flatten(&serde_yaml::to_value(Spec::default()).unwrap())
        .into_keys()
        .collect();
    let mut documented: Vec<String> = KEYS.iter().map(|k| k.key.to_string()).collect();
    documented.sort();
    assert_eq!(from_type, documented);
}

#[test]
fn sweeps_expand_in_written_order_with_the_last_key_fastest() {
    let s = parse(
        "name: grid\nseed: 9\nsweep:\n  train.lr: [0.0002, 0.001]\n  seed: [1, 2, 3]\n",
        &[],
    )
    .unwrap();
    let points = gan_spec::expand_sweep(&s, "exp.yaml").unwrap();
    let names: Vec<&str> = points.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "train.lr=0.0002+seed=1",
            "train.lr=0.0002+seed=2",
            "train.lr=0.0002+seed=3",
            "train.lr=0.001+seed=1",
            "train.lr=0.001+seed=2",
            "train.lr=0.001+seed=3",
        ]
    );
    assert_eq!((points[4].spec.train.lr, points[4].spec.seed), (0.001, 2));
    assert_eq!(points[4].index, 4);
    assert!(points
        .iter()
        .all(|p| p.spec.sweep.is_none() && p.spec.name == "grid"));
    // The same point as a plain run with the same overrides: identical specs.
    let o: Vec<String> = points[4].overrides.clone();
    let plain = parse_spec("name: grid\nseed: 9\n", "exp.yaml", "exp", &o).unwrap();
    assert_eq!(plain, points[4].spec);
    assert!(gan_spec::expand_sweep(&parse("", &[]).unwrap(), "x")
        .unwrap()
        .is_empty());
}

#[test]
fn bad_sweeps_are_rejected_before_anything_runs() {
    for (text, want) in [
        (
            "sweep:\n  train.lrr: [1, 2]\n",
            "unknown key `sweep.train.lrr`, did you mean `train.lr`?",
        ),
        ("sweep:\n  seed: 3\n", "sweep.seed must be a non-empty list"),
        (
            "sweep:\n  seed: []\n",
            "sweep.seed must be a non-empty list",
        ),
        ("sweep:\n  seed: [1, 1]\n", "lists 1 twice"),
        ("sweep:\n  name: [a, b]\n", "cannot vary `name`"),
        (
            "sweep:\n  train.batch_size: [10, 0]\n",
            "train.batch_size must be at least 1",
        ),
        ("sweep:\n  train.epochs: [1, many]\n", "invalid type"),
        ("sweep: {}\n", "sweep is empty"),
    ] {
        let err = parse(text, &[])
            .and_then(|s| {
                gan_spec::expand_sweep(&s, "exp.yaml")
                    .map_err(|e| e.to_string())
                    .map(|_| s)
            })
            .unwrap_err();
        assert!(err.contains(want), "{text:?}: {err}");
        assert!(err.starts_with("exp.yaml"), "{err}");
    }
}

#[test]
fn the_model_family_keys() {
    let s = parse("", &[]).unwrap();
    assert_eq!(
        (s.model.g_widths(), s.model.d_widths()),
        (vec![256], vec![256])
    );
    let s = parse(
        "model:\n  hidden: 64\n  g_hidden: [512, 512]\n  d_activation: leaky_relu\n  g_output: tanh\n",
        &[],
    )
    .unwrap();
    assert_eq!(
        (s.model.g_widths(), s.model.d_widths()),
        (vec![512, 512], vec![64])
    );
    assert_eq!(s.model.d_activation, gan_spec::ActivationSpec::LeakyRelu);
    assert_eq!(s.model.g_output, gan_spec::GOutput::Tanh);
    let s = parse("", &["model.d_hidden=[]"]).unwrap();
    assert!(s.model.d_widths().is_empty(), "no hidden layer at all");
    for (text, want) in [
        (
            "model:\n  g_hidden: [0]\n",
            "model.g_hidden widths must be at least 1",
        ),
        (
            "model:\n  leaky_slope: 1.5\n",
            "model.leaky_slope must be in [0, 1)",
        ),
        ("model:\n  g_activation: swish\n", "unknown variant `swish`"),
        ("model:\n  g_output: relu\n", "unknown variant `relu`"),
    ] {
        let e = parse(text, &[]).unwrap_err();
        assert!(e.contains(want), "{text:?}: {e}");
    }
    // A sweep over layer lists, one point per list.
    let s = parse("sweep:\n  model.g_hidden: [[256], [512, 512]]\n", &[]).unwrap();
    let points = gan_spec::expand_sweep(&s, "exp.yaml").unwrap();
    assert_eq!(points.len(), 2);
    assert_eq!(points[1].spec.model.g_widths(), vec![512, 512]);
    assert_eq!(points[1].name, "model.g_hidden=[512,_512]");
    let e = parse("sweep:\n  seed: [[1, 2]]\n", &[]).unwrap_err();
    assert!(e.contains("plain values"), "{e}");
}

#[test]
fn the_loss_and_training_keys() {
    let s = parse(
        "model:\n  d_dropout: 0.3\ntrain:\n  loss: hinge\n  d_steps: 2\n  lr_d: 4.0e-4\n",
        &[],
    )
    .unwrap();
    assert_eq!(
        (
            s.model.d_dropout,
            s.train.loss,
            s.train.d_steps,
            s.train.lr_d,
            s.train.lr_g
        ),
        (0.3, LossSpec::Hinge, 2, Some(4.0e-4), None)
    );
    assert_eq!(
        parse("", &["train.g_ema=0.999"]).unwrap().train.g_ema,
        Some(0.999)
    );
    // The older name keeps working, in files, --set and sweeps.
    let s = parse("train:\n  g_loss: minimax\n", &[]).unwrap();
    assert_eq!(s.train.loss, LossSpec::Minimax);
    let s = parse("", &["train.g_loss=least_squares"]).unwrap();
    assert_eq!(s.train.loss, LossSpec::LeastSquares);
    let s = parse("sweep:\n  train.g_loss: [minimax, hinge]\n", &[]).unwrap();
    let points = gan_spec::expand_sweep(&s, "exp.yaml").unwrap();
    assert_eq!(points[1].spec.train.loss, LossSpec::Hinge);
    for (text, want) in [
        (
            "train:\n  g_loss: minimax\n  loss: hinge\n",
            "exp.yaml line 2: `train.g_loss` is the older name of `train.loss`",
        ),
        (
            "train:\n  loss: hinge\n  label_smoothing: 0.1\n",
            "the hinge loss has no targets to smooth",
        ),
        ("train:\n  d_steps: 0\n", "train.d_steps must be at least 1"),
        (
            "train:\n  lr_g: -1\n",
            "train.lr_g must be a positive finite number",
        ),
        (
            "model:\n  d_dropout: 1.0\n",
            "model.d_dropout must be in [0, 1)",
        ),
        (
            "train:\n  label_smoothing: -0.1\n",
            "train.label_smoothing must be in [0, 1)",
        ),
        ("train:\n  loss: wasserstein\n", "least_squares"),
        ("train:\n  g_ema: 1.0\n", "train.g_ema must be in (0, 1)"),
        ("train:\n  g_ema: 0\n", "train.g_ema must be in (0, 1)"),
    ] {
        let e = parse(text, &[]).unwrap_err();
        assert!(e.contains(want), "{text:?}: {e}");
    }
}

#[test]
fn the_dcgan_keys() {
    let s = parse("model:\n  arch: dcgan\n", &[]).unwrap();
    assert_eq!(s.model.arch, gan_spec::ArchSpec::Dcgan);
    assert_eq!(
        (s.model.g_channels.clone(), s.model.d_channels.clone()),
        (vec![128, 64], vec![64, 128])
    );
    let s = parse("model:\n  arch: dcgan\n", &["model.g_channels=[64, 32]"]).unwrap();
    assert_eq!(s.model.g_channels, vec![64, 32]);
    assert!(s.model.d_batch_norm);
    let s = parse("model:\n  arch: dcgan\n  d_batch_norm: false\n", &[]).unwrap();
    assert!(!s.model.d_batch_norm);
    assert_eq!(s.model.d_dense, 0);
    let s = parse("model:\n  arch: dcgan\n", &["model.d_dense=256"]).unwrap();
    assert_eq!(s.model.d_dense, 256);
    for (text, want) in [
        ("model:\n  arch: conv\n", "unknown variant `conv`"),
        (
            "model:\n  arch: dcgan\n  g_channels: [128, 64, 32]\n",
            "model.g_channels must be two channel counts",
        ),
        (
            "model:\n  d_channels: [0, 64]\n",
            "model.d_channels must be two channel counts",
        ),
        (
            "model:\n  d_batch_norm: false\n",
            "model.d_batch_norm applies to model.arch: dcgan only",
        ),
        (
            "model:\n  d_dense: 64\n",
            "model.d_dense applies to model.arch: dcgan only",
        ),
        (
            "model:\n  arch: dcgan\n  d_dense: 64\n  d_dropout: 0.3\n",
            "model.d_dense and model.d_dropout cannot be combined yet",
        ),
        ("model:\n  arch: dcgan\n  d_dense: -1\n", "model.d_dense"),
        (
            "model:\n  arch: dcgan\n  g_hidden: [512]\n",
            "model.g_hidden applies to model.arch: mlp only",
        ),
        (
            "model:\n  arch: dcgan\n  hidden: 512\n",
            "leave model.hidden at 256",
        ),
    ] {
        let e = parse(text, &[]).unwrap_err();
        assert!(e.contains(want), "{text:?}: {e}");
    }
    // A sweep over channel lists, one point per list.
    let s = parse(
        "model:\n  arch: dcgan\nsweep:\n  model.g_channels: [[128, 64], [64, 32]]\n",
        &[],
    )
    .unwrap();
    let points = gan_spec::expand_sweep(&s, "exp.yaml").unwrap();
    assert_eq!(points[1].spec.model.g_channels, vec![64, 32]);
}

#[test]
fn every_committed_experiment_loads_and_expands() {
    // The specs users run first: a key renamed or a value tightened must not strand them.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let spec = gan_spec::load_spec(&path, &[]).unwrap_or_else(|e| panic!("{e}"));
        let origin = path.display().to_string();
        let points = gan_spec::expand_sweep(&spec, &origin).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(spec.sweep.is_some(), !points.is_empty(), "{origin}");
        seen += 1;
    }
    assert!(seen >= 10, "only {seen} specs in {}", dir.display());
}

/// Points whose values differ only in `/`, a space or a tab against `_` (or in `+` or `%`)
/// get folders of their own; plain values keep their plain names.
#[test]
fn every_sweep_point_has_a_folder_of_its_own() {
    let s = parse(
        "sweep:\n  data.dir: [/tmp/x/mn, /tmp/x_mn, \"/tmp/x mn\", \"/tmp/x\\tmn\", \"a+b\", \"a%2Bb\"]\n  seed: [1, 2]\n",
        &[],
    )
    .unwrap();
    let points = gan_spec::expand_sweep(&s, "exp.yaml").unwrap();
    let names: std::collections::BTreeSet<&str> = points.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names.len(), points.len(), "{names:?}");
    assert_eq!(points[0].name, "data.dir=%2Ftmp%2Fx%2Fmn+seed=1");
    assert_eq!(points[2].name, "data.dir=%2Ftmp%2Fx_mn+seed=1");
    assert_eq!(points[4].name, "data.dir=%2Ftmp%2Fx%20mn+seed=1");
    // (A tab reaches the name as YAML writes it, quoted: `"/tmp/x\tmn"`.)
    assert_eq!(points[6].name, "data.dir=\"%2Ftmp%2Fx%5Ctmn\"+seed=1");
    for p in &points {
        assert!(!p.name.contains(['/', ' ', '\t']), "{}", p.name);
    }
    let s = parse(
        "sweep:\n  train.loss: [non_saturating, hinge]\n  train.lr: [0.0002]\n",
        &[],
    )
    .unwrap();
    let points = gan_spec::expand_sweep(&s, "exp.yaml").unwrap();
    assert_eq!(points[0].name, "train.loss=non_saturating+train.lr=0.0002");
}

/// A grid is counted, not built: one beyond the bound is refused at once, naming its size.
#[test]
fn a_huge_grid_is_refused_before_it_is_built() {
    let keys = [
        "seed",
        "train.lr",
        "train.beta1",
        "train.epochs",
        "train.batch_size",
        "model.noise_dim",
        "model.hidden",
        "samples.count",
        "eval.samples",
        "train.d_steps",
    ];
    let mut text = String::from("sweep:\n");
    for (k, key) in keys.iter().enumerate() {
        let values: Vec<String> = (1..=10).map(|v| (v * 10 + k).to_string()).collect();
        text.push_str(&format!("  {key}: [{}]\n", values.join(", ")));
    }
    let started = std::time::Instant::now();
    let e = parse(&text, &[]).unwrap_err();
    assert!(
        e.contains("10000000000 grid points (10 x 10 x 10")
            && e.contains(&format!("more than the {}", gan_spec::MAX_SWEEP_POINTS)),
        "{e}"
    );
    // Refused at once, not after building ten billion specs (a generous bound for slow CI).
    assert!(started.elapsed().as_secs_f64() < 5.0);
    // Just within the bound is fine.
    let s = parse(
        "sweep:\n  seed: [1, 2, 3, 4]\n  train.lr: [0.1, 0.2, 0.3]\n",
        &[],
    )
    .unwrap();
    assert_eq!(gan_spec::expand_sweep(&s, "x").unwrap().len(), 12);
}

/// Deeply nested lists are refused at once, in the file or in --set (the YAML parser took
/// 40 s over 100,000 levels before refusing them itself).
#[test]
fn deep_nesting_is_refused_at_once() {
    let started = std::time::Instant::now();
    let deep = format!("seed: 1\ntrain:\n  lr: {}\n", "[".repeat(100_000));
    let e = parse(&deep, &[]).unwrap_err();
    assert!(
        e.contains("at line 3") && e.contains("nested more than 32 deep"),
        "{e}"
    );
    let flow = format!("seed: {}", "{a: ".repeat(50_000));
    assert!(parse(&flow, &[]).unwrap_err().contains("nested more than"));
    let set = format!("seed={}", "[".repeat(100_000));
    let e = parse("seed: 1\n", &[&set]).unwrap_err();
    assert!(e.contains("--set") && e.contains("nested more than"), "{e}");
    assert!(
        started.elapsed().as_secs_f64() < 2.0,
        "{:?}",
        started.elapsed()
    );
    // Brackets in quotes and comments are text; a sweep over lists nests two deep.
    let fine = "data:\n  dir: \"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"  # {{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{\nsweep:\n  model.g_hidden: [[256], [512, 512]]\n";
    parse(fine, &[]).unwrap();
}

/// A spec saved with a UTF-8 byte-order mark reads like one without.
#[test]
fn a_byte_order_mark_is_not_part_of_the_spec() {
    let s = parse("\u{feff}seed: 3\ntrain:\n  epochs: 2\n", &[]).unwrap();
    assert_eq!((s.seed, s.train.epochs), (3, 2));
}

/// A point whose folder name would pass the file systems' 255 bytes is refused when the
/// sweep is read, not when its run directory is made after its data was loaded.
#[test]
fn a_point_name_too_long_for_a_folder_is_refused_up_front() {
    let long = format!("/data/{}/{}", "c".repeat(120), "d".repeat(120));
    let s = parse(
        &format!("sweep:\n  data.dir: [\"{long}\", /data/short]\n"),
        &[],
    )
    .unwrap();
    let e = gan_spec::expand_sweep(&s, "exp.yaml")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("sweep point 0's folder name would be") && e.contains("more than the 255"),
        "{e}"
    );
}

/// The DCGAN's channel keys are refused under `arch: mlp` instead of silently ignored.
#[test]
fn dcgan_channels_are_refused_for_perceptrons() {
    for key in ["g_channels", "d_channels"] {
        let e = parse(&format!("model:\n  {key}: [32, 16]\n"), &[]).unwrap_err();
        assert!(
            e.contains(&format!("model.{key} applies to model.arch: dcgan only")),
            "{e}"
        );
        let dcgan = format!("model:\n  arch: dcgan\n  {key}: [32, 16]\n");
        parse(&dcgan, &[]).unwrap();
    }
}

/// Every shipped spec loads, and its sweep (if any) expands.
#[test]
fn every_shipped_spec_loads() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
    let mut seen = 0;
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let path = e.path();
        if path.extension().is_some_and(|x| x == "yaml") {
            let spec = gan_spec::load_spec(&path, &[]).unwrap_or_else(|e| panic!("{e}"));
            gan_spec::expand_sweep(&spec, &path.display().to_string())
                .unwrap_or_else(|e| panic!("{e}"));
            seen += 1;
        }
    }
    assert!(seen >= 10, "only {seen} specs");
}
