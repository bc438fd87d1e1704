//! A content pack directory, as content teams keep it in version control
//! and `lms-image content bundle` signs it:
//!
//! ```text
//! PACK/pack.toml                     activity_base, and the courses in catalog order
//! PACK/courses/<id>.toml             a native course (lms-content's format)
//! PACK/courses/<id>/...              its media: the images, videos and audio
//!                                    its lessons' Markdown names (`![alt](path)`)
//! PACK/packages/<id>/course.json     an imported package's course (crate::Course)
//! PACK/packages/<id>/files.json      its files: path, size, sha256
//! PACK/packages/<id>/files/...       the files, as they were in the package
//! ```
//!
//! [`add`] checks and stages every input first and moves them in only when
//! all of them are ready, so a bad package adds nothing.

use crate::archive::FileEntry;
use crate::{Files, ImportError, Package};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const PACK_FILE: &str = "pack.toml";
pub const COURSES_DIR: &str = "courses";
pub const PACKAGES_DIR: &str = "packages";
pub const COURSE_FILE: &str = "course.json";
pub const FILES_LIST: &str = "files.json";
pub const FILES_DIR: &str = "files";
const STAGING: &str = ".staging";
/// The activity base a new pack starts with (the one this repository's
/// own courses use); a network sets its own in `pack.toml`.
pub const DEFAULT_ACTIVITY_BASE: &str = "https://lms.example.org/xapi/activities";

/// `pack.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackToml {
    /// The IRI under which native courses' lessons and quizzes get their
    /// xAPI activity ids.
    pub activity_base: String,
    /// Course ids in catalog order.
    pub courses: Vec<String>,
}

/// What [`add`] reports per course (also the node's answer to an upload).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Added {
    pub course: String,
    pub aus: Vec<AddedAu>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AddedAu {
    pub index: usize,
    pub id: String,
    pub title: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AddError {
    #[error(transparent)]
    Package(#[from] ImportError),
    #[error("{path}: {message}")]
    Pack { path: PathBuf, message: String },
}

fn pack_err(path: &Path) -> impl Fn(std::io::Error) -> AddError + '_ {
    move |e| AddError::Pack { path: path.to_path_buf(), message: e.to_string() }
}

fn bad(path: &Path, message: impl Into<String>) -> AddError {
    AddError::Pack { path: path.to_path_buf(), message: message.into() }
}

/// A native course read from its TOML file.
pub struct Native {
    pub source: PathBuf,
    pub course: lms_content::Course,
    pub text: String,
}

/// What [`add`] takes: an imported package or a native course.
pub enum Input {
    Package(Package),
    Native(Native),
}

impl Input {
    fn id(&self) -> &str {
        match self {
            Input::Package(p) => &p.course.id,
            Input::Native(n) => &n.course.id,
        }
    }
    fn source(&self) -> String {
        match self {
            Input::Package(p) => p.course.source.clone(),
            Input::Native(n) => n.source.display().to_string(),
        }
    }
}

/// Reads a native course file; a TOML error names the file, line and column.
pub fn read_native(path: &Path) -> Result<Native, ImportError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ImportError::package(&name, e.to_string()))?;
    let course: lms_content::Course = toml::from_str(&text).map_err(|e| {
        let line = e.span().map(|s| text[..s.start.min(text.len())].lines().count().max(1) as u32);
        ImportError { line, ..ImportError::package(&name, format!("not a course: {}", e.message())) }
    })?;
    Ok(Native { source: path.to_path_buf(), course, text })
}

/// `pack.toml`, or `None` when the pack has none yet.
pub fn read_pack_toml(pack: &Path) -> Result<Option<PackToml>, AddError> {
    let path = pack.join(PACK_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).map(Some).map_err(|e| bad(&path, e.to_string().trim().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(pack_err(&path)(e)),
    }
}

/// The pack's native courses (`courses/*.toml`).
fn natives_in(pack: &Path) -> Result<Vec<Native>, AddError> {
    let dir = pack.join(COURSES_DIR);
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(out) };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if path.extension().is_some_and(|x| x == "toml") {
            out.push(read_native(&path)?);
        }
    }
    Ok(out)
}

