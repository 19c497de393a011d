//! Integration tests of `clusterlab-broker`: real broker processes driven by real Kafka clients
//! (rdkafka, kcat, kafka-python) and by raw bytes.
//!
//! Run one: `cargo test -p broker --test node <name> -- --nocapture`
//! Set BROKER_ECHO=1 to see the brokers' stderr live.

mod admin_apis;
mod bad_input;
mod checker;
mod clients;
mod durability;
mod endpoint;
mod external;
// Shared with the cluster tests (their Raft links); node tests use part of it.
#[allow(dead_code)]
mod fabric;
mod fsync_failure;
mod groups;
mod harness;
mod idempotence;
mod memory_bounds;
mod power_cut;
mod process;
mod request_bounds;
mod startup_errors;
mod stock_clients;
// Shared with the cluster tests, which also wait for conditions; node tests use part of it.
#[allow(dead_code)]
mod wait;
