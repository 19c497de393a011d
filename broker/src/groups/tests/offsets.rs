//! Committed offsets: validation, durability, restart, persistence failures.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::*;
use crate::error::BrokerError;

fn oc(topic: &str, partition: i32, offset: i64) -> OffsetCommit {
    OffsetCommit {
        topic: topic.to_string(),
        partition,
        offset,
        metadata: Some(format!("m{offset}")),
        leader_epoch: -1,
    }
}

#[tokio::test]
async fn simple_commit_fetch_round_trip_survives_restart() {
    let h = harness();
    let codes_out = h.coord.commit_offsets("g", -1, "", &[oc("t", 0, 10), oc("t", 1, 20), oc("u", 0, 5)]);
    assert_eq!(codes_out, vec![codes::NONE; 3]);
    assert_eq!(h.coord.commit_offsets("g", -1, "", &[oc("t", 0, 11)]), vec![codes::NONE]);

    let wanted = vec![("t".to_string(), 0), ("t".to_string(), 1), ("t".to_string(), 9)];
    let got = h.coord.fetch_offsets("g", Some(&wanted));
    let brief: Vec<(i32, i64)> = got.iter().map(|c| (c.partition, c.offset)).collect();
    assert_eq!(brief, vec![(0, 11), (1, 20), (9, -1)]);
    assert_eq!(got[0].metadata.as_deref(), Some("m11"));
    assert_eq!(got[2].metadata, None);
    assert_eq!(h.coord.fetch_offsets("g", None).len(), 3);
    assert!(h.coord.fetch_offsets("other", None).is_empty());

    let bytes = h.stored.lock().unwrap().clone().expect("persisted");
    let restarted = harness_from(Some(bytes));
    let again = restarted.coord.fetch_offsets("g", None);
    assert_eq!(again, h.coord.fetch_offsets("g", None));
    assert_eq!(restarted.coord.list().len(), 1);
}

