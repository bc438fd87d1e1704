//! `lms-image content ...`: what content teams run on their packages.
//! `add` imports packages into a content pack directory (all of them, or
//! none when one is bad); the pack is what a content bundle is made from.

use anyhow::{Context, bail};
use lms_package::{Limits, Options, pack};
use std::path::{Path, PathBuf};

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
    let courses = pack::check(&a.pack).with_context(|| format!("checking the pack {}", a.pack.display()))?;
    let key = lms_bundle::keys::load_signing(&a.key)?;
    let m = lms_bundle::content::create(&a.pack, &a.version, courses, &key, &a.out)
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
    let (natives, others): (Vec<PathBuf>, Vec<PathBuf>) =
        a.packages.into_iter().partition(|p| p.extension().is_some_and(|e| e == "toml"));
    let natives = native::read_all(&a.pack, &natives)?;
    let mut packages = Vec::new();
    for p in &others {
        packages.push(lms_package::read(p, &options, &limits)?);
    }
    for p in &packages {
        if natives.iter().any(|n| n.course.id == p.course.id) {
            bail!(
                "{}: course id {:?} is also the id of a native course in this same import",
                p.course.source,
                p.course.id
            );
        }
    }
    let mut added = pack::add(&a.pack, packages)?;
    for n in &natives {
        added.push(native::write(&a.pack, n)?);
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&added)?);
    } else {
        for c in &added {
            println!("added {} to {} ({} launchable units)", c.course, a.pack.display(), c.aus.len());
        }
    }
    Ok(())
}

/// Native courses: lms-content's TOML, validated with the pack's others.
mod native {
    use super::*;

    pub struct Native {
        pub source: PathBuf,
        pub course: lms_content::Course,
        pub text: String,
    }

    fn parse(path: &Path) -> anyhow::Result<lms_content::Course> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("{}: not a course", path.display()))
    }

    /// The pack's native courses, by file.
    fn in_pack(pack: &Path) -> anyhow::Result<Vec<(PathBuf, lms_content::Course)>> {
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir(pack) else { return Ok(out) };
        for e in entries {
            let path = e?.path();
            if path.extension().is_some_and(|x| x == "toml") {
                out.push((path.clone(), parse(&path)?));
            }
        }
        Ok(out)
    }

    pub fn read_all(pack: &Path, files: &[PathBuf]) -> anyhow::Result<Vec<Native>> {
        if files.is_empty() {
            return Ok(Vec::new());
        }
        let mut new = Vec::new();
        for f in files {
            let course = parse(f)?;
            if let Some(old) = pack::existing(pack, &course.id)? {
                bail!(
                    "{}: course id {:?} is already {} (from {}) in the pack",
                    f.display(),
                    course.id,
                    old.publisher_id,
                    old.source
                );
            }
            let text = std::fs::read_to_string(f)?;
            new.push(Native { source: f.clone(), course, text });
        }
        // Checked together with the pack's other native courses (quiz ids
        // are unique across courses); a course of the same id is replaced.
        let mut all: Vec<lms_content::Course> =
            in_pack(pack)?.into_iter().map(|(_, c)| c).filter(|c| !new.iter().any(|n| n.course.id == c.id)).collect();
        all.extend(new.iter().map(|n| n.course.clone()));
        let errs = lms_content::validate(&all);
        if !errs.is_empty() {
            let names: Vec<String> = new.iter().map(|n| n.source.display().to_string()).collect();
            bail!("{}: {}", names.join(", "), errs.join("; "));
        }
        Ok(new)
    }

    /// Writes the course as `PACK/<id>.toml` (atomically), removing another
    /// file that held the same id.
    pub fn write(pack: &Path, n: &Native) -> anyhow::Result<pack::Added> {
        std::fs::create_dir_all(pack)?;
        let target = pack.join(format!("{}.toml", n.course.id));
        for (file, c) in in_pack(pack)? {
            if c.id == n.course.id && file != target {
                std::fs::remove_file(&file).with_context(|| format!("removing {}", file.display()))?;
            }
        }
        let tmp = pack.join(format!(".{}.toml.tmp", n.course.id));
        std::fs::write(&tmp, &n.text).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::File::open(&tmp).and_then(|f| f.sync_all())?;
        std::fs::rename(&tmp, &target).with_context(|| format!("writing {}", target.display()))?;
        Ok(pack::Added {
            course: n.course.id.clone(),
            aus: n
                .course
                .lessons
                .iter()
                .enumerate()
                .map(|(index, l)| pack::AddedAu { index, id: l.id.clone(), title: l.title.clone() })
                .collect(),
        })
    }
}
