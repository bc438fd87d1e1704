//! Course content the node serves from a content directory (the updater's
//! `content_dir/current`, a content pack as `lms-image content bundle`
//! signs it): native courses are checked and flattened into the documents
//! the modules read, instead of the module bundle's own `content.json`;
//! imported packages (cmi5, SCORM, HTML5, media) are listed.
//!
//! Without a content directory the catalog is empty (module bundles of
//! format 2 carry code and templates only; a format 1 bundle's own courses
//! still serve).
//!
//! What it must never do: serve a pack that does not check whole (a bad
//! pack fails the reload, so the previous content keeps serving and the
//! updater's gate rolls the version back).

pub mod cmi5;
pub mod scorm;
pub mod serve;
pub mod upload;

use crate::wasm::{Content, LoadError};
use lms_content::{CompletionRules, CourseDoc, CourseSummary, Entry, Launch, Localized};
use lms_package::course::{Kind, LangMap, UnitKind};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The manifest lms-updater keeps in a content slot.
const SLOT_MANIFEST: &str = ".content.json";

/// What was loaded from a content directory, for /readyz and logs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ContentInfo {
    pub dir: PathBuf,
    /// The installed `content_version` (`None` for a pack that was not
    /// installed by lms-updater, such as a development checkout).
    pub version: Option<String>,
    pub courses: Vec<String>,
    /// Imported packages (not yet launched by the node: issue 13).
    pub packages: Vec<String>,
}

/// The packages of the local content pack at `dir` (none when it is not a
/// pack yet).
pub fn local_packages(dir: &Path) -> Result<serve::PackageIndex, LoadError> {
    if !dir.join(lms_package::pack::PACK_FILE).is_file() {
        return Ok(Default::default());
    }
    let pack = lms_package::pack::check(dir)
        .map_err(|e| LoadError::File { path: dir.to_path_buf(), message: format!("local content pack: {e}") })?;
    Ok(serve::index_pack(dir, &pack))
}

/// What the node serves from a content pack.
pub struct Loaded {
    /// The documents the modules read.
    pub content: Content,
    pub info: ContentInfo,
    pub packages: serve::PackageIndex,
    pub media: serve::MediaIndex,
}

/// The content pack at `dir` as module documents, or `None` when `dir` is
/// not a content pack (no `pack.toml`). Lessons that show media get the
/// URLs the node serves them at (`LessonDoc::media`).
pub fn load(dir: &Path) -> Result<Option<Loaded>, LoadError> {
    if !dir.join(lms_package::pack::PACK_FILE).is_file() {
        return Ok(None);
    }
    let err = |message: String| LoadError::File { path: dir.to_path_buf(), message };
    let pack = lms_package::pack::check(dir).map_err(|e| err(format!("content pack: {e}")))?;
    let version = match std::fs::read(dir.join(SLOT_MANIFEST)) {
        Ok(bytes) => {
            let m: serde_json::Value =
                serde_json::from_slice(&bytes).map_err(|e| err(format!("{SLOT_MANIFEST}: {e}")))?;
            Some(
                m["content_version"]
                    .as_str()
                    .ok_or_else(|| err(format!("{SLOT_MANIFEST}: no content_version")))?
                    .to_string(),
            )
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(err(format!("{SLOT_MANIFEST}: {e}"))),
    };
    let mut flat = lms_content::flatten(&pack.activity_base, &pack.natives);
    link_media(&mut flat.docs, &pack);
    let content = Content::from_docs(flat.docs);
    let info = ContentInfo {
        dir: dir.to_path_buf(),
        version,
        courses: pack.natives.iter().map(|c| c.id.clone()).collect(),
        packages: pack.packages.iter().map(|c| c.id.clone()).collect(),
    };
    let packages = serve::index_pack(dir, &pack);
    let media = serve::index_media(dir, &pack);
    Ok(Some(Loaded { content, info, packages, media }))
}

/// Puts the URL of each media file a lesson shows into its document.
fn link_media(docs: &mut BTreeMap<String, serde_json::Value>, pack: &lms_package::pack::Checked) {
    for c in &pack.natives {
        let Some(files) = pack.media.get(&c.id) else { continue };
        for l in &c.lessons {
            let Some(doc) = docs.get_mut(&lms_content::lesson_key(&c.id, &l.id)) else { continue };
            let urls: serde_json::Map<String, serde_json::Value> = lms_content::media_refs(&l.body)
                .into_iter()
                .filter_map(|m| {
                    let f = files.iter().find(|f| f.path == m)?;
                    Some((m, serve::media_url(&c.id, &f.path, &f.sha256).into()))
                })
                .collect();
            if !urls.is_empty() {
                doc["media"] = urls.into();
            }
        }
    }
}

/// Text of a langstring map for pages rendered from one text per course:
/// Chinese first (the network's learners), then English, then any.
fn text_of(m: &LangMap) -> String {
    let by = |want: &dyn Fn(&str) -> bool| m.iter().find(|(k, _)| want(k)).map(|(_, v)| v.clone());
    by(&|k| k.eq_ignore_ascii_case("zh-CN"))
        .or_else(|| by(&|k| k.to_ascii_lowercase().starts_with("zh")))
        .or_else(|| by(&|k| k.to_ascii_lowercase().starts_with("en")))
        .or_else(|| m.values().next().cloned())
        .unwrap_or_default()
}

/// Text of a langstring map in the page language `lang` (its tag, or one
/// of the same language), else as [`text_of`] picks.
pub fn text_in(m: &LangMap, lang: &str) -> String {
    let primary = |t: &str| t.split('-').next().unwrap_or_default().to_ascii_lowercase();
    m.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(lang))
        .or_else(|| m.iter().find(|(k, _)| !k.is_empty() && primary(k) == primary(lang)))
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| text_of(m))
}

