//! dm-verity hash trees: the parameters a system slot is opened with, and
//! a check of a whole slot against its root hash in userspace (the updater
//! reads a written partition back before it lets the boot loader try it;
//! the kernel's dm-verity then checks every block as it is read).
//!
//! The tree is the one `veritysetup format` writes (format 1, sha256,
//! 4096-byte blocks, a salt, a superblock at `hash_offset` followed by the
//! levels, top first), laid after the filesystem in the same partition.
//! Each block's digest is sha256(salt || block); a hash block holds 128
//! digests, zero-padded; the root hash is the digest of the top block.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{Read, Seek, SeekFrom};

pub const BLOCK: u64 = 4096;
const DIGEST: usize = 32;
const PER_BLOCK: u64 = BLOCK / DIGEST as u64;

/// How a slot's verity device is set up; signed in the system manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verity {
    /// Filesystem blocks (4096 bytes) the tree covers, from byte 0.
    pub data_blocks: u64,
    /// Byte offset of the verity superblock; the tree starts one block later.
    pub hash_offset: u64,
    /// Hex.
    pub salt: String,
    /// Hex sha256 digest of the tree's top block.
    pub root_hash: String,
}

impl Verity {
    /// Blocks the hash area takes after `hash_offset` (superblock included).
    pub fn hash_blocks(&self) -> u64 {
        1 + level_sizes(self.data_blocks).iter().sum::<u64>()
    }

    /// Bytes from the start of the partition to the end of the tree.
    pub fn total_bytes(&self) -> u64 {
        self.hash_offset + self.hash_blocks() * BLOCK
    }

    /// The device-mapper table line for `dev` (data and hash on one device).
    pub fn dm_table(&self, dev: &str) -> String {
        format!(
            "0 {} verity 1 {dev} {dev} {BLOCK} {BLOCK} {} {} sha256 {} {} 1 restart_on_corruption",
            self.data_blocks * (BLOCK / 512),
            self.data_blocks,
            self.hash_offset / BLOCK + 1,
            self.root_hash,
            self.salt
        )
    }

    /// Checks the fields' shapes (a signed manifest can still be wrong).
    pub fn check(&self) -> Result<(), String> {
        let hex_ok = |s: &str, max: usize| {
            s.len().is_multiple_of(2) && s.len() <= max && s.bytes().all(|b| b.is_ascii_hexdigit())
        };
        if self.data_blocks == 0 {
            return Err("verity: data_blocks is 0".into());
        }
        if !self.hash_offset.is_multiple_of(BLOCK) || self.hash_offset < self.data_blocks * BLOCK {
            return Err(format!(
                "verity: hash_offset {} is not a multiple of {BLOCK} past the {} data blocks",
                self.hash_offset, self.data_blocks
            ));
        }
        if !hex_ok(&self.salt, 512) {
            return Err(format!("verity: salt {:?} is not hex of at most 256 bytes", self.salt));
        }
        if self.root_hash.len() != 64 || !hex_ok(&self.root_hash, 64) {
            return Err(format!("verity: root_hash {:?} is not a hex sha256", self.root_hash));
        }
        Ok(())
    }
}

/// Blocks per level, bottom (level 0, digests of data blocks) first.
fn level_sizes(data_blocks: u64) -> Vec<u64> {
    let mut sizes = Vec::new();
    let mut n = data_blocks;
    while n > 1 || sizes.is_empty() {
        n = n.div_ceil(PER_BLOCK);
        sizes.push(n);
    }
    sizes
}

fn digest(salt: &[u8], block: &[u8]) -> [u8; DIGEST] {
    Sha256::new().chain_update(salt).chain_update(block).finalize().into()
}

/// Where each level starts, in blocks from `hash_offset` (levels are stored
/// top first, after the superblock), bottom level first.
fn level_starts(sizes: &[u64]) -> Vec<u64> {
    let mut starts = vec![0u64; sizes.len()];
    let mut at = 1;
    for i in (0..sizes.len()).rev() {
        starts[i] = at;
        at += sizes[i];
    }
    starts
}

/// A hash tree checked against the signed root hash: the bytes from
/// `hash_offset` to the end of the tree (superblock and levels), each level
/// checked against the level above it and the top block against the root.
/// It then checks data blocks one at a time, as they arrive, so an updater
/// can write a block only once it is known good (RAUC's verity streaming
/// does the same).
pub struct Tree {
    salt: Vec<u8>,
    data_blocks: u64,
    /// The hash area, from `hash_offset` (the superblock is its first block).
    bytes: Vec<u8>,
    /// Byte offset of level 0 (the data blocks' digests) in `bytes`.
    level0: usize,
}

