//! Start-up failures: one line naming what was wrong, exit code 2, no half-started node.

use anyhow::{ensure, Result};

use crate::harness::{data_dir, Broker, BrokerOpts};

#[test]
fn taken_port_fails_start_up_naming_it() -> Result<()> {
    let holder = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = holder.local_addr()?.port();
    let dir = data_dir();
    let mut opts = BrokerOpts::new(dir.path());
    opts.kafka_port = port;
    let (status, stderr) = Broker::start_expecting_failure(opts)?;
    ensure!(status.code == Some(2), "exit {status}, expected 2; stderr:\n{stderr}");
    let expected = format!("port {port} is already in use");
    ensure!(stderr.contains(&expected), "stderr does not say {expected:?}:\n{stderr}");
    Ok(())
}

#[test]
fn second_broker_on_the_same_data_dir_is_refused() -> Result<()> {
    let dir = data_dir();
    let mut first = Broker::start(BrokerOpts::new(dir.path()))?;
    let (status, stderr) = Broker::start_expecting_failure(BrokerOpts::new(dir.path()))?;
    ensure!(status.code == Some(2), "second broker exit {status}, expected 2; stderr:\n{stderr}");
    ensure!(
        stderr.contains("is locked by another broker process"),
        "stderr does not name the lock:\n{stderr}"
    );
    first.assert_healthy("a second broker tried the same data dir")?;
    Ok(())
}

#[test]
fn bad_config_file_names_the_key() -> Result<()> {
    let dir = data_dir();
    let config = dir.path().join("node-typo.toml");
    std::fs::write(&config, "node_id = 1\nfsynk = \"always\"\n")?;
    let opts =
        BrokerOpts::new(&dir.path().join("data")).arg("--config").arg(config.to_str().unwrap_or_default());
    let (status, stderr) = Broker::start_expecting_failure(opts)?;
    ensure!(status.code == Some(2), "exit {status}, expected 2; stderr:\n{stderr}");
    ensure!(stderr.contains("fsynk"), "stderr does not name the key fsynk:\n{stderr}");
    ensure!(
        stderr.contains("line 2") || stderr.contains("node-typo.toml"),
        "stderr names neither line 2 nor the file:\n{stderr}"
    );
    Ok(())
}
