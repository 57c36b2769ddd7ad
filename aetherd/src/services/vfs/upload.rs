//! Chunked uploads: a file larger than one frame is written as chunks at
//! offsets into a temp file, then committed atomically like any write.
//! Chunks may arrive in any order (clients pipeline them); an overlapping
//! chunk is refused, and the last one commits only when no byte is missing.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::disk::TempFile;
use super::path::VfsPath;

/// The conditions the final write checks, captured when the upload starts.
#[derive(Debug, Clone, Default)]
pub struct WriteOpts {
    pub append: bool,
    pub if_version: Option<String>,
    pub if_absent: bool,
    pub parents: bool,
}

pub struct Upload {
    pub user_id: i64,
    pub path: VfsPath,
    pub opts: WriteOpts,
    /// Taken while a chunk is being written on the blocking pool.
    pub temp: Option<TempFile>,
    /// Received byte ranges, start → end, merged.
    ranges: BTreeMap<u64, u64>,
    touched: Instant,
}

impl Upload {
    pub fn new(user_id: i64, path: VfsPath, opts: WriteOpts, temp: TempFile) -> Upload {
        Upload {
            user_id,
            path,
            opts,
            temp: Some(temp),
            ranges: BTreeMap::new(),
            touched: Instant::now(),
        }
    }

    /// The range `start..end` if it overlaps nothing received yet.
    pub fn check(&self, start: u64, end: u64) -> Result<(), (u64, u64)> {
        if start == end {
            return Ok(());
        }
        // The nearest range starting before `end` is the only one that can overlap.
        match self.ranges.range(..end).next_back() {
            Some((&s, &e)) if e > start => Err((s.max(start), e.min(end))),
            _ => Ok(()),
        }
    }

    pub fn record(&mut self, start: u64, end: u64) {
        self.touched = Instant::now();
        merge(&mut self.ranges, start, end);
    }

    pub fn received(&self) -> u64 {
        self.ranges.iter().map(|(s, e)| e - s).sum()
    }

    /// The highest byte written so far.
    pub fn end(&self) -> u64 {
        self.ranges.values().next_back().copied().unwrap_or(0)
    }

    /// Ok when bytes 0..end all arrived; else the first missing offset.
    #[cfg(test)]
    pub fn complete(&self) -> Result<(), u64> {
        first_gap(&self.ranges)
    }

    /// Would the upload be complete once `start..end` arrives too?
    pub fn complete_with(&self, start: u64, end: u64) -> Result<(), u64> {
        let mut ranges = self.ranges.clone();
        merge(&mut ranges, start, end);
        first_gap(&ranges)
    }
}

/// Add `start..end` to merged ranges, joining neighbours.
fn merge(ranges: &mut BTreeMap<u64, u64>, start: u64, end: u64) {
    if start == end {
        return;
    }
    let (mut start, mut end) = (start, end);
    if let Some((&s, &e)) = ranges.range(..=start).next_back()
        && e == start
    {
        start = s;
        ranges.remove(&s);
    }
    if let Some(e) = ranges.remove(&end) {
        end = e;
    }
    ranges.insert(start, end);
}

/// None missing means the ranges are exactly `0..end` (or empty).
fn first_gap(ranges: &BTreeMap<u64, u64>) -> Result<(), u64> {
    match ranges.iter().next() {
        None => Ok(()),
        Some((&0, _)) if ranges.len() == 1 => Ok(()),
        Some((&0, &end)) => Err(end),
        Some(_) => Err(0),
    }
}

type Shared = Arc<tokio::sync::Mutex<Upload>>;

/// Open uploads by id.
#[derive(Default)]
pub struct Uploads {
    map: parking_lot::Mutex<HashMap<String, (i64, Shared)>>,
}

impl Uploads {
    /// The upload, if it exists and belongs to this user.
    pub fn get(&self, id: &str, user_id: i64) -> Option<Shared> {
        self.map
            .lock()
            .get(id)
            .filter(|(owner, _)| *owner == user_id)
            .map(|(_, upload)| upload.clone())
    }

    pub fn remove(&self, id: &str) {
        self.map.lock().remove(id);
    }

    /// Insert unless the user already has `limit` uploads open (checked and inserted
    /// atomically). False when refused: the upload is dropped, and its temp file with it.
    pub fn insert_within(&self, id: String, upload: Upload, limit: usize) -> bool {
        let mut map = self.map.lock();
        let open = map
            .values()
            .filter(|(owner, _)| *owner == upload.user_id)
            .count();
        if open >= limit {
            return false;
        }
        let user_id = upload.user_id;
        map.insert(id, (user_id, Arc::new(tokio::sync::Mutex::new(upload))));
        true
    }

    /// Drop uploads idle for longer than `idle`; their temp files remove themselves.
    pub fn sweep(&self, idle: Duration) {
        self.map
            .lock()
            .retain(|_, (_, upload)| match upload.try_lock() {
                Ok(upload) => upload.touched.elapsed() < idle,
                Err(_) => true, // a chunk is being written right now
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload() -> Upload {
        Upload {
            user_id: 1,
            path: VfsPath::root(),
            opts: WriteOpts::default(),
            temp: None,
            ranges: BTreeMap::new(),
            touched: Instant::now(),
        }
    }

    #[test]
    fn ranges_merge_and_detect_gaps_and_overlaps() {
        let mut u = upload();
        u.record(0, 10);
        u.record(20, 30);
        assert_eq!(u.complete(), Err(10));
        assert_eq!(u.check(5, 12), Err((5, 10)));
        assert_eq!(u.check(25, 40), Err((25, 30)));
        assert_eq!(u.check(10, 20), Ok(()));
        u.record(10, 20);
        assert_eq!(u.complete(), Ok(()));
        assert_eq!(u.received(), 30);
        assert_eq!(u.end(), 30);
        let mut late = upload();
        late.record(5, 10);
        assert_eq!(late.complete(), Err(0));
        assert_eq!(upload().complete(), Ok(()));
    }
}