/// The course already in the pack under `id` as an imported package, if any.
pub fn existing(pack: &Path, id: &str) -> Result<Option<crate::Course>, AddError> {
    let path = pack.join(PACKAGES_DIR).join(id).join(COURSE_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| bad(&path, format!("not a course this tool wrote: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(pack_err(&path)(e)),
    }
}

/// Adds `inputs` to the pack at `pack` (created when missing): all, or none
/// when any cannot be added. A package whose course is already in the pack
/// (same publisher id) replaces it, as a native course file replaces the
/// native course of its id; a different course under an id in use is
/// refused. New courses join the end of the catalog order in `pack.toml`.
pub fn add(pack: &Path, inputs: Vec<Input>) -> Result<Vec<Added>, AddError> {
    let natives = natives_in(pack)?;
    let mut seen: Vec<(String, String)> = Vec::new();
    for input in &inputs {
        let id = input.id().to_string();
        let source = input.source();
        let clash = |message: String| -> Result<(), AddError> {
            Err(ImportError { value: Some(id.clone()), ..ImportError::package(&source, message) }.into())
        };
        if let Some((_, other)) = seen.iter().find(|(i, _)| *i == id) {
            clash(format!("course id is also the id of {other} in this same import"))?;
        }
        let old_package = existing(pack, &id)?;
        let old_native = natives.iter().find(|n| n.course.id == id);
        match input {
            Input::Package(p) => {
                if let Some(n) = old_native {
                    clash(format!("course id is already used by {}; give the package another id", n.source.display()))?;
                }
                if let Some(old) = old_package
                    && old.publisher_id != p.course.publisher_id
                {
                    clash(format!(
                        "course id is already {} (from {}) in the pack; give the package another id",
                        old.publisher_id, old.source
                    ))?;
                }
            }
            Input::Native(_) => {
                if let Some(old) = old_package {
                    clash(format!("course id is already {} (from {}) in the pack", old.publisher_id, old.source))?;
                }
            }
        }
        seen.push((id, source));
    }
    // Native courses are checked together with the pack's others (quiz ids
    // are unique across courses); one of the same id is replaced.
    let new_natives: Vec<&Native> =
        inputs.iter().filter_map(|i| if let Input::Native(n) = i { Some(n) } else { None }).collect();
    if !new_natives.is_empty() {
        let mut all: Vec<lms_content::Course> = natives
            .iter()
            .filter(|n| !new_natives.iter().any(|m| m.course.id == n.course.id))
            .map(|n| n.course.clone())
            .collect();
        all.extend(new_natives.iter().map(|n| n.course.clone()));
        let errs = lms_content::validate(&all);
        if !errs.is_empty() {
            let names: Vec<String> = new_natives.iter().map(|n| n.source.display().to_string()).collect();
            return Err(ImportError::package(&names.join(", "), errs.join("; ")).into());
        }
    }

    let mut toml = read_pack_toml(pack)?
        .unwrap_or_else(|| PackToml { activity_base: DEFAULT_ACTIVITY_BASE.into(), courses: Vec::new() });
    std::fs::create_dir_all(pack.join(PACKAGES_DIR)).map_err(pack_err(pack))?;
    std::fs::create_dir_all(pack.join(COURSES_DIR)).map_err(pack_err(pack))?;
    let staging = pack.join(STAGING);
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(pack_err(&staging))?;
    }
    std::fs::create_dir_all(&staging).map_err(pack_err(&staging))?;
    let added = match stage_all(&staging, inputs) {
        Ok(a) => a,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    // One syncfs for everything staged (lms-bundle's, as for bundles).
    lms_bundle::sync_tree(pack).map_err(|e| bad(pack, e.to_string()))?;
    for (a, native) in &added {
        if *native {
            let target = pack.join(COURSES_DIR).join(format!("{}.toml", a.course));
            for n in natives.iter().filter(|n| n.course.id == a.course && n.source != target) {
                std::fs::remove_file(&n.source).map_err(pack_err(&n.source))?;
            }
            std::fs::rename(staging.join(format!("{}.toml", a.course)), &target).map_err(pack_err(&target))?;
            // Its media directory goes with it (the old one is replaced whole).
            let media = pack.join(COURSES_DIR).join(&a.course);
            if media.exists() {
                let old = staging.join(format!("{}.old-media", a.course));
                std::fs::rename(&media, &old).map_err(pack_err(&media))?;
            }
            let staged = staging.join(media_staging(&a.course));
            if staged.exists() {
                std::fs::rename(&staged, &media).map_err(pack_err(&media))?;
            }
        } else {
            let target = pack.join(PACKAGES_DIR).join(&a.course);
            if target.exists() {
                let old = staging.join(format!("{}.old", a.course));
                std::fs::rename(&target, &old).map_err(pack_err(&target))?;
            }
            std::fs::rename(staging.join(&a.course), &target).map_err(pack_err(&target))?;
        }
        if !toml.courses.contains(&a.course) {
            toml.courses.push(a.course.clone());
        }
    }
    let text = toml::to_string(&toml).expect("toml");
    let tmp = staging.join(PACK_FILE);
    std::fs::write(&tmp, text).map_err(pack_err(&tmp))?;
    std::fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(pack_err(&tmp))?;
    std::fs::rename(&tmp, pack.join(PACK_FILE)).map_err(pack_err(pack))?;
    for d in [pack.join(PACKAGES_DIR), pack.join(COURSES_DIR), pack.to_path_buf()] {
        sync_dir(&d)?;
    }
    std::fs::remove_dir_all(&staging).map_err(pack_err(&staging))?;
    Ok(added.into_iter().map(|(a, _)| a).collect())
}

/// Stages each input under `staging`; returns what was added and whether it is native.
fn stage_all(staging: &Path, inputs: Vec<Input>) -> Result<Vec<(Added, bool)>, AddError> {
    let mut added = Vec::new();
    for input in inputs {
        let p = match input {
            Input::Native(n) => {
                let path = staging.join(format!("{}.toml", n.course.id));
                std::fs::write(&path, &n.text).map_err(pack_err(&path))?;
                stage_media(&n, &staging.join(media_staging(&n.course.id)))?;
                added.push((native_added(&n.course), true));
                continue;
            }
            Input::Package(p) => p,
        };
        let dir = staging.join(&p.course.id);
        let files_dir = dir.join(FILES_DIR);
        std::fs::create_dir_all(&files_dir).map_err(pack_err(&files_dir))?;
        let files: Vec<FileEntry> = match p.files {
            Files::Zip(mut zip) => zip.unpack(&files_dir)?,
            Files::Single { path, name } => vec![copy_one(&p.course.source, &path, &files_dir.join(&name), &name)?],
            Files::None => Vec::new(),
        };
        let write = |name: &str, bytes: Vec<u8>| std::fs::write(dir.join(name), bytes).map_err(pack_err(&dir));
        write(COURSE_FILE, serde_json::to_vec_pretty(&p.course).expect("json"))?;
        write(FILES_LIST, serde_json::to_vec_pretty(&files).expect("json"))?;
        added.push((added_of(&p.course), false));
    }
    Ok(added)
}

/// Where a native course's media are staged.
fn media_staging(course: &str) -> String {
    format!("{course}.media")
}

/// The distinct media files a native course's lessons show, in its media
/// directory `dir`: (the path as lessons name it, the file). A path that
/// names no regular file there is refused: (that path, why, naming the
/// lesson and the file).
fn course_media(c: &lms_content::Course, dir: &Path) -> Result<Vec<(String, PathBuf)>, (String, String)> {
    let mut out: Vec<(String, PathBuf)> = Vec::new();
    for l in &c.lessons {
        for m in lms_content::media_refs(&l.body) {
            if out.iter().any(|(p, _)| *p == m) {
                continue;
            }
            let file = dir.join(&m);
            if !std::fs::symlink_metadata(&file).is_ok_and(|md| md.is_file()) {
                let why = format!("lesson {:?} shows {m:?}, but {} is not a file", l.id, file.display());
                return Err((m, why));
            }
            out.push((m, file));
        }
    }
    Ok(out)
}

/// Copies the media a native course's lessons name from its media
/// directory beside the TOML file (`<dir>/<course id>/<path>`) to `to`.
/// A file that is not there refuses the course, naming lesson and path.
fn stage_media(n: &Native, to: &Path) -> Result<(), AddError> {
    let from = n.source.parent().unwrap_or(Path::new(".")).join(&n.course.id);
    let source = n.source.display().to_string();
    let files = course_media(&n.course, &from)
        .map_err(|(m, why)| ImportError { value: Some(m), ..ImportError::package(&source, why) })?;
    for (m, src) in files {
        let dst = to.join(&m);
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent).map_err(pack_err(parent))?;
        }
        copy_one(&source, &src, &dst, &m)?;
    }
    Ok(())
}