/// A package course's texts in every page language.
fn localized(c: &lms_package::Course, lessons: &[(String, &LangMap)]) -> BTreeMap<String, Localized> {
    crate::http::pages::LANGUAGES
        .iter()
        .map(|lang| {
            let l = Localized {
                title: text_in(&c.title, lang),
                description: text_in(&c.description, lang),
                lessons: lessons.iter().map(|(id, t)| (id.clone(), text_in(t, lang))).collect(),
            };
            (lang.to_string(), l)
        })
        .collect()
}

/// The learner app's view of the packages: each is a course of the catalog
/// whose lessons are its AUs (cmi5), SCOs (SCORM) or units (an HTML5 app,
/// a video, a PDF), each launched rather than read and done when its
/// moveOn is met by the statements on its activity id, which the progress
/// module counts (HTML5 and media: once opened).
pub fn package_courses(packages: &serve::PackageIndex) -> Vec<(CourseSummary, CourseDoc)> {
    let mut out: Vec<(CourseSummary, CourseDoc)> = packages
        .values()
        .map(|p| {
            let c = &p.course;
            let lessons: Vec<Entry> = match p.kind {
                Kind::Cmi5 => c
                    .aus
                    .iter()
                    .map(|au| Entry {
                        id: format!("au-{}", au.index),
                        title: text_of(&au.title),
                        activity_id: cmi5::au_activity(&p.activity_base, &c.id, au.index),
                        launch: Some(Launch {
                            unit: au.index,
                            move_on: serde_json::to_value(au.move_on)
                                .ok()
                                .and_then(|v| v.as_str().map(str::to_string))
                                .unwrap_or_default(),
                            waivable: true,
                        }),
                    })
                    .collect(),
                // A SCO is done when it reports completed or passed; assets
                // are not tracked and not listed as lessons.
                Kind::Scorm12 | Kind::Scorm2004 => c
                    .units
                    .iter()
                    .filter(|u| u.kind == UnitKind::Sco)
                    .map(|u| Entry {
                        id: format!("sco-{}", u.index),
                        title: text_of(&u.title),
                        activity_id: scorm::unit_activity(&p.activity_base, &c.id, u.index),
                        launch: Some(Launch { unit: u.index, move_on: "CompletedOrPassed".into(), waivable: false }),
                    })
                    .collect(),
                // An HTML5 app, a video or a PDF records nothing itself: it
                // counts as done once opened (`open_unit`).
                Kind::Html5 | Kind::Media => c
                    .units
                    .iter()
                    .map(|u| Entry {
                        id: format!("unit-{}", u.index),
                        title: text_of(&u.title),
                        activity_id: unit_activity(&p.activity_base, &c.id, u.index),
                        launch: Some(Launch { unit: u.index, move_on: "Completed".into(), waivable: false }),
                    })
                    .collect(),
            };
            let titles: Vec<(String, &LangMap)> = match p.kind {
                Kind::Cmi5 => c.aus.iter().map(|a| (format!("au-{}", a.index), &a.title)).collect(),
                Kind::Scorm12 | Kind::Scorm2004 => {
                    c.units.iter().map(|u| (format!("sco-{}", u.index), &u.title)).collect()
                }
                Kind::Html5 | Kind::Media => c.units.iter().map(|u| (format!("unit-{}", u.index), &u.title)).collect(),
            };
            let i18n = localized(c, &titles);
            let (title, description) = (text_of(&c.title), text_of(&c.description));
            let language =
                if c.title.keys().any(|k| k.to_ascii_lowercase().starts_with("zh")) { "zh-CN" } else { "en" };
            let summary = CourseSummary {
                id: c.id.clone(),
                title: title.clone(),
                description: description.clone(),
                lessons: lessons.len(),
                quizzes: 0,
                i18n: i18n.clone(),
            };
            let doc = CourseDoc {
                id: c.id.clone(),
                title,
                language: language.into(),
                description,
                activity_id: cmi5::moveon::course_activity(&p.activity_base, &c.id),
                completion: CompletionRules::default(),
                lessons,
                quizzes: vec![],
                i18n,
            };
            (summary, doc)
        })
        .collect();
    out.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    out
}

