//! Stock clients other than rdkafka-in-Rust: kcat (librdkafka CLI) and kafka-python.
//! Missing tools fail the test with the command that installs them: a skipped check hides a gap.

use std::path::Path;

use anyhow::{ensure, Result};

use crate::external::{require_success, require_tools, run};
use crate::harness::{data_dir, unique, Broker, BrokerOpts};

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
