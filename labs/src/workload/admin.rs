//! Topic administration with the stock admin client, for the workload, the lab's drills and the
//! benchmarks alike (it lived in `bench::produce`, which made the lab depend on the bench).

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;

use crate::error::{LabError, Result};

/// Creates `topic` with `partitions` partitions and `replication` replicas, failing on any
/// per-topic error. `timeout` is the operation's: the broker answers once every new partition
/// has a leader or when it has passed, so the request itself is given longer to come back.
pub async fn create_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    replication: i32,
    timeout: Duration,
) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .map_err(LabError::kafka("creating the admin client"))?;
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(replication));
    let request_timeout = timeout + Duration::from_secs(2);
    let opts = AdminOptions::new().operation_timeout(Some(timeout)).request_timeout(Some(request_timeout));
    let what = format!("creating topic {topic}");
    let results =
        tokio::time::timeout(request_timeout + Duration::from_secs(1), admin.create_topics([&new], &opts))
            .await
            .map_err(|_| LabError::Timeout { what: what.clone(), secs: timeout.as_secs_f64() })?
            .map_err(LabError::kafka(what.clone()))?;
    for r in results {
        if let Err((name, code)) = r {
            return Err(LabError::Kafka {
                what: format!("creating topic {name}"),
                source: KafkaError::AdminOp(code),
            });
        }
    }
    Ok(())
}
