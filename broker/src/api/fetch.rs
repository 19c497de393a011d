//! Fetch: whole stored batches from the fetch offset up to the high watermark, long-polling
//! until `min_bytes` are available or `max_wait_ms` passes.
//!
//! An answer is copied into memory and stays there until the connection has written it, so its
//! size is bounded twice: by `fetch_max_bytes` whatever the client asks (Kafka's broker setting
//! `fetch.max.bytes`), and by the node's byte budget, which it holds until written. Without
//! either, a few dozen connections each asking for a whole 64 MiB partition made a node hold
//! gigabytes (docs/reliability.md).

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{ApiKey, FetchRequest, FetchResponse, ResponseKind};
use kafka_protocol::ResponseError;

use super::{topic_name, ApiSpec, Reply, RequestContext};
use crate::budget::AnswerBytes;
use crate::log::PartitionLog;
use crate::state::NodeState;

/// v12 is the newest that names topics; v13+ need topic ids (see ARCHITECTURE.md).
pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::Fetch, min: 4, max: 12 };

/// A long poll never waits longer than this, whatever the client asks: it bounds how long a
/// connection's later responses can be held up behind it.
const MAX_WAIT: Duration = Duration::from_secs(30);
/// How often an answer without room in the node's budget looks again, and how long it looks at
/// least (a fetch with `max_wait_ms` 0 answered empty at once would be sent again at once).
const ROOM_POLL: Duration = Duration::from_millis(5);
const ROOM_WAIT_MIN: Duration = Duration::from_millis(100);

struct Wanted {
    topic: String,
    partition: i32,
    offset: i64,
    max_bytes: usize,
    log: Result<Arc<PartitionLog>, ResponseError>,
}

pub fn handle(node: &Arc<NodeState>, ctx: &RequestContext, req: FetchRequest) -> Reply {
    let (node, version) = (Arc::clone(node), ctx.api_version);
    Reply::LaterHolding(Box::pin(async move {
        let (response, held) = answer(&node, version, req).await;
        (ResponseKind::Fetch(response), held)
    }))
}

async fn answer(node: &NodeState, version: i16, req: FetchRequest) -> (FetchResponse, Option<AnswerBytes>) {
    let wanted: Vec<Wanted> = req
        .topics
        .iter()
        .flat_map(|t| {
            let topic = t.topic.to_string();
            t.partitions.iter().map(move |p| (topic.clone(), p.clone()))
        })
        .map(|(topic, p)| Wanted {
            log: node.readable_log(&topic, p.partition).map_err(|(code, _)| code),
            topic,
            partition: p.partition,
            offset: p.fetch_offset,
            max_bytes: p.partition_max_bytes.max(0) as usize,
        })
        .collect();
    let asked = if req.max_bytes > 0 { req.max_bytes as usize } else { usize::MAX };
    let max_total = asked.min(node.config.fetch_max_bytes);
    let min_bytes = req.min_bytes.max(0) as usize;
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(req.max_wait_ms.max(0) as u64).min(MAX_WAIT);

    // Subscribe before the first read so a change between read and wait is not missed.
    let mut watches: Vec<_> =
        wanted.iter().filter_map(|w| w.log.as_ref().ok().map(|l| l.subscribe())).collect();
    loop {
        let (response, bytes) = read_all(&wanted, max_total, true, version);
        let waited_enough = tokio::time::Instant::now() >= deadline || node.shutdown.is_cancelled();
        if bytes >= min_bytes.max(1) || waited_enough || watches.is_empty() {
            return held(node, &wanted, (response, bytes), deadline, version).await;
        }
        let any_change = futures::future::select_all(watches.iter_mut().map(|w| Box::pin(w.changed())));
        tokio::select! {
            _ = any_change => {}
            _ = tokio::time::sleep_until(deadline) => {}
            _ = node.shutdown.cancelled() => {}
        }
        for w in &mut watches {
            w.borrow_and_update();
        }
    }
}

/// The answer read, with its bytes taken from the node's budget. Without room now, it looks for
/// room every [`ROOM_POLL`], holding no records, until the fetch's deadline (but at least
/// [`ROOM_WAIT_MIN`]); then it answers with no records and the client fetches again. So an answer
/// never waits for room longer than that, behind answers queued after it on its connection.
async fn held(
    node: &NodeState,
    wanted: &[Wanted],
    (response, bytes): (FetchResponse, usize),
    deadline: tokio::time::Instant,
    version: i16,
) -> (FetchResponse, Option<AnswerBytes>) {
    if bytes == 0 {
        return (response, None);
    }
    let (budget, gauge) = (&node.kafka_request_bytes, &node.kafka_answer_bytes_in_progress);
    if let Some(held) = budget.try_take_answer(bytes, gauge) {
        return (response, Some(held));
    }
    drop(response);
    let give_up = deadline.max(tokio::time::Instant::now() + ROOM_WAIT_MIN);
    while tokio::time::Instant::now() < give_up && !node.shutdown.is_cancelled() {
        tokio::time::sleep(ROOM_POLL).await;
        if let Some(held) = budget.try_take_answer(bytes, gauge) {
            // Read again within the room taken: the log may have moved meanwhile.
            return (read_all(wanted, bytes, true, version).0, Some(held));
        }
    }
    tracing::debug!(bytes, "no room in the node budget for a fetch answer by its deadline");
    (read_all(wanted, 0, false, version).0, None)
}

