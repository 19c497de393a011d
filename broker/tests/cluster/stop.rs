//! Graceful stop when no majority would stay: a group's new leader could commit nothing, so the
//! leaving node hands nothing off (the hand-offs used to wait out a leader lease each, for a
//! leadership that could not serve a write).

use anyhow::{ensure, Context, Result};

use crate::harness::{unique, Cluster};
use crate::scale::create_topic;

const PARTITIONS: i32 = 6;

/// The group count of the node's "leadership handed off" line.
fn groups_handed_off(stderr: &str) -> Result<u64> {
    let line = stderr
        .lines()
        .find(|l| l.contains("leadership handed off"))
        .with_context(|| format!("no \"leadership handed off\" line in the node's log:\n{stderr}"))?;
    let count = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("groups="))
        .with_context(|| format!("no groups= field in {line:?}"))?;
    count.parse().with_context(|| format!("groups={count} in {line:?}"))
}

#[test]
fn a_node_leaving_no_majority_behind_hands_nothing_off() -> Result<()> {
    let mut c = Cluster::start(3)?;
    let topic = unique("no-majority");
    create_topic(&c.bootstrap_all(), &topic, PARTITIONS)?;
    c.wait_all_leaders(&topic, PARTITIONS)?;

    // Two of three stay: node 1 hands its leaderships to them.
    c.stop(1)?;
    let leaders = c.wait_all_leaders(&topic, PARTITIONS)?;
    let led_by_2 = leaders.values().filter(|(l, _)| *l == 2).count();
    ensure!(led_by_2 > 0, "node 2 should lead some partition before it stops: {leaders:?}");

    // Node 3 alone is no majority: node 2 leaves at once.
    c.stop(2)?;
    let handed = groups_handed_off(&c.node(2).stderr())?;
    ensure!(
        handed == 0,
        "node 2 led {led_by_2} partitions and handed {handed} groups to node 3, which alone can commit nothing"
    );
    Ok(())
}
