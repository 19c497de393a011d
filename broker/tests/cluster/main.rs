//! Three-node cluster integration tests of `clusterlab-broker`: three real broker processes
//! (Raft controller + one Raft group per partition) driven by rdkafka.
//!
//! Run one: `cargo test -p broker --test cluster <name> -- --nocapture --test-threads=1`
//! Set BROKER_ECHO=1 to see the brokers' stderr live.

mod acls;
mod admin;
mod checker;
mod clients;
mod delete_apis;
#[path = "../node/endpoint.rs"]
#[allow(dead_code)]
mod endpoint;
#[path = "../node/external.rs"]
#[allow(dead_code)]
mod external;
#[path = "../node/fabric.rs"]
#[allow(dead_code)]
mod fabric;
mod harness;
mod links;
mod lostwrite;
mod observe;
mod offsets;
mod pause;
mod placement;
#[path = "../node/process.rs"]
#[allow(dead_code)]
mod process;
mod raft_fuzz;
mod raft_trace;
mod scale;
mod scenarios;
mod sequences;
mod stop;
mod tools;
#[path = "../node/wait.rs"]
mod wait;
