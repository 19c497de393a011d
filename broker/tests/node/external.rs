//! Running stock client tools (kcat, python3 with kafka-python) from tests, bounded; shared by
//! the node and cluster suites (the cluster suite includes this file with `#[path]`).
//! A missing tool fails the test with the command that installs it: a skipped check hides a gap.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use anyhow::{bail, ensure, Context, Result};

const INSTALL_HINT: &str = "run scripts/install-deps.sh test";
/// Every external client run is wrapped in coreutils `timeout` so none can hang the suite.
const CLIENT_TIMEOUT_S: &str = "60";

pub fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<Output> {
    let mut child = Command::new("timeout")
        .arg(CLIENT_TIMEOUT_S)
        .arg(program)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawning {program}"))?;
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin piped");
        pipe.write_all(input.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if out.status.code() == Some(124) {
        bail!(
            "{program} {args:?} timed out after {CLIENT_TIMEOUT_S} s; stderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

pub fn require_success(what: &str, out: &Output) -> Result<String> {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    ensure!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(stdout)
}

pub fn require_tools() -> Result<()> {
    let kcat = Command::new("kcat").arg("-V").output();
    ensure!(kcat.is_ok_and(|o| o.status.success()), "kcat is not installed: {INSTALL_HINT}");
    let py = Command::new("python3").args(["-c", "import kafka"]).output();
    ensure!(
        py.is_ok_and(|o| o.status.success()),
        "python3 module kafka (kafka-python) is not installed: {INSTALL_HINT}"
    );
    Ok(())
}