/// Copies one file into the pack, hashing it as it goes.
fn copy_one(package: &str, from: &Path, to: &Path, name: &str) -> Result<FileEntry, AddError> {
    let io = |e: std::io::Error| ImportError::file(package, name, format!("{}: {e}", to.display()));
    let mut dst = crate::archive::HashingWriter::create(to).map_err(io)?;
    std::io::copy(&mut std::fs::File::open(from).map_err(io)?, &mut dst).map_err(io)?;
    let (size, sha256) = dst.finish().map_err(io)?;
    Ok(FileEntry { path: name.to_string(), size, sha256 })
}

/// The report for one imported course: its id and its launchable units.
pub fn added_of(c: &crate::Course) -> Added {
    Added {
        course: c.id.clone(),
        aus: c
            .aus
            .iter()
            .map(|au| (au.index, &au.id, &au.title))
            .chain(c.units.iter().map(|u| (u.index, &u.id, &u.title)))
            .map(|(index, id, title)| AddedAu {
                index,
                id: id.clone(),
                title: crate::course::text_in(title, "").to_string(),
            })
            .collect(),
    }
}

/// The report for a native course: its lessons.
fn native_added(c: &lms_content::Course) -> Added {
    Added {
        course: c.id.clone(),
        aus: c
            .lessons
            .iter()
            .enumerate()
            .map(|(index, l)| AddedAu { index, id: l.id.clone(), title: l.title.clone() })
            .collect(),
    }
}

