//! The Raft votes of every group on this node, in one append-only file: `<dir>/raft-votes.log`.
//!
//! A node hosts thousands of groups, and an election after a node loss changes hundreds of votes
//! at once. One file per vote (written with two fsyncs on the blocking pool) took hundreds of
//! threads and fsyncs; here a vote is a record appended to an in-memory buffer, and the flusher
//! thread writes the whole buffer and syncs it in the same round as the partition logs, so a
//! storm of votes costs one fsync. `save` returns only after that sync: openraft requires a vote to
//! be durable before it is acted on (a node must never vote twice in one term).
//!
//! Record: `[u32 body length][u32 CRC-32C of body][body]`, body `[op u8][key length u16][key][value]`,
//! op 1 = set, 2 = forget (the group was deleted). The last record of a key wins. A torn last
//! record (a crash in the middle of a write) is cut off at start-up; a bad record with valid ones
//! after it is corruption and stops start-up, because forgetting a vote could let the node vote
//! twice. The file is rewritten compactly when it grows well past its live contents.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tokio::sync::watch;

use crate::error::{BrokerError, Result};
use crate::log::durability::{sync_dir, write_durable};
use crate::log::lock;

pub(crate) const VOTES_FILE: &str = "raft-votes.log";
const RECORD_HEADER_LEN: usize = 8;
const OP_SET: u8 = 1;
const OP_FORGET: u8 = 2;
/// Rewrite the file once it is this many times its live size (and at least `COMPACT_MIN_BYTES`):
/// votes change every election, so the file would otherwise grow without bound.
const COMPACT_RATIO: u64 = 4;
const COMPACT_MIN_BYTES: u64 = 256 * 1024;

pub(crate) struct VoteLog {
    dir: PathBuf,
    path: PathBuf,
    state: Mutex<VoteState>,
    /// Held from writing a round's records until they are synced, so a power cut never cuts
    /// the file while a sync is about to call those bytes durable.
    round: Mutex<()>,
    /// The highest ticket known durable; `u64::MAX` marks a failed sync (every waiter errs).
    durable: watch::Sender<u64>,
}

struct VoteState {
    file: File,
    /// Current value per group, including records not yet durable.
    values: BTreeMap<String, Vec<u8>>,
    /// Encoded records not yet written to the file.
    pending: Vec<u8>,
    /// Ticket of the newest record in `pending` (tickets start at 1).
    newest: u64,
    /// Bytes written to the file, and of those the ones a completed sync covered.
    len: u64,
    synced_len: u64,
    failed: Option<String>,
}

/// What a flush round wrote and must sync before it can complete the tickets up to `ticket`.
pub(crate) struct VoteBatch<'a> {
    ticket: u64,
    len: u64,
    _round: std::sync::MutexGuard<'a, ()>,
}

fn encode_record(out: &mut Vec<u8>, op: u8, key: &str, value: &[u8]) {
    let mut body = Vec::with_capacity(3 + key.len() + value.len());
    body.push(op);
    body.extend_from_slice(&(key.len() as u16).to_be_bytes());
    body.extend_from_slice(key.as_bytes());
    body.extend_from_slice(value);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    out.extend_from_slice(&body);
}

fn live_size(values: &BTreeMap<String, Vec<u8>>) -> u64 {
    values.iter().map(|(k, v)| (RECORD_HEADER_LEN + 3 + k.len() + v.len()) as u64).sum()
}

/// Replays `bytes`; returns the values and the length of the valid prefix.
fn replay(bytes: &[u8], path: &Path) -> Result<(BTreeMap<String, Vec<u8>>, u64)> {
    let mut values = BTreeMap::new();
    let mut pos = 0usize;
    while pos < bytes.len() {
        let torn = |reason: &str| -> Result<(BTreeMap<String, Vec<u8>>, u64)> {
            Err(BrokerError::Corrupt {
                file: path.to_path_buf(),
                position: pos as u64,
                reason: reason.into(),
            })
        };
        let rest = &bytes[pos..];
        if rest.len() < RECORD_HEADER_LEN {
            break; // torn header at the tail
        }
        let body_len = u32::from_be_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_be_bytes(rest[4..8].try_into().expect("4 bytes"));
        if rest.len() < RECORD_HEADER_LEN + body_len {
            break; // torn body at the tail
        }
        let body = &rest[RECORD_HEADER_LEN..RECORD_HEADER_LEN + body_len];
        let next = pos + RECORD_HEADER_LEN + body_len;
        if crc32c::crc32c(body) != crc {
            if next == bytes.len() {
                break; // the last record was torn mid-write
            }
            return torn("vote record CRC mismatch with valid records after it");
        }
        if body.len() < 3 {
            return torn("vote record shorter than its fixed fields");
        }
        let key_len = u16::from_be_bytes([body[1], body[2]]) as usize;
        if body.len() < 3 + key_len {
            return torn("vote record key runs past the record");
        }
        let Ok(key) = std::str::from_utf8(&body[3..3 + key_len]) else {
            return torn("vote record key is not UTF-8");
        };
        match body[0] {
            OP_SET => {
                values.insert(key.to_string(), body[3 + key_len..].to_vec());
            }
            OP_FORGET => {
                values.remove(key);
            }
            op => return torn(&format!("unknown vote record op {op}")),
        }
        pos = next;
    }
    Ok((values, pos as u64))
}

