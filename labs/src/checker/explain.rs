//! Every anomaly in one sentence with its values, offsets and times, for the timeline, the CLI
//! and the report: what a workshop reads without opening the history.

use super::anomaly::Anomaly;

/// Wall-clock Unix ns as `HH:MM:SS.mmm` UTC (what the timeline's axis shows).
pub fn clock(ns: u64) -> String {
    let ms = ns / 1_000_000;
    let (h, m, s, milli) = ((ms / 3_600_000) % 24, (ms / 60_000) % 60, (ms / 1000) % 60, ms % 1000);
    format!("{h:02}:{m:02}:{s:02}.{milli:03}")
}

impl Anomaly {
    /// When it happened (or became visible), if the anomaly carries a time.
    pub fn at_ns(&self) -> Option<u64> {
        match self {
            Anomaly::LostWrite { acked_at_ns, .. } | Anomaly::Unseen { acked_at_ns, .. } => {
                Some(*acked_at_ns)
            }
            Anomaly::PollSkip { at_ns, .. }
            | Anomaly::NonmonotonicPoll { at_ns, .. }
            | Anomaly::CommittedOffsetBackwards { at_ns, .. } => Some(*at_ns),
            _ => None,
        }
    }

    /// One sentence: what happened, with the numbers.
    pub fn explain(&self) -> String {
        self.explain_history().unwrap_or_else(|| self.explain_group())
    }

    /// The anomalies of the acknowledged writes and the reads; None for a consumer group's.
    fn explain_history(&self) -> Option<String> {
        Some(match self {
            Anomaly::LostWrite { value, partition, offset, acked_at_ns } => format!(
                "lost write: {value} was acknowledged at partition {partition} offset {offset} at {}, \
                 but the final read of the partition does not contain it",
                clock(*acked_at_ns)
            ),
            Anomaly::Duplicate { value, partition, offsets } => format!(
                "duplicate: {value} is in partition {partition} at offsets {offsets:?}: it was written more than once"
            ),
            Anomaly::Reordered { partition, first_value, second_value, first_offset, second_offset } => format!(
                "reordered: {first_value} was acknowledged (offset {first_offset}) before {second_value} was sent, \
                 yet {second_value} sits earlier in partition {partition} (offset {second_offset})"
            ),
            Anomaly::InconsistentOffset { value, partition, acked_offset, read_offset, other_value } => {
                match other_value {
                    Some(other) => format!(
                        "inconsistent offset: partition {partition} offset {read_offset} was read as {other} and \
                         later as {value}"
                    ),
                    None => format!(
                        "inconsistent offset: {value} was acknowledged at partition {partition} offset {} but \
                         read at offset {read_offset}",
                        acked_offset.unwrap_or(-1)
                    ),
                }
            }
            Anomaly::PhantomRead { value, partition, offset } => {
                format!(
                    "phantom read: {value} was read at partition {partition} offset {offset}, \
                     but no client sent it"
                )
            }
            Anomaly::ReplicaDivergence { topic, partition, nodes } => format!(
                "replica divergence: replicas of {topic}/{partition} at the same end offset hold different data \
                 (node, crc32c, end offset): {nodes:?}"
            ),
            Anomaly::FailedButPresent { value, partition, offset } => format!(
                "failed but present: the client was told {value} failed, yet it is at partition {partition} \
                 offset {offset}"
            ),
            Anomaly::NonmonotonicSend {
                process,
                partition,
                first_value,
                first_offset,
                second_value,
                second_offset,
            } => {
                format!(
                    "nonmonotonic send: producer {process} sent {first_value} before {second_value}, but partition \
                     {partition} acknowledged them at offsets {first_offset} and {second_offset} (an idempotent \
                     producer keeps its order)"
                )
            }
            _ => return None,
        })
    }

    /// The consumer-group anomalies (polls, deliveries and commits of the group's members).
    fn explain_group(&self) -> String {
        match self {
            Anomaly::PollSkip {
                process,
                topic,
                partition,
                from_offset,
                to_offset,
                skipped,
                first_skipped,
                first_value,
                after_rebalance,
                at_ns,
            } => format!(
                "poll skip: at {} member {process} read {} offset {to_offset} {}, skipping {skipped} \
                 record(s) the log holds, the first at offset {first_skipped} ({first_value})",
                clock(*at_ns),
                place(topic, *partition),
                if *after_rebalance {
                    format!("as its first read after an assignment, when the group had delivered up to {from_offset}")
                } else {
                    format!("right after offset {from_offset}")
                }
            ),
            Anomaly::NonmonotonicPoll { process, topic, partition, previous_offset, offset, at_ns } => {
                format!(
                    "nonmonotonic poll: at {} member {process} read {} offset {offset} after \
                 offset {previous_offset}, with no rebalance in between",
                    clock(*at_ns),
                    place(topic, *partition)
                )
            }
            Anomaly::Unseen { value, topic, partition, offset, acked_at_ns } => format!(
                "unseen: {value} was acknowledged at {} and is in {} at offset {offset}, but no \
                 member of the group ever received it",
                clock(*acked_at_ns),
                place(topic, *partition)
            ),
            Anomaly::CommittedOffsetBackwards {
                process,
                topic,
                partition,
                committed,
                committed_at_ns,
                resumed_at,
                at_ns,
            } => {
                format!(
                    "committed offset backwards: the group's commit of {} at offset {committed} \
                     was acknowledged at {}, yet member {process}, assigned the partition afterwards, resumed at \
                     offset {resumed_at} at {}",
                    place(topic, *partition),
                    clock(*committed_at_ns),
                    clock(*at_ns)
                )
            }
            other => unreachable!("{other:?} is explained by explain_history"),
        }
    }
}

/// `partition 2`, or `partition 2 of chaos3` when the anomaly names its topic.
fn place(topic: &str, partition: i32) -> String {
    match topic {
        "" => format!("partition {partition}"),
        t => format!("partition {partition} of {t}"),
    }
}