fn sync_dir(dir: &Path) -> Result<(), AddError> {
    std::fs::File::open(dir).and_then(|f| f.sync_all()).map_err(pack_err(dir))
}

/// Copies the pack at `from` to `to` (made when missing), every file and
/// directory, with `edit(file name, text)` applied to each native course's
/// TOML: a working copy for the next version (tests and benchmarks make
/// one-word fixes this way).
pub fn copy_with(from: &Path, to: &Path, edit: &dyn Fn(&str, String) -> String) -> std::io::Result<()> {
    fn copy_tree(from: &Path, to: &Path, courses: bool, edit: &dyn Fn(&str, String) -> String) -> std::io::Result<()> {
        std::fs::create_dir_all(to)?;
        for e in std::fs::read_dir(from)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if e.file_type()?.is_dir() {
                copy_tree(&e.path(), &to.join(&name), !courses && name == COURSES_DIR, edit)?;
            } else if courses && name.ends_with(".toml") {
                std::fs::write(to.join(&name), edit(&name, std::fs::read_to_string(e.path())?))?;
            } else {
                std::fs::copy(e.path(), to.join(&name))?;
            }
        }
        Ok(())
    }
    copy_tree(from, to, false, edit)
}

/// A pack checked whole: its `pack.toml` and course ids in catalog order.
#[derive(Debug, Clone)]
pub struct Checked {
    pub activity_base: String,
    pub courses: Vec<String>,
    /// The native courses, in catalog order.
    pub natives: Vec<lms_content::Course>,
    /// The imported courses, in catalog order.
    pub packages: Vec<crate::Course>,
    /// Each imported course's files (its `files.json`), by course id.
    pub files: std::collections::BTreeMap<String, Vec<FileEntry>>,
    /// Each native course's media (in `courses/<id>/`, hashed), by course
    /// id; courses without media have no entry.
    pub media: std::collections::BTreeMap<String, Vec<FileEntry>>,
}

