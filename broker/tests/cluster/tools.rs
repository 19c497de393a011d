//! Stock tools against a three-node cluster, as a table: kcat (librdkafka's CLI) and kafka-python's
//! admin client, one row per operation (issue 14). The table is printed, written to
//! $CLUSTERLAB_COMPAT_TABLE when set (docs/compatibility.md quotes it), and every operation must
//! work except the ones the broker does not serve yet (`NOT_YET`), which must fail cleanly.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{ensure, Context, Result};

use crate::external::{require_tools, run};
use crate::harness::{unique, Cluster};

/// Operations the broker does not implement yet; each answers an error code, never a dropped
/// connection. Remove a line as the API arrives (none left since DeleteRecords and DeleteGroups).
const NOT_YET: &[&str] = &[];

/// One line of a tool's report (admin_compat.py prints one JSON object per operation).
#[derive(serde::Deserialize)]
struct Row {
    tool: String,
    operation: String,
    ok: bool,
    detail: String,
}

#[test]
fn kcat_and_kafka_python_admin_work_against_the_cluster() -> Result<()> {
    require_tools()?;
    let mut c = Cluster::start(3)?;
    let bootstrap = c.bootstrap_all();
    let topic = unique("tools");
    let mut rows = kcat_rows(&bootstrap, &topic)?;

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/admin_compat.py");
    let out = run("python3", &[script.to_str().unwrap_or_default(), &bootstrap, &unique("kpy")], None)?;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        rows.push(serde_json::from_str(line).with_context(|| format!("admin_compat.py: {line}"))?);
    }
    ensure!(
        rows.iter().any(|r| r.operation == "delete topics"),
        "admin_compat.py stopped early ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );

    let table = render(&rows);
    println!("{table}");
    if let Some(path) = std::env::var_os("CLUSTERLAB_COMPAT_TABLE") {
        std::fs::write(&path, &table).with_context(|| format!("writing {path:?}"))?;
    }
    let unexpected: Vec<&Row> =
        rows.iter().filter(|r| !r.ok && !NOT_YET.contains(&r.operation.as_str())).collect();
    ensure!(
        unexpected.is_empty(),
        "operations that should work failed: {}",
        unexpected
            .iter()
            .map(|r| format!("{} {}: {}", r.tool, r.operation, r.detail))
            .collect::<Vec<_>>()
            .join("; ")
    );
    // Every node still serves: an unsupported API must not have taken one down.
    c.wait_controller(std::time::Duration::from_secs(10))?;
    Ok(())
}

/// kcat: metadata, produce with acks=all, consume from the start, a balanced group, and an offset
/// query by timestamp.
fn kcat_rows(bootstrap: &str, topic: &str) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let mut row = |operation: &str, args: &[&str], stdin: Option<&str>, check: &dyn Fn(&str) -> bool| {
        let out = run("kcat", args, stdin)?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let ok = out.status.success() && check(&stdout);
        let detail = if ok {
            stdout.lines().next().unwrap_or_default().to_string()
        } else {
            format!("{stdout} {}", String::from_utf8_lossy(&out.stderr))
        };
        rows.push(Row { tool: "kcat".into(), operation: operation.into(), ok, detail });
        anyhow::Ok(())
    };
    let lines: String = (0..10).map(|i| format!("tools-{i}\n")).collect();
    row(
        "produce (-P, acks=all)",
        &[
            "-P",
            "-b",
            bootstrap,
            "-t",
            topic,
            "-X",
            "acks=all",
            "-X",
            "topic.metadata.refresh.interval.ms=200",
        ],
        Some(&lines),
        &|_| true,
    )?;
    row("metadata (-L)", &["-L", "-b", bootstrap], None, &|s| s.contains("3 brokers") && s.contains(topic))?;
    row(
        "consume (-C -o beginning -e)",
        &["-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q"],
        None,
        &|s| s.lines().count() == 10,
    )?;
    let group = unique("tools-group");
    row(
        "balanced consumer group (-G)",
        &["-b", bootstrap, "-G", &group, topic, "-c", "10", "-q", "-X", "auto.offset.reset=earliest"],
        None,
        &|s| s.lines().count() == 10,
    )?;
    let query = format!("{topic}:0:0");
    row("offsets by timestamp (-Q)", &["-Q", "-b", bootstrap, "-t", &query], None, &|s| {
        s.contains("offset")
    })?;
    Ok(rows)
}

fn render(rows: &[Row]) -> String {
    let mut t = String::from("| tool | operation | result |\n|---|---|---|\n");
    for r in rows {
        let result = if r.ok {
            "works".to_string()
        } else if NOT_YET.contains(&r.operation.as_str()) {
            format!("not yet: {}", r.detail.replace('|', "/"))
        } else {
            format!("FAILS: {}", r.detail.replace('|', "/"))
        };
        let _ = writeln!(t, "| {} | {} | {} |", r.tool, r.operation, result);
    }
    t
}
