//! Stock clients other than rdkafka-in-Rust: kcat (librdkafka CLI) and kafka-python.
//! Missing tools fail the test with the command that installs them: a skipped check hides a gap.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use anyhow::{bail, ensure, Context, Result};

use crate::harness::{data_dir, unique, Broker, BrokerOpts};

const INSTALL_HINT: &str = "run scripts/install-deps.sh test";
/// Every external client run is wrapped in coreutils `timeout` so none can hang the suite.
const CLIENT_TIMEOUT_S: &str = "60";

fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<Output> {
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

fn require_success(what: &str, out: &Output) -> Result<String> {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    ensure!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(stdout)
}

fn require_tools() -> Result<()> {
    let kcat = Command::new("kcat").arg("-V").output();
    ensure!(kcat.is_ok_and(|o| o.status.success()), "kcat is not installed: {INSTALL_HINT}");
    let py = Command::new("python3").args(["-c", "import kafka"]).output();
    ensure!(
        py.is_ok_and(|o| o.status.success()),
        "python3 module kafka (kafka-python) is not installed: {INSTALL_HINT}"
    );
    Ok(())
}

#[test]
fn stock_clients_kcat_and_kafka_python() -> Result<()> {
    require_tools()?;
    let dir = data_dir();
    let broker = Broker::start(BrokerOpts::new(dir.path()))?;
    let addr = broker.bootstrap();
    let topic = unique("kcat");

    let lines: Vec<String> = (0..10).map(|i| format!("kcat-line-{i}")).collect();
    let input = lines.join("\n") + "\n";
    require_success(
        "kcat -P",
        &run("kcat", &["-P", "-b", &addr, "-t", &topic, "-X", "acks=all"], Some(&input))?,
    )?;

    let listing = require_success("kcat -L", &run("kcat", &["-L", "-b", &addr], None)?)?;
    ensure!(
        listing.contains(&format!("broker 1 at {addr}")),
        "kcat -L does not list broker 1 at {addr}:\n{listing}"
    );
    ensure!(
        listing.contains(&format!("topic \"{topic}\"")),
        "kcat -L does not list topic {topic}:\n{listing}"
    );

    let read = require_success(
        "kcat -C",
        &run("kcat", &["-C", "-b", &addr, "-t", &topic, "-o", "beginning", "-e", "-q"], None)?,
    )?;
    assert_same_lines("kcat -C -o beginning -e", &read, &lines)?;

    let group = unique("kcat-group");
    let grouped = require_success(
        "kcat -G",
        &run(
            "kcat",
            &["-b", &addr, "-G", &group, &topic, "-c", "10", "-q", "-X", "auto.offset.reset=earliest"],
            None,
        )?,
    )?;
    assert_same_lines("kcat -G (balanced consumer)", &grouped, &lines)?;

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/kafka_python_roundtrip.py");
    let py_topic = unique("kafka-python");
    let py_group = unique("kafka-python-group");
    let out = run("python3", &[script.to_str().unwrap_or_default(), &addr, &py_topic, &py_group], None)?;
    let summary = require_success("kafka-python round trip", &out)?;
    println!("kafka-python: {}", summary.trim());
    Ok(())
}

fn assert_same_lines(what: &str, output: &str, expected: &[String]) -> Result<()> {
    let mut got: Vec<&str> = output.lines().filter(|l| !l.is_empty()).collect();
    got.sort();
    let mut want: Vec<&str> = expected.iter().map(String::as_str).collect();
    want.sort();
    ensure!(got == want, "{what} read {got:?}, expected {want:?}");
    Ok(())
}
