//! `cargo xtask lockstep` on the committed fixture: the export holds exactly what a replay
//! needs, in the shapes tools/lockstep/tf_replay.py reads, and the trace is the run's.

use std::process::Command;

use safetensors::tensor::Dtype;
use safetensors::SafeTensors;

const XTASK: &str = env!("CARGO_BIN_EXE_xtask");

#[test]
fn lockstep_exports_the_inputs_and_traces_every_step() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ls");
    let run = |extra: &[&str]| {
        let o = Command::new(XTASK)
            .args(["lockstep", "--fixture", "--seed", "4", "--steps", "3"])
            .args(["--weights-every", "0", "--weights-at", "2", "--out"])
            .arg(&out)
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let said = run(&[]);
    assert!(said.contains("3 steps"), "{said}");

    let bytes = std::fs::read(out.join("export.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let shape = |n: &str| st.tensor(n).unwrap().shape().to_vec();
    assert_eq!(shape("indices"), [3, 100]);
    assert_eq!(st.tensor("indices").unwrap().dtype(), Dtype::U32);
    assert_eq!(shape("noise"), [3, 100, 128]);
    assert_eq!(shape("train_images"), [1100, 784]);
    assert_eq!(shape("init.generator.0.weight"), [256, 128]);
    assert_eq!(
        shape("init.adam.discriminator.exp_avg_sq.0.weight"),
        [256, 784]
    );
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    let meta = meta.metadata().clone().unwrap();
    assert_eq!(meta["init.steps_done"], "0");
    assert_eq!(meta["seed"], "4");
    assert!(said.contains(&meta["input_digest"]), "{said}");

    let trace = std::fs::read_to_string(out.join("project.csv")).unwrap();
    let lines: Vec<&str> = trace.lines().collect();
    assert_eq!(lines[0], "step,d_loss,g_loss,d_real,d_fake");
    assert_eq!(lines.len(), 4);
    assert!(lines[3].starts_with("3,"));
    assert!(out.join("weights/project-000002.safetensors").is_file());
    assert!(!out.join("weights/project-000001.safetensors").exists());

    // The dfdx engine replays the same inputs: same first losses to rounding, its own trace.
    run(&["--engine", "dfdx", "--label", "dfdx", "--no-export"]);
    let dfdx = std::fs::read_to_string(out.join("dfdx.csv")).unwrap();
    let first = |t: &str| -> Vec<f64> {
        t.lines()
            .nth(1)
            .unwrap()
            .split(',')
            .map(|v| v.parse().unwrap())
            .collect()
    };
    for (a, b) in first(&trace).iter().zip(first(&dfdx)) {
        assert!((a - b).abs() < 1e-5, "{trace}\n{dfdx}");
    }
    assert_eq!(
        std::fs::read(out.join("export.safetensors")).unwrap(),
        bytes
    );
}
