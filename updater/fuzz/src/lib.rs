//! The fuzz input format of the signed targets, and the corpus seeds made
//! from real bundles (`seed` binary: `cargo run --bin seed -- DIR BUNDLE...`).

use sha2::{Digest, Sha256};

/// The key the signed targets trust and sign with (tests only).
pub const TEST_KEY: [u8; 32] = [1; 32];

pub struct Entry {
    /// tar entry type byte ('0' file, '5' dir, '2' symlink, '1' hard link,
    /// 'L'/'x' extensions, anything else).
    pub kind: u8,
    pub name: Vec<u8>,
    pub data: Vec<u8>,
}

pub struct Input {
    /// true: a manifest generated to match the entries.
    pub matching: bool,
    /// The manifest bytes (raw mode), or the version/abi/created text
    /// joined by '\n' (matching mode).
    pub manifest: Vec<u8>,
    pub entries: Vec<Entry>,
}

fn take<'a>(d: &mut &'a [u8], n: usize) -> &'a [u8] {
    let n = n.min(d.len());
    let (a, b) = d.split_at(n);
    *d = b;
    a
}

fn len16(d: &mut &[u8]) -> usize {
    let b = take(d, 2);
    match b {
        [x, y] => u16::from_le_bytes([*x, *y]) as usize,
        [x] => *x as usize,
        _ => 0,
    }
}

pub fn decode(mut d: &[u8]) -> Input {
    let d = &mut d;
    let mode = take(d, 1).first().copied().unwrap_or(0);
    let n = len16(d);
    let manifest = take(d, n).to_vec();
    let mut entries = Vec::new();
    while !d.is_empty() && entries.len() < 64 {
        let kind = take(d, 1)[0];
        let n = take(d, 1).first().copied().unwrap_or(0) as usize;
        let name = take(d, n).to_vec();
        let n = len16(d);
        let data = take(d, n).to_vec();
        entries.push(Entry { kind, name, data });
    }
    Input { matching: mode & 1 == 1, manifest, entries }
}

pub fn encode(input: &Input) -> Vec<u8> {
    let mut out = vec![input.matching as u8];
    out.extend((input.manifest.len() as u16).to_le_bytes());
    out.extend(&input.manifest);
    for e in &input.entries {
        out.push(e.kind);
        out.push(e.name.len() as u8);
        out.extend(&e.name);
        out.extend((e.data.len() as u16).to_le_bytes());
        out.extend(&e.data);
    }
    out
}

fn manifest_for(input: &Input) -> Vec<u8> {
    if !input.matching {
        return input.manifest.clone();
    }
    let text = String::from_utf8_lossy(&input.manifest);
    let mut parts = text.split('\n');
    let version = parts.next().unwrap_or("1.0.0").to_string();
    let abi: i64 = parts.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let created = parts.next().unwrap_or("2026-01-01T00:00:00Z").to_string();
    let files: Vec<serde_json::Value> = input
        .entries
        .iter()
        .filter(|e| e.kind == b'0')
        .map(|e| {
            let name = String::from_utf8_lossy(&e.name);
            serde_json::json!({
                "path": name.strip_prefix("payload/").unwrap_or(&name),
                "size": e.data.len(),
                "sha256": hex::encode(Sha256::digest(&e.data)),
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "format": 1, "bundle_version": version, "abi": abi, "created": created, "files": files,
    }))
    .unwrap()
}

/// A tar.gz bundle: the manifest, its signature by `key`, then the entries
/// as they are (raw headers, so any name and type byte goes through).
pub fn encode_bundle(input: &Input, key: &ed25519_dalek::SigningKey) -> Vec<u8> {
    use ed25519_dalek::Signer;
    let manifest = manifest_for(input);
    let sig = key.sign(&manifest).to_bytes();
    let mut tar = Vec::new();
    let mut push = |name: &[u8], kind: u8, data: &[u8]| {
        let mut h = [0u8; 512];
        let n = name.len().min(100);
        h[..n].copy_from_slice(&name[..n]);
        h[100..108].copy_from_slice(b"0000644\0");
        h[108..116].copy_from_slice(b"0000000\0");
        h[116..124].copy_from_slice(b"0000000\0");
        h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
        h[136..148].copy_from_slice(b"00000000000\0");
        h[156] = kind;
        if kind == b'2' || kind == b'1' {
            let t = data.len().min(100);
            h[157..157 + t].copy_from_slice(&data[..t]);
        }
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|b| *b as u32).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        tar.extend_from_slice(&h);
        let body = if kind == b'2' || kind == b'1' || kind == b'5' { &[][..] } else { data };
        if !body.is_empty() {
            tar.extend_from_slice(body);
            tar.resize(tar.len().div_ceil(512) * 512, 0);
        }
    };
    push(b"bundle.json", b'0', &manifest);
    push(b"bundle.sig", b'0', &sig);
    for e in &input.entries {
        push(&e.name, e.kind, &e.data);
    }
    tar.extend_from_slice(&[0u8; 1024]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    gz.finish().unwrap()
}

/// The fuzz input that encodes a real bundle: its manifest's fields
/// (matching mode) and its payload entries.
pub fn seed_from_bundle(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    let f = std::fs::File::open(path)?;
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let mut manifest = Vec::new();
    let mut entries = Vec::new();
    for e in a.entries()? {
        let mut e = e?;
        let name = e.path_bytes().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data)?;
        if name == b"bundle.json" {
            manifest = data;
        } else if name.starts_with(b"payload/") && data.len() < u16::MAX as usize && name.len() < 256 {
            entries.push(Entry { kind: b'0', name, data });
        }
    }
    let m: serde_json::Value = serde_json::from_slice(&manifest).map_err(std::io::Error::other)?;
    let fields = format!(
        "{}\n{}\n{}",
        m["bundle_version"].as_str().unwrap_or_default(),
        m["abi"],
        m["created"].as_str().unwrap_or_default()
    );
    Ok(encode(&Input { matching: true, manifest: fields.into_bytes(), entries }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A seed made from a real bundle encodes a bundle the real unpacker
    /// accepts: the signed target starts past the signature and the manifest.
    #[test]
    fn a_seed_from_a_real_bundle_unpacks() {
        let d = tempfile::tempdir().unwrap();
        let modules = d.path().join("modules");
        lms_bundle::testing::module_dir(&modules, "1.2.3");
        let key = ed25519_dalek::SigningKey::from_bytes(&TEST_KEY);
        let real = d.path().join("real.bundle");
        lms_bundle::create(&modules, "1.2.3", &key, &real).unwrap();
        let seed = seed_from_bundle(&real).unwrap();
        let b = d.path().join("b.bundle");
        std::fs::write(&b, encode_bundle(&decode(&seed), &key)).unwrap();
        let m = lms_bundle::verify_and_unpack(&b, &[key.verifying_key()], &Default::default(), &d.path().join("s"))
            .unwrap();
        assert_eq!(m.bundle_version, "1.2.3");
        // In raw mode the same entries fail on the manifest, named.
        let mut raw = decode(&seed);
        raw.matching = false;
        std::fs::write(&b, encode_bundle(&raw, &key)).unwrap();
        let e = lms_bundle::verify_and_unpack(&b, &[key.verifying_key()], &Default::default(), &d.path().join("t"))
            .unwrap_err();
        assert!(e.to_string().contains("manifest"), "{e}");
    }
}
