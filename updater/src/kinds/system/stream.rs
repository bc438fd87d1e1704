//! Step 3 of a system update: the image into the slot partition with every
//! byte checked before it is written (the update promise: nothing lands
//! unless it verifies). The image's hash area (its dm-verity tree) comes
//! first, by a ranged download, and is checked against the signed root
//! hash; then the image streams from byte 0 and each 4096-byte data block
//! goes to the partition only once it matches its digest in that tree. The
//! bytes after the data (superblock and tree), which the root hash does not
//! fully cover, are held in memory and written only once the whole stream
//! matches the signed sha256. RAUC's verity streaming works the same way.
//!
//! A power cut resumes from the checkpoint: the verified, fsynced bytes on
//! the partition, hashed again (and checked against the tree again) before
//! the download goes on from there.

use crate::engine::Sink;
use lms_bundle::verity::{BLOCK, Tree, Verity};
use sha2::{Digest, Sha256};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

/// The hash area of an image, downloaded on its own: the bytes from
/// `hash_offset` to the end (a server that ignores Range sends the whole
/// image; the bytes before `start` are then skipped).
pub(super) struct HashArea {
    start: u64,
    at: u64,
    pub bytes: Vec<u8>,
}

impl HashArea {
    pub fn new(v: &Verity) -> HashArea {
        HashArea {
            start: v.hash_offset,
            at: v.hash_offset,
            bytes: Vec::with_capacity((v.hash_blocks() * BLOCK) as usize),
        }
    }
}

impl Write for HashArea {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let skip = self.start.saturating_sub(self.at).min(buf.len() as u64) as usize;
        self.bytes.extend_from_slice(&buf[skip..]);
        self.at += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Sink for HashArea {
    fn received(&self) -> u64 {
        self.at
    }
    fn restart(&mut self) -> std::io::Result<()> {
        self.at = 0;
        self.bytes.clear();
        Ok(())
    }
}

/// The slot partition as a download's destination: data blocks written as
/// they verify, the rest held until the whole image's sha256 matches.
pub(super) struct SlotSink<'a> {
    dev: PathBuf,
    out: std::fs::File,
    tree: &'a Tree,
    data_end: u64,
    size: u64,
    /// Bytes taken from the stream (the next download starts here).
    received: u64,
    /// Verified bytes on the partition (a multiple of the block size).
    written: u64,
    /// A data block not yet complete, or the bytes after the data.
    pending: Vec<u8>,
    sha: Sha256,
    refused: Option<String>,
    /// Where the verified, fsynced length is recorded, every [`CHECKPOINT_EVERY`] bytes.
    checkpoint: PathBuf,
}

/// How often a long stream records how far it got (a power cut then costs
/// at most this much again).
pub(super) const CHECKPOINT_EVERY: u64 = 8 << 20;

impl<'a> SlotSink<'a> {
    /// Opens `dev` to continue after the verified bytes the `checkpoint`
    /// file records: they are read back, checked against the tree and
    /// hashed; a prefix that does not check (another image, a torn write)
    /// starts the slot over.
    pub fn open(
        dev: PathBuf,
        tree: &'a Tree,
        v: &Verity,
        size: u64,
        checkpoint: PathBuf,
    ) -> std::io::Result<SlotSink<'a>> {
        let recorded: u64 = std::fs::read_to_string(&checkpoint).ok().and_then(|t| t.trim().parse().ok()).unwrap_or(0);
        let data_end = v.data_blocks * BLOCK;
        let mut out = std::fs::OpenOptions::new().read(true).write(true).open(&dev)?;
        let mut sha = Sha256::new();
        let mut written = 0;
        let mut block = vec![0u8; BLOCK as usize];
        let resume = recorded.min(data_end) / BLOCK * BLOCK;
        while written < resume {
            out.read_exact(&mut block)?;
            if tree.check_block(written / BLOCK, &block).is_err() {
                tracing::warn!(dev = %dev.display(), at = written, "the slot's written bytes do not match this image; writing it from the start");
                (sha, written) = (Sha256::new(), 0);
                break;
            }
            sha.update(&block);
            written += BLOCK;
        }
        out.seek(SeekFrom::Start(written))?;
        Ok(SlotSink {
            dev,
            out,
            tree,
            data_end,
            size,
            received: written,
            written,
            pending: Vec::new(),
            sha,
            refused: None,
            checkpoint,
        })
    }

    /// Verified bytes on the partition (what a checkpoint may record).
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The data written so far on the disk (not only in its cache), then
    /// its length in the checkpoint file.
    pub fn checkpoint(&self) -> std::io::Result<()> {
        self.out.sync_data()?;
        crate::state::write_atomic(&self.checkpoint, self.written.to_string().as_bytes()).map_err(std::io::Error::other)
    }

    /// The whole image arrived: its sha256 must be the signed one; then the
    /// bytes after the data are written and everything is fsynced.
    pub fn finish(mut self, sha256: &str) -> Result<(), String> {
        if self.received != self.size {
            return Err(format!("{}: {} of {} bytes arrived", self.dev.display(), self.received, self.size));
        }
        let got = hex::encode(self.sha.finalize_reset());
        if got != sha256 {
            return Err(format!(
                "the image's sha256 is {got}, the signed manifest says {sha256}; its bytes after the data were not written"
            ));
        }
        let io = |e: std::io::Error| format!("{}: {e}", self.dev.display());
        self.out.seek(SeekFrom::Start(self.data_end)).map_err(io)?;
        self.out.write_all(&self.pending).map_err(io)?;
        self.out.sync_all().map_err(io)
    }

    fn refuse(&mut self, why: String) -> std::io::Error {
        self.refused = Some(why.clone());
        std::io::Error::new(std::io::ErrorKind::InvalidData, why)
    }
}

