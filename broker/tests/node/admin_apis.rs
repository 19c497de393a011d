//! Admin and offset APIs as stock librdkafka calls them: ListOffsets by time, CreatePartitions,
//! topic configs (CreateTopics validation, DescribeConfigs, AlterConfigs, compaction's keys).

use anyhow::{anyhow, ensure, Context, Result};
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, NewPartitions, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureRecord;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::clients::{create_topic, producer, CLIENT_TIMEOUT};
use crate::harness::{data_dir, unique, Broker, BrokerOpts};

/// Produces `(partition, timestamp)` messages in one flush, so librdkafka puts each partition's
/// messages in one batch: finding a time inside a batch needs the record, not the batch.
async fn produce_at(bootstrap: &str, topic: &str, messages: &[(i32, i64)]) -> Result<Vec<i64>> {
    let p = producer(bootstrap, &[("linger.ms", "50"), ("acks", "all")])?;
    let sends = messages.iter().map(|(partition, ts)| {
        let record = FutureRecord::<(), str>::to(topic).partition(*partition).payload("m").timestamp(*ts);
        p.send(record, CLIENT_TIMEOUT)
    });
    let mut offsets = Vec::new();
    for delivery in futures::future::join_all(sends).await {
        offsets.push(delivery.map_err(|(e, _)| anyhow!("producing: {e}"))?.offset);
    }
    Ok(offsets)
}