/// Checks a whole pack before it is bundled or served: `pack.toml` is there
/// and lists only courses the pack has; the native courses validate
/// together (lms-content's rules); every package's `course.json` is one
/// this crate wrote for its directory, with every file `files.json` lists
/// present at that size; no two courses share an id. Courses `pack.toml`
/// does not list come last, by id.
pub fn check(pack: &Path) -> Result<Checked, AddError> {
    let toml_path = pack.join(PACK_FILE);
    let toml = read_pack_toml(pack)?
        .ok_or_else(|| bad(&toml_path, "missing: a content pack names its activity_base and catalog order here"))?;
    let natives: Vec<lms_content::Course> = natives_in(pack)?.into_iter().map(|n| n.course).collect();
    let errs = lms_content::validate(&natives);
    if !errs.is_empty() {
        return Err(bad(&pack.join(COURSES_DIR), errs.join("; ")));
    }
    let media = check_media(pack, &natives)?;
    let mut packages = Vec::new();
    let mut files = std::collections::BTreeMap::new();
    let dir = pack.join(PACKAGES_DIR);
    if dir.is_dir() {
        let mut entries: Vec<_> =
            std::fs::read_dir(&dir).map_err(pack_err(&dir))?.collect::<Result<_, _>>().map_err(pack_err(&dir))?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') {
                let (course, list) = check_package(pack, &e.path(), &name)?;
                files.insert(course.id.clone(), list);
                packages.push(course);
            }
        }
    }
    let mut ids: Vec<String> = natives.iter().map(|c| c.id.clone()).collect();
    for p in &packages {
        if ids.contains(&p.id) {
            return Err(bad(&dir.join(&p.id), format!("course id {:?} is also a native course's", p.id)));
        }
        ids.push(p.id.clone());
    }
    for listed in &toml.courses {
        if !ids.contains(listed) {
            return Err(bad(&toml_path, format!("courses lists {listed:?}, which the pack does not have")));
        }
    }
    let mut order = toml.courses.clone();
    let mut rest: Vec<String> = ids.into_iter().filter(|i| !order.contains(i)).collect();
    rest.sort();
    order.extend(rest);
    let rank = |id: &str| order.iter().position(|o| o == id).unwrap_or(usize::MAX);
    let mut natives = natives;
    natives.sort_by_key(|c| rank(&c.id));
    packages.sort_by_key(|c| rank(&c.id));
    Ok(Checked { activity_base: toml.activity_base, courses: order, natives, packages, files, media })
}

/// Every media file a native course's lessons name is a regular file in
/// its media directory (hashed here: the node serves it under its sha256).
fn check_media(
    pack: &Path,
    natives: &[lms_content::Course],
) -> Result<std::collections::BTreeMap<String, Vec<FileEntry>>, AddError> {
    let mut out = std::collections::BTreeMap::new();
    for c in natives {
        let toml = pack.join(COURSES_DIR).join(format!("{}.toml", c.id));
        let found = course_media(c, &pack.join(COURSES_DIR).join(&c.id)).map_err(|(_, why)| bad(&toml, why))?;
        let mut files: Vec<FileEntry> = Vec::new();
        for (m, path) in found {
            let (size, sha256) = lms_bundle::blobs::hash_file(&path).map_err(|e| bad(&path, e.to_string()))?;
            files.push(FileEntry { path: m, size, sha256 });
        }
        if !files.is_empty() {
            out.insert(c.id.clone(), files);
        }
    }
    Ok(out)
}

fn check_package(pack: &Path, dir: &Path, name: &str) -> Result<(crate::Course, Vec<FileEntry>), AddError> {
    let course = existing(pack, name)?.ok_or_else(|| bad(dir, format!("no {COURSE_FILE}")))?;
    if course.id != name {
        return Err(bad(&dir.join(COURSE_FILE), format!("says id {:?}, its directory is {name:?}", course.id)));
    }
    if course.format != crate::course::COURSE_FORMAT {
        return Err(bad(
            &dir.join(COURSE_FILE),
            format!("format {} is not {}", course.format, crate::course::COURSE_FORMAT),
        ));
    }
    let list = dir.join(FILES_LIST);
    let files: Vec<FileEntry> = serde_json::from_slice(&std::fs::read(&list).map_err(pack_err(&list))?)
        .map_err(|e| bad(&list, e.to_string()))?;
    for f in &files {
        let path = dir.join(FILES_DIR).join(&f.path);
        let size = std::fs::metadata(&path).map_err(pack_err(&path))?.len();
        if size != f.size {
            return Err(bad(&path, format!("{size} bytes, {FILES_LIST} says {}", f.size)));
        }
    }
    Ok((course, files))
}
