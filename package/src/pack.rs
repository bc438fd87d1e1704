//! A content pack directory, as content teams keep it in version control
//! and `lms-image content bundle` signs it:
//!
//! ```text
//! PACK/<name>.toml                   a native course (lms-content's format)
//! PACK/packages/<id>/course.json     an imported package's course (crate::Course)
//! PACK/packages/<id>/files.json      its files: path, size, sha256
//! PACK/packages/<id>/files/...       the files, as they were in the package
//! ```
//!
//! [`add`] stages every package first and moves them in only when all of
//! them unpacked, so a bad package adds nothing.

use crate::archive::FileEntry;
use crate::{Files, ImportError, Package};
use serde::Serialize;
use std::path::{Path, PathBuf};

pub const PACKAGES_DIR: &str = "packages";
pub const COURSE_FILE: &str = "course.json";
pub const FILES_LIST: &str = "files.json";
pub const FILES_DIR: &str = "files";
const STAGING: &str = ".staging";

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

/// The ids the pack's native TOML courses use, with their files.
fn native_ids(pack: &Path) -> Result<Vec<(String, PathBuf)>, AddError> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(pack).map_err(pack_err(pack))? {
        let path = e.map_err(pack_err(pack))?.path();
        if path.extension().is_some_and(|x| x == "toml") {
            let text = std::fs::read_to_string(&path).map_err(pack_err(&path))?;
            let id = toml::from_str::<toml::Table>(&text)
                .ok()
                .and_then(|t| t.get("id").and_then(|v| v.as_str()).map(str::to_string));
            if let Some(id) = id {
                out.push((id, path));
            }
        }
    }
    Ok(out)
}

/// The course already in the pack under `id`, if any.
pub fn existing(pack: &Path, id: &str) -> Result<Option<crate::Course>, AddError> {
    let path = pack.join(PACKAGES_DIR).join(id).join(COURSE_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| AddError::Pack { path, message: format!("not a course this tool wrote: {e}") }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(pack_err(&path)(e)),
    }
}

/// Adds `packages` to the pack at `pack` (created when missing): all, or
/// none when any cannot be added. A package whose course is already in the
/// pack (same publisher id) replaces it; another course under the same id
/// is refused.
pub fn add(pack: &Path, packages: Vec<Package>) -> Result<Vec<Added>, AddError> {
    std::fs::create_dir_all(pack.join(PACKAGES_DIR)).map_err(pack_err(pack))?;
    let natives = native_ids(pack)?;
    let mut seen: Vec<(String, String)> = Vec::new();
    for p in &packages {
        let c = &p.course;
        let clash = |message: String| {
            Err(ImportError { value: Some(c.id.clone()), ..ImportError::package(&c.source, message) }.into())
        };
        if let Some((_, file)) = natives.iter().find(|(id, _)| *id == c.id) {
            return clash(format!("course id is already used by {}; give the package another id", file.display()));
        }
        if let Some((_, other)) = seen.iter().find(|(id, _)| *id == c.id) {
            return clash(format!("course id is also the id of {other} in this same import"));
        }
        if let Some(old) = existing(pack, &c.id)?
            && old.publisher_id != c.publisher_id
        {
            return clash(format!(
                "course id is already {} (from {}) in the pack; give the package another id",
                old.publisher_id, old.source
            ));
        }
        seen.push((c.id.clone(), c.source.clone()));
    }

    let staging = pack.join(STAGING);
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(pack_err(&staging))?;
    }
    std::fs::create_dir_all(&staging).map_err(pack_err(&staging))?;
    let staged = stage_all(&staging, packages);
    let added = match staged {
        Ok(a) => a,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    sync_tree(pack)?;
    let packages_dir = pack.join(PACKAGES_DIR);
    for a in &added {
        let target = packages_dir.join(&a.course);
        if target.exists() {
            let old = staging.join(format!("{}.old", a.course));
            std::fs::rename(&target, &old).map_err(pack_err(&target))?;
        }
        std::fs::rename(staging.join(&a.course), &target).map_err(pack_err(&target))?;
    }
    sync_dir(&packages_dir)?;
    std::fs::remove_dir_all(&staging).map_err(pack_err(&staging))?;
    Ok(added)
}

