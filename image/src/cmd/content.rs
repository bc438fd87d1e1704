//! `lms-image content ...`: what content teams run on their packages.
//! `add` imports packages into a content pack directory (all of them, or
//! none when one is bad); the pack is what a content bundle is made from.

use anyhow::{Context, bail};
use lms_package::{Limits, Options, pack};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Subcommand)]
enum Cmd {
    /// Import packages into a content pack: cmi5 (zip or standalone
    /// cmi5.xml), SCORM 1.2/2004 zips, HTML5 zips (index.html), a video
    /// (MP4, WebM) or PDF, a native course (.toml). Nothing is added when
    /// any package is refused.
    Add(AddArgs),
    /// Sign the pack as a content bundle: a manifest of every file (path,
    /// size, sha256) and each distinct file once; `lms-image publish` puts
    /// it on a content channel, where nodes fetch only the files they lack.
    Bundle(BundleArgs),
}

#[derive(clap::Args)]
struct BundleArgs {
    #[arg(long)]
    pack: PathBuf,
    /// Content version (MAJOR.MINOR.PATCH), above the channel's current one.
    #[arg(long)]
    version: String,
    /// Signing key (PREFIX.key from keygen).
    #[arg(long)]
    key: PathBuf,
    #[arg(long)]
    out: PathBuf,
}

#[derive(clap::Args)]
struct AddArgs {
    /// The content pack directory (created when missing).
    #[arg(long)]
    pack: PathBuf,
    /// The course id in the pack (one package only; default: from the
    /// package's own id, or its file name).
    #[arg(long)]
    id: Option<String>,
    /// The title, for a video, a PDF or an HTML5 app without a <title> (one package only).
    #[arg(long)]
    title: Option<String>,
    /// Print what was added as JSON (`[{"course", "aus": [{"index", "id", "title"}]}]`).
    #[arg(long)]
    json: bool,
    #[arg(required = true)]
    packages: Vec<PathBuf>,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    match a.cmd {
        Cmd::Add(a) => add(a),
        Cmd::Bundle(a) => bundle(a),
    }
}

fn bundle(a: BundleArgs) -> anyhow::Result<()> {
    let checked = pack::check(&a.pack).with_context(|| format!("checking the pack {}", a.pack.display()))?;
    let key = lms_bundle::keys::load_signing(&a.key)?;
    let m = lms_bundle::content::create(&a.pack, &a.version, checked.courses, &key, &a.out)
        .with_context(|| format!("bundling {}", a.pack.display()))?;
    let size = std::fs::metadata(&a.out).with_context(|| format!("reading back {}", a.out.display()))?.len();
    let blobs: std::collections::BTreeSet<&str> = m.files.iter().map(|f| f.sha256.as_str()).collect();
    println!(
        "content bundle {} version {} ({} courses, {} files, {} distinct, {size} bytes) signed by key {}",
        a.out.display(),
        m.content_version,
        m.courses.len(),
        m.files.len(),
        blobs.len(),
        lms_bundle::keys::key_id(&key.verifying_key())
    );
    Ok(())
}

fn add(a: AddArgs) -> anyhow::Result<()> {
    if a.packages.len() > 1 && (a.id.is_some() || a.title.is_some()) {
        bail!("--id and --title name one package; {} were given", a.packages.len());
    }
    let options = Options { id: a.id.as_deref(), title: a.title.as_deref() };
    let limits = Limits::default();
    let mut inputs = Vec::new();
    for p in &a.packages {
        inputs.push(if p.extension().is_some_and(|e| e == "toml") {
            pack::Input::Native(pack::read_native(p)?)
        } else {
            pack::Input::Package(lms_package::read(p, &options, &limits)?)
        });
    }
    let added = pack::add(&a.pack, inputs)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&added)?);
    } else {
        for c in &added {
            println!("added {} to {} ({} launchable units)", c.course, a.pack.display(), c.aus.len());
        }
    }
    Ok(())
}