/// The LMS's activity id of an HTML5 app's or a media file's unit.
pub fn unit_activity(activity_base: &str, course: &str, unit: usize) -> String {
    format!("{}/units/{course}/{unit}", activity_base.trim_end_matches('/'))
}

/// Opens a unit of an HTML5 or media course for `actor`: records that the
/// learner experienced it (with completion: such content reports nothing
/// itself, so opening it is what counts) under `authority`, and answers
/// the file's URL on the content origin.
pub async fn open_unit(
    node: &crate::http::AppState,
    course: &str,
    unit: usize,
    actor: serde_json::Value,
    authority: &serde_json::Value,
) -> Result<String, crate::http::error::ApiError> {
    use crate::http::error::ApiError;
    let content = content_origin(node)?;
    let pkg = cmi5::package(node, course)?;
    let u = pkg
        .course
        .units
        .get(unit)
        .filter(|_| matches!(pkg.kind, Kind::Html5 | Kind::Media))
        .ok_or_else(|| ApiError::field("unknown_unit", "unit", format!("{course} has no unit {unit} to open")))?;
    let now = time::OffsetDateTime::now_utc();
    let statement = serde_json::json!({
        "actor": actor,
        "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced", "display": {"en-US": "experienced"}},
        "object": {"objectType": "Activity", "id": unit_activity(&pkg.activity_base, course, unit),
                   "definition": {"name": cmi5::lang_map(&u.title)}},
        "result": {"completion": true},
        "context": {"contextActivities": {"grouping": [{"objectType": "Activity",
                    "id": cmi5::moveon::course_activity(&pkg.activity_base, course)}]}},
        "timestamp": crate::xapi::format_stored(now),
    });
    store_statements(node, vec![statement], "open", authority).await?;
    Ok(format!("{content}/p/{course}/{}/{}", pkg.tag, u.href))
}

/// The origin browsers reach the content listener at (`content_url`),
/// which every launch URL is on.
pub(crate) fn content_origin(node: &crate::http::AppState) -> Result<String, crate::http::error::ApiError> {
    node.cfg.content_url.as_deref().map(|c| c.trim_end_matches('/').to_string()).ok_or_else(|| {
        crate::http::error::ApiError::Unavailable(
            "launching package content needs the setting content_url (the origin browsers reach)".into(),
        )
    })
}

/// The authority of statements the LMS itself makes (`lms:cmi5`, `lms:scorm`).
pub(crate) fn lms_authority(node: &crate::http::AppState, name: &str) -> serde_json::Value {
    serde_json::json!({"objectType": "Agent", "account": {"homePage": node.cfg.learner_home_page, "name": name}})
}

/// Stores statements the node makes on a learner's behalf (launched,
/// satisfied, a SCORM commit's, an opened unit's) under `authority`, in one
/// batch; `what` names them if one does not validate.
pub(crate) async fn store_statements(
    node: &crate::http::AppState,
    statements: Vec<serde_json::Value>,
    what: &str,
    authority: &serde_json::Value,
) -> Result<(), crate::http::error::ApiError> {
    let now = time::OffsetDateTime::now_utc();
    let prepared = statements
        .into_iter()
        .map(|s| crate::xapi::prepare(s, what, authority, now, crate::xapi::validate::Spec::V2))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            crate::http::error::ApiError::Unavailable(format!("the {what} statement does not validate: {e}"))
        })?;
    node.store.write(prepared).await?;
    Ok(())
}

/// Writes the JSON document `id` at `place` as the node (LaunchData,
/// learner preferences, a SCORM attempt's runtime data), replacing it.
pub(crate) async fn put_json_document(
    node: &crate::http::AppState,
    place: crate::xapi::documents::Place,
    id: &str,
    value: &serde_json::Value,
) -> Result<(), crate::http::error::ApiError> {
    use crate::xapi::documents::{Change, Precondition, Write};
    node.store
        .write_document(Write {
            place,
            id: Some(id.into()),
            change: Change::Put { content_type: "application/json".into(), body: value.to_string().into_bytes() },
            pre: Precondition { if_match: None, if_none_match: None, required_to_replace: false },
            updated: crate::xapi::format_stored(time::OffsetDateTime::now_utc()),
        })
        .await?;
    Ok(())
}

/// An ISO 8601 duration in seconds (centiseconds, as xAPI keeps them).
pub(crate) fn iso_duration(d: time::Duration) -> String {
    let cs = d.whole_milliseconds().max(0) / 10;
    format!("PT{}.{:02}S", cs / 100, cs % 100)
}