impl VoteLog {
    /// Opens (or creates) the vote log in `dir`, cutting a torn tail. Votes left by older
    /// versions as `vote-<group>.json` files are taken in and their files removed.
    pub fn open(dir: &Path) -> Result<VoteLog> {
        let path = dir.join(VOTES_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(BrokerError::io("read vote log", &path, e)),
        };
        let (mut values, valid) = replay(&bytes, &path)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| BrokerError::io("open vote log", &path, e))?;
        if valid < bytes.len() as u64 {
            tracing::warn!(file = %path.display(), position = valid, cut = bytes.len() as u64 - valid,
                "vote log: torn last record cut off");
            file.set_len(valid).map_err(|e| BrokerError::io("cut torn vote record", &path, e))?;
            file.sync_all().map_err(|e| BrokerError::io("fsync vote log", &path, e))?;
        }
        let legacy = take_legacy_vote_files(dir, &mut values)?;
        let log = VoteLog {
            dir: dir.to_path_buf(),
            path,
            state: Mutex::new(VoteState {
                file,
                values,
                pending: Vec::new(),
                newest: 0,
                len: valid,
                synced_len: valid,
                failed: None,
            }),
            round: Mutex::new(()),
            durable: watch::channel(0).0,
        };
        if !legacy.is_empty() {
            // Rewrite durably before the old files go, so no vote is ever only in memory.
            log.compact()?;
            for file in &legacy {
                std::fs::remove_file(file).map_err(|e| BrokerError::io("remove old vote file", file, e))?;
            }
            sync_dir(dir)?;
            tracing::info!(file = %log.path.display(), votes = legacy.len(), "old per-group vote files taken in");
        }
        Ok(log)
    }

    pub fn read(&self, group: &str) -> Option<Vec<u8>> {
        lock(&self.state).values.get(group).cloned()
    }

    /// Queues a record and returns its ticket; the caller waits with [`VoteLog::wait_durable`]
    /// after the flusher has been woken.
    pub fn queue(&self, group: &str, value: Option<&[u8]>) -> Result<u64> {
        if group.len() > u16::MAX as usize {
            return Err(BrokerError::Invalid(format!("group name of {} bytes is too long", group.len())));
        }
        let mut st = lock(&self.state);
        if let Some(reason) = &st.failed {
            return Err(BrokerError::io(
                "earlier vote log sync failed",
                &self.path,
                std::io::Error::other(reason.clone()),
            ));
        }
        match value {
            Some(v) => {
                encode_record(&mut st.pending, OP_SET, group, v);
                st.values.insert(group.to_string(), v.to_vec());
            }
            None => {
                st.values.remove(group);
                encode_record(&mut st.pending, OP_FORGET, group, &[]);
            }
        }
        st.newest += 1;
        Ok(st.newest)
    }

    /// Resolves once `ticket` is durable (or the log failed).
    pub async fn wait_durable(&self, ticket: u64) -> Result<()> {
        let mut rx = self.durable.subscribe();
        loop {
            let durable = *rx.borrow_and_update();
            if durable == u64::MAX {
                let reason = lock(&self.state).failed.clone().unwrap_or_default();
                return Err(BrokerError::io(
                    "vote log sync failed",
                    &self.path,
                    std::io::Error::other(reason),
                ));
            }
            if durable >= ticket {
                return Ok(());
            }
            if rx.changed().await.is_err() {
                return Err(BrokerError::ShuttingDown);
            }
        }
    }

    /// Flush round, step 1: writes the pending records (or a compacted file). The caller syncs
    /// (alone or with every other file of the round) and then calls [`VoteLog::complete`].
    pub fn write_pending(&self) -> Result<Option<VoteBatch<'_>>> {
        let round = lock(&self.round);
        let mut st = lock(&self.state);
        if st.pending.is_empty() || st.failed.is_some() {
            return Ok(None);
        }
        let ticket = st.newest;
        let grown = st.len + st.pending.len() as u64;
        if grown > COMPACT_MIN_BYTES && grown > COMPACT_RATIO * live_size(&st.values) {
            // The compacted file is durable on its own (temp, fsync, rename, fsync dir).
            drop(st);
            self.compact()?;
            let len = lock(&self.state).len;
            return Ok(Some(VoteBatch { ticket, len, _round: round }));
        }
        let pending = std::mem::take(&mut st.pending);
        if let Err(e) = st.file.write_all(&pending) {
            let _ = st.file.set_len(st.len);
            st.failed = Some(e.to_string());
            self.durable.send_replace(u64::MAX);
            return Err(BrokerError::io("append to vote log", &self.path, e));
        }
        st.len += pending.len() as u64;
        Ok(Some(VoteBatch { ticket, len: st.len, _round: round }))
    }

    /// fdatasync of the vote log alone (a round with few files syncs them one by one).
    pub fn sync_file(&self) -> Result<()> {
        let st = lock(&self.state);
        st.file.sync_data().map_err(|e| BrokerError::io("fsync vote log", &self.path, e))
    }

    /// Flush round, step 2: the round's sync finished with `synced`.
    pub fn complete(&self, batch: VoteBatch<'_>, synced: &Result<()>) {
        match synced {
            Ok(()) => {
                let mut st = lock(&self.state);
                st.synced_len = st.synced_len.max(batch.len);
                drop(st);
                self.durable.send_modify(|d| *d = (*d).max(batch.ticket));
            }
            Err(e) => {
                tracing::error!(
                    file = %self.path.display(),
                    error = %e,
                    "vote log sync failed; no vote can be saved any more"
                );
                lock(&self.state).failed = Some(e.to_string());
                self.durable.send_replace(u64::MAX);
            }
        }
    }

    /// Rewrites the file with only the current values (pending ones included) and makes it
    /// durable before returning.
    fn compact(&self) -> Result<()> {
        let mut st = lock(&self.state);
        let mut bytes = Vec::with_capacity(live_size(&st.values) as usize);
        for (k, v) in &st.values {
            encode_record(&mut bytes, OP_SET, k, v);
        }
        write_durable(&self.dir, VOTES_FILE, &bytes)?;
        st.file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|e| BrokerError::io("reopen vote log", &self.path, e))?;
        st.len = bytes.len() as u64;
        st.synced_len = st.len;
        st.pending.clear();
        let newest = st.newest;
        drop(st);
        self.durable.send_modify(|d| *d = (*d).max(newest));
        tracing::debug!(file = %self.path.display(), bytes = bytes.len(), "vote log compacted");
        Ok(())
    }

    /// Power cut: what was not synced is lost, the in-memory buffer and any written but unsynced
    /// bytes (a round in progress finishes its sync first).
    pub fn power_cut(&self) -> Result<()> {
        let _round = lock(&self.round);
        let mut st = lock(&self.state);
        st.pending.clear();
        if st.len != st.synced_len {
            let synced = st.synced_len;
            st.file.set_len(synced).map_err(|e| BrokerError::io("cut vote log", &self.path, e))?;
            st.file.sync_all().map_err(|e| BrokerError::io("fsync cut vote log", &self.path, e))?;
            st.len = synced;
        }
        st.failed = Some("power cut".into());
        drop(st);
        // Votes queued but not yet synced are gone: their waiters must hear so, not wait forever.
        self.durable.send_replace(u64::MAX);
        Ok(())
    }
}