/// Reads every wanted partition within `max_total` bytes; with `whole_first`, the first
/// partition with data gets at least one whole batch even past it.
fn read_all(wanted: &[Wanted], max_total: usize, whole_first: bool, version: i16) -> (FetchResponse, usize) {
    let mut total = 0usize;
    let mut topics: Vec<FetchableTopicResponse> = Vec::new();
    for w in wanted {
        let first = whole_first && total == 0;
        let data = read_partition(w, max_total.saturating_sub(total), first, version);
        total += data.records.as_ref().map(|r| r.len()).unwrap_or(0);
        match topics.last_mut() {
            Some(t) if t.topic.as_str() == w.topic => t.partitions.push(data),
            _ => topics.push(
                FetchableTopicResponse::default()
                    .with_topic(topic_name(&w.topic))
                    .with_partitions(vec![data]),
            ),
        }
    }
    (FetchResponse::default().with_responses(topics), total)
}

fn read_partition(w: &Wanted, budget: usize, first: bool, version: i16) -> PartitionData {
    // Never a null record set: some clients cannot parse one (ARCHITECTURE.md).
    let base = PartitionData::default()
        .with_partition_index(w.partition)
        .with_records(Some(Bytes::new()))
        .with_aborted_transactions(Some(vec![]));
    let log = match &w.log {
        Ok(log) => log,
        Err(code) => return base.with_error_code(code.code()).with_high_watermark(-1),
    };
    let o = log.offsets();
    let mut base = base.with_high_watermark(o.high_watermark).with_last_stable_offset(o.high_watermark);
    if version >= 5 {
        base = base.with_log_start_offset(o.log_start_offset);
    }
    // Out of range is judged against the log end, as Kafka does: between the high watermark and
    // the log end a consumer just waits. A new leader's high watermark can lag the old one's (it
    // rises when the new leader applies its first entry, from the log start after a restart);
    // OFFSET_OUT_OF_RANGE there made consumers reset their position.
    if w.offset < o.log_start_offset || w.offset > o.log_end_offset {
        return base.with_error_code(ResponseError::OffsetOutOfRange.code());
    }
    // The first partition always gets at least one whole batch so a consumer can make progress
    // past a batch larger than its limits (as Kafka does); later ones respect the budget.
    let limit = w.max_bytes.min(budget);
    if w.offset >= o.high_watermark || (limit == 0 && !first) {
        return base;
    }
    match log.read(w.offset, o.high_watermark, limit) {
        Ok(batches) => {
            let size = batches.iter().map(|b| b.len()).sum();
            let mut records = BytesMut::with_capacity(size);
            for b in &batches {
                records.extend_from_slice(b);
            }
            base.with_records(Some(records.freeze()))
        }
        Err(e) => {
            tracing::error!(topic = %w.topic, partition = w.partition, offset = w.offset, error = %e, "read failed");
            base.with_error_code(ResponseError::KafkaStorageError.code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FsyncPolicy;
    use crate::log::test_batches::batch;
    use crate::log::LogStore;

    fn wanted(log: &Arc<PartitionLog>, offset: i64) -> Wanted {
        Wanted { topic: "t".into(), partition: 0, offset, max_bytes: 1 << 20, log: Ok(Arc::clone(log)) }
    }

    /// A replica that has not applied what it holds yet (a restarted or newly elected leader)
    /// answers an offset between its high watermark and its log end with nothing, not
    /// OFFSET_OUT_OF_RANGE, which made consumers reset their position.
    #[test]
    fn an_offset_above_the_high_watermark_but_in_the_log_waits() {
        let dir = tempfile::tempdir().unwrap();
        let s = LogStore::open(dir.path(), FsyncPolicy::Never, 1 << 20).unwrap().0;
        let log = s.create_partition("t", 0).unwrap();
        log.start_replicated();
        log.append(&[batch(2), batch(3)], 1).unwrap();
        log.set_committed(2);
        for offset in [2, 4, 5] {
            let data = read_partition(&wanted(&log, offset), 1 << 20, true, 12);
            assert_eq!((data.error_code, data.high_watermark), (0, 2), "offset {offset}");
            assert_eq!(data.records.as_ref().map(|r| r.len()), Some(0), "offset {offset}");
        }
        let data = read_partition(&wanted(&log, 6), 1 << 20, true, 12);
        assert_eq!(data.error_code, ResponseError::OffsetOutOfRange.code());
        let data = read_partition(&wanted(&log, 0), 1 << 20, true, 12);
        assert_eq!(data.error_code, 0);
        assert!(data.records.as_ref().is_some_and(|r| !r.is_empty()));
    }
}
