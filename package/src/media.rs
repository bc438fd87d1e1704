//! One video (MP4, WebM) or PDF as a course of its own: the node serves the
//! file (with Range, for seeking) in its player page.

use crate::course::{Course, Kind, UnitKind};
use crate::{ImportError, Options};

/// The kind of media `name` is, judged by its extension and confirmed by
/// its first bytes (an `.mp4` that is not one is not media).
pub fn kind(name: &str, head: &[u8]) -> Option<UnitKind> {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "mp4" | "m4v" if head.len() >= 8 && &head[4..8] == b"ftyp" => Some(UnitKind::Video),
        "webm" if head.starts_with(&[0x1a, 0x45, 0xdf, 0xa3]) => Some(UnitKind::Video),
        "pdf" if head.starts_with(b"%PDF-") => Some(UnitKind::Pdf),
        _ => None,
    }
}

pub fn course(package: &str, kind: UnitKind, options: &Options) -> Result<Course, ImportError> {
    let title = options
        .title
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ImportError::package(package, "a video or PDF carries no title; give it one (--title)"))?
        .to_string();
    let id = crate::html5::course_id(package, options.id)?;
    let ext = package.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    let file = format!("{id}.{ext}");
    Ok(Course::single(package, Kind::Media, id, title, (kind, file)))
}
