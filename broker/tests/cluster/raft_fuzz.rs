//! Frames on the Raft port from a peer that lies: random bytes, lengths past the frame limit,
//! bodies that do not decode, and well-formed envelopes with false content (unknown groups, a
//! sender id that is not a member, a pre-vote query for a hundred thousand groups). While a real
//! client produces, every node stays up, the cluster keeps its leaders, and nothing acknowledged
//! is lost or duplicated.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use broker::raft::transport::{
    encode_frame, Body, Envelope, LeadEntry, LeadsVersion, RaftRequest, MAX_FRAME_LEN,
};
use broker::raft::typ::GroupId;

use crate::checker::check;
use crate::clients::{read_all, ProduceSpec, ProducerRun};
use crate::harness::{unique, wait_for, Cluster};
use crate::scale::create_topic;

const SEED: u64 = 0x5EED_4AF7_0001;
const RANDOM_FRAMES: usize = 300;

/// Writes `bytes` on a fresh connection and reads until the node closes it or 2 s pass (a
/// well-formed request may be answered and the connection kept: that is fine too).
fn send(raft: SocketAddr, bytes: &[u8]) -> Result<()> {
    let mut s = TcpStream::connect(raft).context("connecting to the Raft port")?;
    let _ = s.write_all(bytes);
    let _ = s.shutdown(std::net::Shutdown::Write);
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    Ok(())
}

const LIED_VERSION: LeadsVersion = LeadsVersion { started_us: 1, changes: 1 };

fn ghost_leads(from: u64) -> RaftRequest {
    let groups =
        (0..100_000).map(|p| LeadEntry { topic: "ghost".into(), partition: p, term: u64::MAX }).collect();
    RaftRequest::Leads { from, version: LIED_VERSION, groups }
}

fn lie(from: u64, group: GroupId, request: RaftRequest) -> Result<Vec<u8>> {
    let frame = encode_frame(&Envelope { id: 7, from, group, body: Body::Request(request) })?;
    Ok(frame.to_vec())
}

#[test]
fn lying_raft_peers_take_no_node_down_and_lose_nothing() -> Result<()> {
    let mut c = Cluster::start(3)?;
    c.wait_controller(Duration::from_secs(30))?;
    let topic = unique("raft-fuzz");
    create_topic(&c.bootstrap_all(), &topic, 3)?;
    c.wait_all_leaders(&topic, 3)?;
    let prefix = "rf-";
    let mut spec = ProduceSpec::new(&c.bootstrap_all(), &topic, &format!("{prefix}m"), 3_000);
    spec.keys = 64;
    let run = ProducerRun::spawn(spec)?;

    let target = c.node(1).raft;
    let nowhere = GroupId::Partition { topic: "no-such-topic".into(), partition: 7 };
    let mut frames: Vec<(String, Vec<u8>)> = vec![
        ("a length past the frame limit".into(), ((MAX_FRAME_LEN + 1) as u32).to_be_bytes().to_vec()),
        ("a length of u32::MAX".into(), u32::MAX.to_be_bytes().to_vec()),
        ("a frame cut short".into(), [100u32.to_be_bytes().as_slice(), b"abc"].concat()),
        (
            // Answered on the reading side: 100,000 lookups must not stall the connection.
            "Elect for a group nobody hosts, and for 100,000 ghost groups".into(),
            [
                lie(2, nowhere.clone(), RaftRequest::Elect { groups: vec![nowhere.clone()] })?,
                lie(
                    2,
                    GroupId::Controller,
                    RaftRequest::Elect {
                        groups: (0..100_000)
                            .map(|p| GroupId::Partition { topic: "ghost".into(), partition: p })
                            .collect(),
                    },
                )?,
            ]
            .concat(),
        ),
        (
            "a heartbeat from node 99".into(),
            lie(99, GroupId::Controller, RaftRequest::Heartbeat { from: 99, up_ms: 1, leads: LIED_VERSION })?,
        ),
        (
            // Node 99 is no peer, and node 2 hosts nothing of a topic that does not exist.
            "leaderships from node 99, and node 2 claiming 100,000 ghost partitions".into(),
            [lie(99, GroupId::Controller, ghost_leads(99))?, lie(2, GroupId::Controller, ghost_leads(2))?]
                .concat(),
        ),
        (
            "a pre-vote query for 100,000 groups".into(),
            lie(
                3,
                GroupId::Controller,
                RaftRequest::LeaderQuery {
                    from: 3,
                    groups: (0..100_000)
                        .map(|p| GroupId::Partition { topic: "ghost".into(), partition: p })
                        .collect(),
                },
            )?,
        ),
    ];
    println!("raft fuzz seed {SEED:#x}, {RANDOM_FRAMES} random frames");
    let mut rng = SEED;
    for i in 0..RANDOM_FRAMES {
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let len = (next() % 300) as usize;
        let body: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        // Half with a correct length prefix, so the bytes reach the envelope decoder.
        let bytes = if i % 2 == 0 { [(len as u32).to_be_bytes().as_slice(), &body].concat() } else { body };
        frames.push((format!("random frame {i} (seed {SEED:#x})"), bytes));
    }
    for (what, bytes) in &frames {
        send(target, bytes).with_context(|| what.clone())?;
        ensure!(c.running().len() == 3, "a node died after {what}");
    }

    let log = run.join()?;
    ensure!(log.errors.is_empty(), "{} failed deliveries, first: {:?}", log.errors.len(), log.errors.first());
    c.wait_all_leaders(&topic, 3)?;
    let expected: HashSet<String> = log.acks.iter().map(|a| a.payload.clone()).collect();
    let read = read_all(&c.bootstrap_all(), &topic, 3, &expected, Duration::from_secs(60))?;
    check(&log.acks, &read, prefix).assert_ok("raft fuzz", Duration::from_secs(0))?;
    wait_for("every node healthy after the fuzzing", Duration::from_secs(10), || {
        Ok((c.running().len() == 3).then_some(()))
    })?;
    Ok(())
}
