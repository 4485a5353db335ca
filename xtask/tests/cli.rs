//! `cargo xtask` offers the user-facing tools of the installed `gan` binary (the same
//! gan-tools code) plus the workspace's own commands.

use std::process::Command;

const XTASK: &str = env!("CARGO_BIN_EXE_xtask");

#[test]
fn xtask_offers_the_same_tools_as_gan() {
    let out = Command::new(XTASK).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    let own = ["bench", "make-fixture", "lockstep"].map(String::from);
    for tool in gan_tools::Command::names().iter().chain(&own) {
        assert!(
            help.contains(tool),
            "cargo xtask --help lacks {tool}: {help}"
        );
    }
}