#[test]
fn corrupt_persisted_bytes_are_a_clear_error() {
    let noop: PersistFn = Arc::new(|_: &[u8]| Ok(()));
    for (bytes, expect) in
        [(&b"{not json"[..], "not valid offsets JSON"), (&br#"{"version":9,"groups":{}}"#[..], "version 9")]
    {
        let err = match GroupCoordinator::new(config(), Some(bytes.to_vec()), noop.clone()) {
            Err(e) => e,
            Ok(_) => panic!("corrupt bytes accepted"),
        };
        assert!(matches!(err, BrokerError::CorruptState { .. }));
        let msg = err.to_string();
        assert!(msg.contains("committed offsets") && msg.contains(expect), "{msg}");
    }
}

#[tokio::test]
async fn failing_persist_rejects_commit_and_records_nothing() {
    let fail = Arc::new(AtomicBool::new(true));
    let flag = fail.clone();
    let persist: PersistFn = Arc::new(move |_: &[u8]| {
        if flag.load(Ordering::SeqCst) {
            Err(BrokerError::io("write offsets", "/data/offsets.json", std::io::Error::other("disk full")))
        } else {
            Ok(())
        }
    });
    let coord = GroupCoordinator::new(config(), None, persist).unwrap();
    let out = coord.commit_offsets("g", -1, "", &[oc("t", 0, 10), oc("", 0, 1)]);
    assert_eq!(out, vec![codes::COORDINATOR_NOT_AVAILABLE, codes::UNKNOWN_TOPIC_OR_PARTITION]);
    assert_eq!(coord.fetch_offsets("g", Some(&[("t".to_string(), 0)]))[0].offset, -1);
    fail.store(false, Ordering::SeqCst);
    assert_eq!(coord.commit_offsets("g", -1, "", &[oc("t", 0, 12)]), vec![codes::NONE]);
    assert_eq!(coord.fetch_offsets("g", None)[0].offset, 12);
}

#[tokio::test(start_paused = true)]
async fn member_commits_are_validated_against_the_group() {
    let h = harness();
    assert_eq!(h.coord.commit_offsets("", -1, "", &[oc("t", 0, 1)]), vec![codes::INVALID_GROUP_ID]);
    assert_eq!(h.coord.commit_offsets("nogroup", 3, "m", &[oc("t", 0, 1)]), vec![codes::ILLEGAL_GENERATION]);
    let (leader, follower) = join_two(&h).await;
    let (l, f) = (leader.member_id.clone(), follower.member_id.clone());
    assert_eq!(h.coord.commit_offsets("g", 1, &l, &[oc("t", 0, 1)]), vec![codes::REBALANCE_IN_PROGRESS]);
    h.coord.sync(sync_req("g", 1, &l, &[])).await;
    assert_eq!(h.coord.commit_offsets("g", 1, &f, &[oc("t", 0, 2)]), vec![codes::NONE]);
    assert_eq!(h.coord.commit_offsets("g", 2, &f, &[oc("t", 0, 3)]), vec![codes::ILLEGAL_GENERATION]);
    assert_eq!(h.coord.commit_offsets("g", 1, "who", &[oc("t", 0, 3)]), vec![codes::UNKNOWN_MEMBER_ID]);
    assert_eq!(h.coord.commit_offsets("g", -1, "", &[oc("t", 0, 3)]), vec![codes::UNKNOWN_MEMBER_ID]);
    let big = OffsetCommit { metadata: Some("x".repeat(5000)), ..oc("t", 1, 1) };
    assert_eq!(
        h.coord.commit_offsets("g", 1, &f, &[big, oc("t", 2, 7)]),
        vec![codes::OFFSET_METADATA_TOO_LARGE, codes::NONE]
    );
    // Kafka lets members commit while a rebalance is being prepared (commit-on-revoke).
    let _third = spawn_join(&h, join_req("g", "", &[("range", "c")]));
    until(&h, "rebalance started", |s| s.groups[0].state == "PreparingRebalance").await;
    assert_eq!(h.coord.commit_offsets("g", 1, &f, &[oc("t", 0, 4)]), vec![codes::NONE]);
    assert_eq!(h.coord.fetch_offsets("g", Some(&[("t".to_string(), 0)]))[0].offset, 4);
}

#[test]
fn concurrent_commits_are_all_durable_and_coalesced() {
    let stored = Arc::new(Mutex::new(None::<Vec<u8>>));
    let writes = Arc::new(AtomicUsize::new(0));
    let (s, w) = (stored.clone(), writes.clone());
    let persist: PersistFn = Arc::new(move |bytes: &[u8]| {
        w.fetch_add(1, Ordering::SeqCst);
        // A slow "fsync" so that commits pile up behind the write in flight.
        std::thread::sleep(std::time::Duration::from_millis(20));
        *s.lock().unwrap() = Some(bytes.to_vec());
        Ok(())
    });
    let coord = GroupCoordinator::new(config(), None, persist).unwrap();
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let c = coord.clone();
            std::thread::spawn(move || {
                c.commit_offsets(&format!("g{i}"), -1, "", &[oc("t", i, i as i64 * 10)])
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), vec![codes::NONE]);
    }
    assert!(writes.load(Ordering::SeqCst) <= 8);
    let bytes = stored.lock().unwrap().clone().unwrap();
    let restarted = GroupCoordinator::new(config(), Some(bytes), Arc::new(|_: &[u8]| Ok(()))).unwrap();
    for i in 0..8 {
        let got = restarted.fetch_offsets(&format!("g{i}"), None);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].offset, i as i64 * 10);
    }
}

/// librdkafka's 0030: async commits of 48 then 52 from one consumer. They are queued in that
/// order at dispatch; whichever blocking thread gets to write first, 52 is what stays.
#[tokio::test]
async fn commits_land_in_the_order_they_were_started_not_the_order_their_threads_run() {
    let h = harness();
    let first = h.coord.start_commit("g", -1, "", &[oc("t", 0, 48)]);
    let second = h.coord.start_commit("g", -1, "", &[oc("t", 0, 52)]);
    // The later commit's thread runs first (as two spawn_blocking tasks may).
    assert_eq!(h.coord.finish_commit(second), vec![codes::NONE]);
    assert_eq!(h.coord.finish_commit(first), vec![codes::NONE]);
    assert_eq!(h.coord.fetch_offsets("g", None)[0].offset, 52);
}

