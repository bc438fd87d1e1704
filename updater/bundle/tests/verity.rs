//! The userspace verity check agrees with `veritysetup format` (the tool
//! the image build uses) and finds a byte changed anywhere it covers.

use lms_bundle::testing::verity_image;
use lms_bundle::verity::{BLOCK, Tree, Verity, verify};

#[test]
fn a_tree_veritysetup_wrote_verifies_and_any_changed_byte_is_found() {
    let d = tempfile::tempdir().unwrap();
    let img = d.path().join("slot.img");
    for blocks in [3, 128, 129, 20_000] {
        let v = verity_image(&img, blocks, 0x9e37_79b9);
        let mut f = std::fs::File::open(&img).unwrap();
        verify(&mut f, &v).unwrap_or_else(|e| panic!("{blocks} blocks: {e}"));
        let clean = std::fs::read(&img).unwrap();
        // A data byte, a byte of the lowest level, of the top block.
        let top = v.hash_offset + BLOCK;
        for at in [0, blocks * BLOCK - 1, v.total_bytes() - 1, top] {
            let mut bad = clean.clone();
            bad[at as usize] ^= 0x01;
            std::fs::write(&img, &bad).unwrap();
            let e = verify(&mut std::fs::File::open(&img).unwrap(), &v).unwrap_err();
            assert!(e.contains("verity:"), "{e}");
        }
        std::fs::write(&img, &clean).unwrap();
        // Block by block, as an update streams them: the tree from the hash
        // area, then each data block on its own.
        let tree = Tree::new(&v, clean[v.hash_offset as usize..].to_vec()).unwrap();
        for (i, b) in clean[..(blocks * BLOCK) as usize].chunks(BLOCK as usize).enumerate() {
            tree.check_block(i as u64, b).unwrap();
        }
        let mut changed = clean[..BLOCK as usize].to_vec();
        changed[100] ^= 0x80;
        let e = tree.check_block(0, &changed).err().unwrap();
        assert!(e.contains("data block 0 (byte 0) does not match"), "{e}");
        assert!(tree.check_block(blocks, &clean[..BLOCK as usize]).is_err(), "a block past the data");
        let wrong_root = Verity { root_hash: "0".repeat(64), ..v.clone() };
        let e = verify(&mut std::fs::File::open(&img).unwrap(), &wrong_root).unwrap_err();
        assert!(e.contains("root hash"), "{e}");
    }
}