fn stage_all(staging: &Path, packages: Vec<Package>) -> Result<Vec<Added>, AddError> {
    let mut added = Vec::new();
    for p in packages {
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
        added.push(added_of(&p.course));
    }
    Ok(added)
}

/// Copies one file into the pack, hashing it as it goes.
fn copy_one(package: &str, from: &Path, to: &Path, name: &str) -> Result<FileEntry, AddError> {
    use sha2::Digest;
    let io = |e: std::io::Error| ImportError::file(package, name, format!("{}: {e}", to.display()));
    let mut src = std::fs::File::open(from).map_err(io)?;
    let mut dst = std::fs::OpenOptions::new().write(true).create_new(true).open(to).map_err(io)?;
    let mut hash = sha2::Sha256::new();
    let mut buf = vec![0; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = std::io::Read::read(&mut src, &mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        std::io::Write::write_all(&mut dst, &buf[..n]).map_err(io)?;
        hash.update(&buf[..n]);
        size += n as u64;
    }
    Ok(FileEntry { path: name.to_string(), size, sha256: hex::encode(hash.finalize()) })
}

/// The report for one course: its id and its AUs with their titles.
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

/// One syncfs for everything written under `dir` (instead of an fsync per file).
fn sync_tree(dir: &Path) -> Result<(), AddError> {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(dir).map_err(pack_err(dir))?;
    // SAFETY: a valid, open file descriptor.
    if unsafe { libc::syncfs(f.as_raw_fd()) } != 0 {
        return Err(pack_err(dir)(std::io::Error::last_os_error()));
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), AddError> {
    std::fs::File::open(dir).and_then(|f| f.sync_all()).map_err(pack_err(dir))
}

/// Checks a whole pack before it is bundled, and returns its course ids:
/// the native courses validate together (lms-content's rules), every
/// package's `course.json` is one this crate wrote for that directory, every
/// file its `files.json` lists is there with that size, and no two courses
/// share an id.
pub fn check(pack: &Path) -> Result<Vec<String>, AddError> {
    let bad = |path: &Path, message: String| AddError::Pack { path: path.to_path_buf(), message };
    let mut natives = Vec::new();
    for (id, path) in native_ids(pack)? {
        let text = std::fs::read_to_string(&path).map_err(pack_err(&path))?;
        let course: lms_content::Course =
            toml::from_str(&text).map_err(|e| bad(&path, format!("not a course: {e}")))?;
        natives.push((id, path, course));
    }
    let courses: Vec<lms_content::Course> = natives.iter().map(|(_, _, c)| c.clone()).collect();
    let errs = lms_content::validate(&courses);
    if !errs.is_empty() {
        return Err(bad(pack, errs.join("; ")));
    }
    let mut ids: Vec<String> = natives.iter().map(|(id, _, _)| id.clone()).collect();
    let packages = pack.join(PACKAGES_DIR);
    if packages.is_dir() {
        let mut dirs: Vec<_> = std::fs::read_dir(&packages)
            .map_err(pack_err(&packages))?
            .collect::<Result<_, _>>()
            .map_err(pack_err(&packages))?;
        dirs.sort_by_key(|e| e.file_name());
        for e in dirs {
            let dir = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let course = existing(pack, &name)?.ok_or_else(|| bad(&dir, format!("no {COURSE_FILE}")))?;
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
            if ids.contains(&course.id) {
                return Err(bad(&dir, format!("course id {:?} is also a native course's", course.id)));
            }
            ids.push(course.id);
        }
    }
    ids.sort();
    Ok(ids)
}