/// A consumer-protocol subscription (version 0) to `topics`, as clients put it in JoinGroup.
fn subscription(topics: &[&str]) -> bytes::Bytes {
    let mut out = vec![0, 0];
    out.extend((topics.len() as i32).to_be_bytes());
    for t in topics {
        out.extend((t.len() as i16).to_be_bytes());
        out.extend(t.as_bytes());
    }
    out.extend((-1i32).to_be_bytes()); // no user data
    out.into()
}

/// OffsetDelete keeps the offsets of topics a member subscribes to and removes the others,
/// durably; a session that has just expired counts as gone even before the timer's next pass.
#[tokio::test(start_paused = true)]
async fn offset_delete_keeps_subscribed_topics_and_removes_the_rest() {
    // No timer task: time moves only when this test says, and `tick` runs only when called.
    let stored = Arc::new(Mutex::new(None));
    let coord = GroupCoordinator::new(config(), None, memory_persist(stored.clone())).unwrap();
    assert_eq!(coord.delete_offsets("nogroup", &[("t".into(), 0)]), Err(codes::GROUP_ID_NOT_FOUND));
    let committed = coord.commit_offsets("g", -1, "", &[oc("t", 0, 10), oc("u", 0, 5), oc("u", 1, 6)]);
    assert_eq!(committed, vec![codes::NONE; 3]);

    let join =
        JoinRequest { protocols: vec![("range".into(), subscription(&["t"]))], ..join_req("g", "", &[]) };
    let joining = {
        let coord = coord.clone();
        tokio::spawn(async move { coord.join(join).await })
    };
    tokio::task::yield_now().await;
    tokio::time::advance(config().initial_rebalance_delay).await;
    coord.tick();
    assert_eq!(joining.await.unwrap().error_code, codes::NONE);

    let asked = [("t".to_string(), 0), ("u".to_string(), 0)];
    assert_eq!(coord.delete_offsets("g", &asked), Ok(vec![codes::GROUP_SUBSCRIBED_TO_TOPIC, codes::NONE]));
    let left: Vec<(String, i32, i64)> =
        coord.fetch_offsets("g", None).into_iter().map(|c| (c.topic, c.partition, c.offset)).collect();
    assert_eq!(left, vec![("t".into(), 0, 10), ("u".into(), 1, 6)]);

    // The member falls silent past its session; the timer has not run since.
    tokio::time::advance(Duration::from_millis(10_001)).await;
    assert_eq!(coord.delete_offsets("g", &[("t".into(), 0)]), Ok(vec![codes::NONE]));
    let restarted = harness_from(stored.lock().unwrap().clone());
    let left: Vec<(String, i32)> =
        restarted.coord.fetch_offsets("g", None).into_iter().map(|c| (c.topic, c.partition)).collect();
    assert_eq!(left, vec![("u".into(), 1)], "what is left survives a restart");
}

/// The leader epoch a client commits with its offset is fetched back, also after a restart
/// (librdkafka compares it: 0081's AlterConsumerGroupOffsets failed while it came back -1).
#[tokio::test]
async fn a_committed_leader_epoch_is_fetched_back() {
    let h = harness();
    let with_epoch = OffsetCommit { leader_epoch: 7, ..oc("t", 0, 10) };
    assert_eq!(h.coord.commit_offsets("g", -1, "", &[with_epoch, oc("t", 1, 3)]), vec![codes::NONE; 2]);
    let epochs = |c: &GroupCoordinator| -> Vec<i32> {
        c.fetch_offsets("g", None).into_iter().map(|o| o.leader_epoch).collect()
    };
    assert_eq!(epochs(&h.coord), vec![7, -1]);
    let restarted = harness_from(h.stored.lock().unwrap().clone());
    assert_eq!(epochs(&restarted.coord), vec![7, -1], "kept in the offsets file");
}