impl Tree {
    /// Checks `bytes` (the hash area of a slot laid out as `v` says) from
    /// the top block down. The error names the level, block and byte (from
    /// the start of the partition) that do not match.
    pub fn new(v: &Verity, bytes: Vec<u8>) -> Result<Tree, String> {
        v.check()?;
        let salt = hex::decode(&v.salt).map_err(|e| format!("verity: salt: {e}"))?;
        if bytes.len() as u64 != v.hash_blocks() * BLOCK {
            return Err(format!(
                "verity: hash area is {} bytes, the parameters make {}",
                bytes.len(),
                v.hash_blocks() * BLOCK
            ));
        }
        let sizes = level_sizes(v.data_blocks);
        let starts = level_starts(&sizes);
        let block = |b: u64| &bytes[(b * BLOCK) as usize..((b + 1) * BLOCK) as usize];
        let top = sizes.len() - 1;
        let root = hex::encode(digest(&salt, block(starts[top])));
        if root != v.root_hash {
            return Err(format!("verity: root hash {root}, the signed manifest says {}", v.root_hash));
        }
        // Each level's blocks hash to the digests the level above holds;
        // a block's zero padding is covered by its own digest.
        for level in (0..top).rev() {
            for j in 0..sizes[level] {
                let at = (starts[level + 1] * BLOCK) as usize + j as usize * DIGEST;
                if bytes[at..at + DIGEST] != digest(&salt, block(starts[level] + j)) {
                    let pos = v.hash_offset + (starts[level] + j) * BLOCK;
                    return Err(format!(
                        "verity: hash level {level} block {j} (byte {pos}) does not match the level above it"
                    ));
                }
            }
        }
        Ok(Tree { salt, data_blocks: v.data_blocks, level0: (starts[0] * BLOCK) as usize, bytes })
    }

    /// Checks data block `i` (4096 bytes) against its digest in the tree.
    pub fn check_block(&self, i: u64, block: &[u8]) -> Result<(), String> {
        if i >= self.data_blocks || block.len() as u64 != BLOCK {
            return Err(format!("verity: data block {i} is outside the {} blocks the tree covers", self.data_blocks));
        }
        let at = self.level0 + i as usize * DIGEST;
        if self.bytes[at..at + DIGEST] != digest(&self.salt, block) {
            return Err(format!("verity: data block {i} (byte {}) does not match the signed tree", i * BLOCK));
        }
        Ok(())
    }

    /// The hash area's bytes (what goes to the partition at `hash_offset`).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// Reads the hash area `v` describes from `dev` (a partition or an image
/// file), checks it against the root hash, then every data block against
/// it. The error names the level and block that differ.
pub fn verify<F: Read + Seek>(dev: &mut F, v: &Verity) -> Result<(), String> {
    v.check()?;
    let mut area = vec![0u8; (v.hash_blocks() * BLOCK) as usize];
    dev.seek(SeekFrom::Start(v.hash_offset)).map_err(|e| format!("verity: {e}"))?;
    dev.read_exact(&mut area).map_err(|e| format!("verity: hash area at byte {}: {e}", v.hash_offset))?;
    let tree = Tree::new(v, area)?;
    let mut block = vec![0u8; BLOCK as usize];
    dev.seek(SeekFrom::Start(0)).map_err(|e| format!("verity: {e}"))?;
    for i in 0..v.data_blocks {
        dev.read_exact(&mut block).map_err(|e| format!("verity: data block {i}: {e}"))?;
        tree.check_block(i, &block)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_sizes() {
        assert_eq!(level_sizes(1), vec![1]);
        assert_eq!(level_sizes(128), vec![1]);
        assert_eq!(level_sizes(129), vec![2, 1]);
        assert_eq!(level_sizes(1221), vec![10, 1]);
        let v = Verity { data_blocks: 1221, hash_offset: 1221 * BLOCK, salt: "00".into(), root_hash: "0".repeat(64) };
        assert_eq!(v.hash_blocks(), 12);
        assert_eq!(v.total_bytes(), 1233 * BLOCK);
        assert!(v.dm_table("/dev/vda3").starts_with("0 9768 verity 1 /dev/vda3 /dev/vda3 4096 4096 1221 1222 sha256 "));
    }

    #[test]
    fn bad_shapes_are_refused() {
        let good = Verity { data_blocks: 2, hash_offset: 2 * BLOCK, salt: "ab".into(), root_hash: "a".repeat(64) };
        assert!(good.check().is_ok());
        for bad in [
            Verity { data_blocks: 0, ..good.clone() },
            Verity { hash_offset: BLOCK, ..good.clone() },
            Verity { hash_offset: 2 * BLOCK + 1, ..good.clone() },
            Verity { salt: "xyz".into(), ..good.clone() },
            Verity { root_hash: "ab".into(), ..good.clone() },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
    }
}