impl Write for SlotSink<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(why) = &self.refused {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, why.clone()));
        }
        if self.received + buf.len() as u64 > self.size {
            return Err(self.refuse(format!("more than the {} bytes the signed manifest gives the image", self.size)));
        }
        self.sha.update(buf);
        self.received += buf.len() as u64;
        let mut rest = buf;
        // Data blocks: to the partition once each one verifies.
        while self.written < self.data_end && !rest.is_empty() {
            let take = (BLOCK as usize - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.len() == BLOCK as usize {
                let i = self.written / BLOCK;
                if let Err(e) = self.tree.check_block(i, &self.pending) {
                    return Err(self.refuse(format!("{e}; nothing from that block on was written")));
                }
                self.out.write_all(&self.pending)?;
                self.pending.clear();
                self.written += BLOCK;
                if self.written.is_multiple_of(CHECKPOINT_EVERY) {
                    self.checkpoint()?;
                }
            }
        }
        // After the data: held until the whole image verifies.
        self.pending.extend_from_slice(rest);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

impl Sink for SlotSink<'_> {
    fn received(&self) -> u64 {
        self.received
    }
    fn restart(&mut self) -> std::io::Result<()> {
        (self.received, self.written, self.sha) = (0, 0, Sha256::new());
        self.pending.clear();
        self.out.seek(SeekFrom::Start(0))?;
        Ok(())
    }
    fn refused(&self) -> Option<String> {
        self.refused.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An image of `blocks` data blocks with its tree, its verity parameters and its tree.
    fn image(dir: &std::path::Path, blocks: u64) -> (Vec<u8>, Verity, Tree) {
        let v = lms_bundle::testing::verity_image(&dir.join("system.img"), blocks, 7);
        let bytes = std::fs::read(dir.join("system.img")).unwrap();
        let tree = Tree::new(&v, bytes[v.hash_offset as usize..].to_vec()).unwrap();
        (bytes, v, tree)
    }

    /// A server that ignores Range sends the image from byte 0: the hash
    /// area skips what comes before it.
    #[test]
    fn the_hash_area_from_a_whole_download() {
        let d = tempfile::tempdir().unwrap();
        let (bytes, v, _) = image(d.path(), 300);
        let mut area = HashArea::new(&v);
        assert_eq!(area.received(), v.hash_offset);
        area.write_all(&bytes[v.hash_offset as usize..][..100]).unwrap();
        area.restart().unwrap();
        for chunk in bytes.chunks(1000) {
            area.write_all(chunk).unwrap();
        }
        assert_eq!(area.bytes, bytes[v.hash_offset as usize..]);
        assert!(Tree::new(&v, area.bytes).is_ok());
    }

    /// A long stream records its progress every CHECKPOINT_EVERY bytes by
    /// itself, and a sink opened on that checkpoint resumes there.
    #[test]
    fn a_long_stream_checkpoints_by_itself_and_resumes() {
        let d = tempfile::tempdir().unwrap();
        let blocks = CHECKPOINT_EVERY / BLOCK + 10;
        let (bytes, v, tree) = image(d.path(), blocks);
        let slot = d.path().join("slot");
        std::fs::File::create(&slot).unwrap().set_len(bytes.len() as u64).unwrap();
        let checkpoint = d.path().join("checkpoint");
        let mut sink = SlotSink::open(slot.clone(), &tree, &v, bytes.len() as u64, checkpoint.clone()).unwrap();
        sink.write_all(&bytes[..(CHECKPOINT_EVERY + 5000) as usize]).unwrap();
        drop(sink); // the power goes
        assert_eq!(std::fs::read_to_string(&checkpoint).unwrap(), CHECKPOINT_EVERY.to_string());
        let mut sink = SlotSink::open(slot.clone(), &tree, &v, bytes.len() as u64, checkpoint).unwrap();
        assert_eq!(sink.received(), CHECKPOINT_EVERY);
        sink.write_all(&bytes[CHECKPOINT_EVERY as usize..]).unwrap();
        let sha = lms_bundle::sha256_hex(&bytes);
        sink.finish(&sha).unwrap();
        assert!(std::fs::read(&slot).unwrap() == bytes);
    }
}
