//! Names the static files by their content (`static/app.css` becomes
//! `/static/app.{sha256[..16]}.css`), so the pages link to URLs that change
//! whenever a file does and can be cached forever. `cargo xtask modules`
//! copies the files into the module directory under the same names (both
//! use `lms_abi::asset_file_name`), and the host serves only the files the
//! manifest lists, after checking their sha256.

use sha2::{Digest, Sha256};
use std::fmt::Write;

fn main() {
    let dir = std::path::Path::new("static");
    println!("cargo::rerun-if-changed=static");
    let mut names: Vec<_> =
        std::fs::read_dir(dir).expect("static/").map(|e| e.expect("static/ entry").path()).collect();
    names.sort();
    let mut out = String::from(
        "/// URLs of the static files, by their name in `static/`.\npub const ASSETS: &[(&str, &str)] = &[\n",
    );
    for path in names {
        let name = path.file_name().and_then(|n| n.to_str()).expect("a UTF-8 file name").to_string();
        let bytes = std::fs::read(&path).expect("a readable static file");
        let hex: String = Sha256::digest(&bytes).iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        });
        let _ = writeln!(out, "    ({name:?}, \"/static/{}\"),", lms_abi::asset_file_name(&name, &hex));
    }
    out.push_str("];\n");
    let dest = std::path::Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("assets.rs");
    std::fs::write(dest, out).expect("writing assets.rs");
}