fn offsets_for_times(bootstrap: &str, topic: &str, queries: &[(i32, i64)]) -> Result<Vec<Offset>> {
    let consumer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", bootstrap).create()?;
    let mut tpl = TopicPartitionList::new();
    for (partition, ts) in queries {
        tpl.add_partition_offset(topic, *partition, Offset::Offset(*ts))?;
    }
    let found = consumer.offsets_for_times(tpl, CLIENT_TIMEOUT).context("offsets_for_times")?;
    queries
        .iter()
        .map(|(partition, _)| {
            let e = found.find_partition(topic, *partition).context("partition missing from the answer")?;
            e.error().map_err(|err| anyhow!("partition {partition}: {err}"))?;
            Ok(e.offset())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_offsets_by_time_answers_the_first_record_at_or_after_it() -> Result<()> {
    let dir = data_dir();
    let broker = tokio::task::block_in_place(|| Broker::start(BrokerOpts::new(dir.path())))?;
    let bootstrap = broker.kafka.to_string();
    let topic = unique("offset-time");
    create_topic(&bootstrap, &topic, 2).await?;
    let acked =
        produce_at(&bootstrap, &topic, &[(0, 1_234), (0, 999_999_999_999), (0, 999_999_999_999)]).await?;
    ensure!(acked.windows(2).all(|w| w[1] == w[0] + 1), "offsets not consecutive: {acked:?}");
    let first = acked[0];
    let query = |partition: i32, ts: i64| {
        tokio::task::block_in_place(|| offsets_for_times(&bootstrap, &topic, &[(partition, ts)]))
    };
    let (at, after, later, empty) =
        (query(0, 1_234)?, query(0, 1_235)?, query(0, 1_000_000_000_000)?, query(1, 0)?);
    ensure!(at == vec![Offset::Offset(first)], "timestamp 1234: {at:?}, expected offset {first}");
    ensure!(
        after == vec![Offset::Offset(first + 1)],
        "timestamp 1235: {after:?}, expected {} (the second record of the same batch)",
        first + 1
    );
    ensure!(later == vec![Offset::End], "a time after every record: {later:?}, expected -1 (End)");
    ensure!(empty == vec![Offset::End], "an empty partition: {empty:?}, expected -1 (End)");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_come_from_create_partitions_and_explicit_assignments() -> Result<()> {
    let dir = data_dir();
    let broker = tokio::task::block_in_place(|| Broker::start(BrokerOpts::new(dir.path())))?;
    let bootstrap = broker.kafka.to_string();
    let topic = unique("grow");
    create_topic(&bootstrap, &topic, 2).await?;
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", &bootstrap).create()?;
    let opts = AdminOptions::new().operation_timeout(Some(CLIENT_TIMEOUT));

    let grown = admin.create_partitions(&[NewPartitions::new(&topic, 4)], &opts).await?;
    ensure!(matches!(grown.as_slice(), [Ok(_)]), "growing to 4: {grown:?}");
    let acked = produce_at(&bootstrap, &topic, &[(3, 1_000)]).await?;
    ensure!(acked.len() == 1, "produce to the new partition 3: {acked:?}");
    let count = tokio::task::block_in_place(|| partition_count(&bootstrap, &topic))?;
    ensure!(count == 4, "metadata shows {count} partitions after growing to 4");

    let shrink = admin.create_partitions(&[NewPartitions::new(&topic, 3)], &opts).await?;
    ensure!(
        matches!(shrink.as_slice(), [Err((_, RDKafkaErrorCode::InvalidPartitions))]),
        "shrinking to 3 must be refused with INVALID_PARTITIONS: {shrink:?}"
    );
    let missing = admin.create_partitions(&[NewPartitions::new(&unique("nope"), 3)], &opts).await?;
    ensure!(
        matches!(missing.as_slice(), [Err((_, RDKafkaErrorCode::UnknownTopicOrPartition))]),
        "growing a topic that does not exist: {missing:?}"
    );
    // CreateTopics with explicit assignments: their count is the partition count; a single
    // node can only place replicas on itself.
    let assigned = unique("assigned");
    let on_me: &[&[i32]] = &[&[1], &[1], &[1]];
    let new = NewTopic::new(&assigned, 3, TopicReplication::Variable(on_me));
    for r in admin.create_topics(&[new], &opts).await? {
        r.map_err(|(t, e)| anyhow!("creating {t} with assignments: {e}"))?;
    }
    let count = tokio::task::block_in_place(|| partition_count(&bootstrap, &assigned))?;
    ensure!(count == 3, "3 assignments made {count} partitions");
    let elsewhere: &[&[i32]] = &[&[2]];
    let elsewhere_topic = unique("elsewhere");
    let new = NewTopic::new(&elsewhere_topic, 1, TopicReplication::Variable(elsewhere));
    let refused = admin.create_topics(&[new], &opts).await?;
    ensure!(
        matches!(refused.as_slice(), [Err((_, RDKafkaErrorCode::InvalidReplicaAssignment))]),
        "a replica on a broker that does not exist: {refused:?}"
    );
    // The new partitions are part of the catalogue: they survive a restart.
    drop(broker);
    let broker = tokio::task::block_in_place(|| Broker::start(BrokerOpts::new(dir.path())))?;
    let count = tokio::task::block_in_place(|| partition_count(&broker.kafka.to_string(), &topic))?;
    ensure!(count == 4, "after a restart the topic has {count} partitions, not 4");
    Ok(())
}

fn partition_count(bootstrap: &str, topic: &str) -> Result<usize> {
    let consumer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", bootstrap).create()?;
    let md = consumer.fetch_metadata(Some(topic), CLIENT_TIMEOUT)?;
    let t = md.topics().first().context("no topic in the metadata")?;
    Ok(t.partitions().len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_configs_are_checked_stored_described_and_enforced() -> Result<()> {
    let dir = data_dir();
    let broker = tokio::task::block_in_place(|| Broker::start(BrokerOpts::new(dir.path())))?;
    let bootstrap = broker.kafka.to_string();
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", &bootstrap).create()?;
    let opts = AdminOptions::new().operation_timeout(Some(CLIENT_TIMEOUT));

    // A typo in a config name or a bad value is refused, and nothing is created.
    let typo = unique("typo");
    let bad = NewTopic::new(&typo, 1, TopicReplication::Fixed(1)).set("dummy.doesntexist", "1");
    let refused = admin.create_topics(&[bad], &opts).await?;
    ensure!(
        matches!(refused.as_slice(), [Err((_, RDKafkaErrorCode::InvalidConfig))]),
        "unknown config name: {refused:?}"
    );
    let bad = NewTopic::new(&typo, 1, TopicReplication::Fixed(1)).set("retention.ms", "soon");
    let refused = admin.create_topics(&[bad], &opts).await?;
    ensure!(
        matches!(refused.as_slice(), [Err((_, RDKafkaErrorCode::InvalidConfig))]),
        "bad value: {refused:?}"
    );
    let count = tokio::task::block_in_place(|| partition_count(&bootstrap, &typo)).unwrap_or(0);
    ensure!(count == 0, "a refused topic must not exist, it has {count} partitions");

    // Set at creation, described back with their source; defaults described too.
    let topic = unique("configs");
    let new = NewTopic::new(&topic, 1, TopicReplication::Fixed(1)).set("retention.ms", "1000");
    for r in admin.create_topics(&[new], &opts).await? {
        r.map_err(|(t, e)| anyhow!("creating {t}: {e}"))?;
    }
    let described = admin.describe_configs(&[ResourceSpecifier::Topic(&topic)], &opts).await?;
    let resource =
        described.into_iter().next().context("no described resource")?.map_err(|e| anyhow!("{e}"))?;
    let retention = resource.get("retention.ms").context("retention.ms not described")?;
    ensure!(
        retention.value.as_deref() == Some("1000") && !retention.is_default,
        "retention.ms: {retention:?}"
    );
    let policy = resource.get("cleanup.policy").context("cleanup.policy not described")?;
    ensure!(policy.value.as_deref() == Some("delete") && policy.is_default, "cleanup.policy: {policy:?}");

    // Compacted: records without a key are refused (INVALID_RECORD), keyed ones stored.
    let compact = AlterConfig::new(ResourceSpecifier::Topic(&topic)).set("cleanup.policy", "compact");
    for r in admin.alter_configs(&[compact], &opts).await? {
        r.map_err(|(t, e)| anyhow!("altering {t:?}: {e}"))?;
    }
    let p = producer(&bootstrap, &[("acks", "all"), ("message.timeout.ms", "5000"), ("retries", "0")])?;
    let keyless = p.send(FutureRecord::<(), str>::to(&topic).payload("no key"), CLIENT_TIMEOUT).await;
    ensure!(
        matches!(
            &keyless,
            Err((rdkafka::error::KafkaError::MessageProduction(RDKafkaErrorCode::InvalidRecord), _))
        ),
        "a record without a key on a compacted topic: {keyless:?}"
    );
    p.send(FutureRecord::to(&topic).key("k").payload("keyed"), CLIENT_TIMEOUT)
        .await
        .map_err(|(e, _)| anyhow!("a keyed record on a compacted topic: {e}"))?;
    // AlterConfigs replaces the whole set: retention.ms is back to its default.
    let described = admin.describe_configs(&[ResourceSpecifier::Topic(&topic)], &opts).await?;
    let resource =
        described.into_iter().next().context("no described resource")?.map_err(|e| anyhow!("{e}"))?;
    ensure!(
        resource.get("retention.ms").is_some_and(|e| e.is_default),
        "after AlterConfigs named only cleanup.policy, retention.ms should be the default again"
    );
    // Broker configs are described read-only and refused for change.
    let described = admin.describe_configs(&[ResourceSpecifier::Broker(1)], &opts).await?;
    let resource = described.into_iter().next().context("no broker resource")?.map_err(|e| anyhow!("{e}"))?;
    ensure!(
        resource.get("num.partitions").is_some_and(|e| e.is_read_only),
        "broker num.partitions: {resource:?}"
    );
    let before = resource.get("num.partitions").and_then(|e| e.value.clone());
    // The rdkafka crate drops AlterConfigs' per-resource errors, so the refusal shows as the
    // value staying what it was (librdkafka's own test suite checks the error code).
    let change = AlterConfig::new(ResourceSpecifier::Broker(1)).set("num.partitions", "9");
    admin.alter_configs(&[change], &opts).await?;
    let described = admin.describe_configs(&[ResourceSpecifier::Broker(1)], &opts).await?;
    let resource = described.into_iter().next().context("no broker resource")?.map_err(|e| anyhow!("{e}"))?;
    let after = resource.get("num.partitions").and_then(|e| e.value.clone());
    ensure!(
        after == before,
        "num.partitions changed from {before:?} to {after:?}: broker configs are static"
    );
    Ok(())
}

/// DeleteRecords on a single node: the catalogue keeps the new log start across a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_records_moves_the_log_start_for_good() -> Result<()> {
    let dir = data_dir();
    let broker = tokio::task::block_in_place(|| Broker::start(BrokerOpts::new(dir.path())))?;
    let bootstrap = broker.bootstrap();
    let topic = unique("delrec");
    create_topic(&bootstrap, &topic, 1).await?;
    let offsets = produce_at(&bootstrap, &topic, &[(0, 1), (0, 2), (0, 3), (0, 4), (0, 5)]).await?;
    let target = offsets[3];
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", &bootstrap).create()?;
    let opts = AdminOptions::new().operation_timeout(Some(CLIENT_TIMEOUT));
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Offset(target))?;
    let answer = admin.delete_records(&tpl, &opts).await?;
    let e = answer.find_partition(&topic, 0).context("no answer for partition 0")?;
    e.error().context("DeleteRecords")?;
    ensure!(e.offset() == Offset::Offset(target), "low watermark {:?}, asked {target}", e.offset());
    let earliest = |bootstrap: String| {
        tokio::task::block_in_place(|| -> Result<i64> {
            let c: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &bootstrap).create()?;
            Ok(c.fetch_watermarks(&topic, 0, CLIENT_TIMEOUT)?.0)
        })
    };
    ensure!(earliest(bootstrap.clone())? == target, "ListOffsets earliest after DeleteRecords");
    drop(broker);
    let broker = tokio::task::block_in_place(|| Broker::start(BrokerOpts::new(dir.path())))?;
    ensure!(earliest(broker.bootstrap())? == target, "ListOffsets earliest after a restart");
    Ok(())
}

/// Kafka's dynamic broker configs: stored per broker, described back with their source, kept
/// across a restart; AlterConfigs replaces the whole set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_broker_configs_are_stored_described_and_kept_across_a_restart() -> Result<()> {
    use rdkafka::admin::ConfigSource;
    let dir = data_dir();
    let mut broker = tokio::task::block_in_place(|| Broker::start(BrokerOpts::new(dir.path())))?;
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", broker.bootstrap()).create()?;
    let opts = AdminOptions::new().operation_timeout(Some(CLIENT_TIMEOUT));
    let relogin = "sasl.kerberos.min.time.before.relogin";
    let change =
        AlterConfig::new(ResourceSpecifier::Broker(1)).set(relogin, "58000").set("background.threads", "9");
    for r in admin.alter_configs(&[change], &opts).await? {
        r.map_err(|(res, e)| anyhow!("altering {res:?}: {e}"))?;
    }
    // A bad value is refused as a whole (the rdkafka crate drops the code: the values stay).
    let bad = AlterConfig::new(ResourceSpecifier::Broker(1)).set("background.threads", "0");
    admin.alter_configs(&[bad], &opts).await?;
    let described = describe_broker(&admin, &opts).await?;
    for (name, value) in [(relogin, "58000"), ("background.threads", "9")] {
        let entry = described.get(name).with_context(|| format!("{name} not described"))?;
        ensure!(
            entry.value.as_deref() == Some(value)
                && entry.source == ConfigSource::DynamicBroker
                && !entry.is_read_only,
            "{name}: expected {value} from the dynamic broker config, got {entry:?}"
        );
    }
    ensure!(
        described.get("num.io.threads").is_some_and(|e| e.is_default && e.value.as_deref() == Some("8")),
        "an unset dynamic config is described with Kafka's default: {:?}",
        described.get("num.io.threads")
    );

    drop(admin);
    tokio::task::block_in_place(|| -> Result<()> {
        broker.stop_gracefully()?;
        broker.restart()
    })?;
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", broker.bootstrap()).create()?;
    let described = describe_broker(&admin, &opts).await?;
    ensure!(
        described.get(relogin).and_then(|e| e.value.as_deref()) == Some("58000"),
        "after a restart {relogin} is {:?}, not 58000",
        described.get(relogin)
    );
    // AlterConfigs' legacy semantics: a config the request does not name goes back to its default.
    let only_threads = AlterConfig::new(ResourceSpecifier::Broker(1)).set("background.threads", "4");
    admin.alter_configs(&[only_threads], &opts).await?;
    let described = describe_broker(&admin, &opts).await?;
    ensure!(
        described.get(relogin).is_some_and(|e| e.is_default && e.value.as_deref() == Some("60000")),
        "{relogin} should be back at its default: {:?}",
        described.get(relogin)
    );
    Ok(())
}

async fn describe_broker(
    admin: &AdminClient<DefaultClientContext>,
    opts: &AdminOptions,
) -> Result<rdkafka::admin::ConfigResource> {
    let described = admin.describe_configs(&[ResourceSpecifier::Broker(1)], opts).await?;
    described
        .into_iter()
        .next()
        .context("no broker resource")?
        .map_err(|e| anyhow!("describing broker 1: {e}"))
}
