//! Disk corruption for the recovery lessons: flip one byte of a partition's newest segment.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{LabError, Result};

/// What was changed, so the lesson (and the timeline) can say exactly where.
#[derive(Debug, Clone, Serialize)]
pub struct Corruption {
    pub file: PathBuf,
    pub position: u64,
    pub old_byte: u8,
    pub new_byte: u8,
}

/// Flips every bit of the byte in the middle of the newest non-empty `<base>.log` segment of
/// `<data_dir>/partitions/<topic>-<partition>/`. The middle is almost surely inside a record
/// batch (not in free space), so the broker's CRC check must catch it on recovery.
pub(crate) fn corrupt_newest_segment(data_dir: &Path, topic: &str, partition: i32) -> Result<Corruption> {
    let dir = broker::log::partition_dir(data_dir, topic, partition);
    let entries = std::fs::read_dir(&dir)
        .map_err(LabError::io(format!("listing the segments in {}", dir.display())))?;
    // Newest = highest base offset (the file stem), not mtime, which recovery may touch.
    let newest = entries
        .flatten()
        .filter_map(|e| {
            let path = e.path();
            let base: u64 = path.file_name()?.to_str()?.strip_suffix(".log")?.parse().ok()?;
            let len = e.metadata().ok()?.len();
            (len > 0).then_some((base, len, path))
        })
        .max_by_key(|(base, _, _)| *base);
    let Some((_, len, file)) = newest else {
        return Err(LabError::InvalidArgument {
            what: "segment to corrupt",
            detail: format!(
                "{} has no non-empty .log segment (produce to {topic}-{partition} first)",
                dir.display()
            ),
        });
    };
    let position = len / 2;
    let io = |what: &str| LabError::io(format!("{what} {} at byte {position}", file.display()));
    let mut f = std::fs::OpenOptions::new().read(true).write(true).open(&file).map_err(io("opening"))?;
    let mut old = [0u8; 1];
    f.seek(SeekFrom::Start(position)).map_err(io("seeking in"))?;
    f.read_exact(&mut old).map_err(io("reading"))?;
    let new_byte = !old[0];
    f.seek(SeekFrom::Start(position)).map_err(io("seeking in"))?;
    f.write_all(&[new_byte]).map_err(io("writing"))?;
    // The point is a corrupted *disk*: make sure the flip is there even if the lab dies next.
    f.sync_all().map_err(io("syncing"))?;
    tracing::warn!(file = %file.display(), position, old = old[0], new = new_byte, "segment byte flipped");
    Ok(Corruption { file, position, old_byte: old[0], new_byte })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flips_the_middle_byte_of_the_newest_non_empty_segment() {
        let root = std::env::temp_dir().join(format!("segments-test-{}", std::process::id()));
        let dir = root.join("partitions").join("t-0");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("00000000000000000000.log"), [1u8; 10]).unwrap();
        std::fs::write(dir.join("00000000000000000100.log"), [2u8; 10]).unwrap();
        std::fs::write(dir.join("00000000000000000200.log"), []).unwrap();
        let c = corrupt_newest_segment(&root, "t", 0).unwrap();
        assert_eq!((c.position, c.old_byte, c.new_byte), (5, 2, !2u8));
        assert!(c.file.ends_with("00000000000000000100.log"));
        assert_eq!(std::fs::read(&c.file).unwrap()[5], !2u8);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