/// `vote-<group>.json` files of older versions: read into `values` (where the log has no newer
/// vote), returned so the caller can remove them once the log holds them durably.
fn take_legacy_vote_files(dir: &Path, values: &mut BTreeMap<String, Vec<u8>>) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| BrokerError::io("list data dir", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| BrokerError::io("list data dir", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(group) = name.strip_prefix("vote-").and_then(|n| n.strip_suffix(".json")) else { continue };
        let bytes = std::fs::read(entry.path())
            .map_err(|e| BrokerError::io("read old vote file", entry.path(), e))?;
        values.entry(group.to_string()).or_insert(bytes);
        found.push(entry.path());
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(log: &VoteLog, group: &str, value: &[u8]) -> u64 {
        log.queue(group, Some(value)).unwrap()
    }

    fn round(log: &VoteLog) {
        if let Some(batch) = log.write_pending().unwrap() {
            let synced = log.sync_file();
            log.complete(batch, &synced);
        }
    }

    #[test]
    fn votes_survive_reopen_and_forget_removes_them() {
        let dir = tempfile::tempdir().unwrap();
        let log = VoteLog::open(dir.path()).unwrap();
        saved(&log, "t-0", b"v1");
        saved(&log, "t-1", b"x");
        saved(&log, "t-0", b"v2");
        log.queue("t-1", None).unwrap();
        round(&log);
        drop(log);
        let log = VoteLog::open(dir.path()).unwrap();
        assert_eq!(log.read("t-0").as_deref(), Some(&b"v2"[..]));
        assert_eq!(log.read("t-1"), None, "a forgotten group has no vote after restart");
    }

    #[test]
    fn pending_votes_are_not_durable_until_a_round_and_a_power_cut_drops_them() {
        let dir = tempfile::tempdir().unwrap();
        let log = VoteLog::open(dir.path()).unwrap();
        saved(&log, "a", b"1");
        round(&log);
        saved(&log, "a", b"2");
        log.power_cut().unwrap();
        assert!(log.queue("a", Some(b"3")).is_err(), "nothing is saved after a power cut");
        drop(log);
        assert_eq!(VoteLog::open(dir.path()).unwrap().read("a").as_deref(), Some(&b"1"[..]));
    }

    /// A vote queued but not synced when the power goes: its waiter gets an error at once
    /// (it used to wait forever, which hung the power-cut test now and then).
    #[tokio::test]
    async fn a_power_cut_answers_the_waiters_of_unsynced_votes() {
        let dir = tempfile::tempdir().unwrap();
        let log = std::sync::Arc::new(VoteLog::open(dir.path()).unwrap());
        let ticket = saved(&log, "a", b"1");
        let waiter = tokio::spawn({
            let log = std::sync::Arc::clone(&log);
            async move { log.wait_durable(ticket).await }
        });
        tokio::task::yield_now().await;
        log.power_cut().unwrap();
        let answer = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("the waiter of an unsynced vote was not answered within 5 s of the power cut")
            .unwrap();
        assert!(answer.is_err(), "an unsynced vote must not be reported durable after a power cut");
    }

    #[test]
    fn a_torn_tail_is_cut_but_corruption_before_valid_records_stops_start_up() {
        let dir = tempfile::tempdir().unwrap();
        let log = VoteLog::open(dir.path()).unwrap();
        saved(&log, "a", b"1");
        saved(&log, "b", b"2");
        round(&log);
        drop(log);
        let path = dir.path().join(VOTES_FILE);
        let full = std::fs::read(&path).unwrap();
        // Torn: the second record lost its last byte.
        std::fs::write(&path, &full[..full.len() - 1]).unwrap();
        let log = VoteLog::open(dir.path()).unwrap();
        assert_eq!((log.read("a").as_deref(), log.read("b")), (Some(&b"1"[..]), None));
        assert_eq!(std::fs::metadata(&path).unwrap().len() as usize, full.len() / 2);
        drop(log);
        // Corrupt: a flipped byte in the first record with a valid one after it.
        let mut bad = full.clone();
        bad[RECORD_HEADER_LEN + 3] ^= 0xff;
        std::fs::write(&path, &bad).unwrap();
        let err = VoteLog::open(dir.path()).err().expect("corruption must stop start-up").to_string();
        assert!(err.contains("raft-votes.log") && err.contains("CRC"), "{err}");
    }

    #[test]
    fn the_file_is_compacted_when_it_grows_past_its_live_size() {
        let dir = tempfile::tempdir().unwrap();
        let log = VoteLog::open(dir.path()).unwrap();
        let value = vec![7u8; 1000];
        for _ in 0..400 {
            saved(&log, "only", &value);
            round(&log);
        }
        let len = std::fs::metadata(dir.path().join(VOTES_FILE)).unwrap().len();
        assert!(len < COMPACT_MIN_BYTES + 2000, "vote log kept growing: {len} bytes");
        drop(log);
        assert_eq!(VoteLog::open(dir.path()).unwrap().read("only"), Some(value));
    }

    #[test]
    fn old_vote_files_are_taken_in_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("vote-orders-3.json"), b"{\"old\":1}").unwrap();
        let log = VoteLog::open(dir.path()).unwrap();
        assert_eq!(log.read("orders-3").as_deref(), Some(&b"{\"old\":1}"[..]));
        assert!(!dir.path().join("vote-orders-3.json").exists());
        drop(log);
        assert!(VoteLog::open(dir.path()).unwrap().read("orders-3").is_some());
    }
}
