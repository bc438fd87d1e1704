//! The course a package becomes: what the pack stores as
//! `packages/<id>/course.json` and what the node lists, launches and counts.
//! Kind-neutral where it can be (id, titles, the tree of blocks and units),
//! cmi5's launch data where cmi5 defines it.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The format of `course.json`; a node refuses a number it does not know.
pub const COURSE_FORMAT: u32 = 1;

/// Text by language tag, as cmi5's langstrings and xAPI's language maps
/// hold it (`""` for a langstring without a `lang`).
pub type LangMap = BTreeMap<String, String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Cmi5,
    /// SCORM 1.2: the player page gives it `window.API`.
    Scorm12,
    /// SCORM 2004 (2nd to 4th edition): `window.API_1484_11`.
    Scorm2004,
    /// A plain HTML5 app (`index.html` and its assets).
    Html5,
    /// One video or PDF.
    Media,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Course {
    pub format: u32,
    pub kind: Kind,
    /// The id in the pack and in the node's URLs (`a-z0-9-`, 64 at most).
    pub id: String,
    /// The publisher's own id of the course (cmi5 `course@id`, an IRI).
    pub publisher_id: String,
    pub title: LangMap,
    pub description: LangMap,
    /// The package file it came from and that file's sha256.
    pub source: String,
    pub source_sha256: String,
    pub objectives: Vec<Objective>,
    /// The course's children in document order.
    pub children: Vec<Node>,
    /// Every AU (cmi5), in document order; `Node::Au` and launch requests
    /// use the index into this list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aus: Vec<Au>,
    /// Every launchable unit of the other kinds (a SCORM SCO or asset, an
    /// HTML5 app's page, a video or PDF), in document order; `Node::Unit`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub units: Vec<Unit>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Objective {
    pub id: String,
    pub title: LangMap,
    pub description: LangMap,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Node {
    Block(Block),
    Au(usize),
    Unit(usize),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Block {
    pub id: String,
    pub title: LangMap,
    pub description: LangMap,
    pub objectives: Vec<String>,
    pub children: Vec<Node>,
}

/// cmi5 `moveOn`: what satisfies an AU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MoveOn {
    NotApplicable,
    Passed,
    Completed,
    CompletedAndPassed,
    CompletedOrPassed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LaunchMethod {
    AnyWindow,
    OwnWindow,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Au {
    pub index: usize,
    /// The publisher's AU id (an IRI).
    pub id: String,
    pub title: LangMap,
    pub description: LangMap,
    pub objectives: Vec<String>,
    /// As written (trimmed): a path inside the package (with its query
    /// string, which is merged into the launch URL) or an absolute URL.
    pub url: String,
    /// True when `url` names a file of the package, served by the node.
    pub in_package: bool,
    pub launch_method: LaunchMethod,
    pub move_on: MoveOn,
    pub mastery_score: Option<f64>,
    pub launch_parameters: Option<String>,
    pub entitlement_key: Option<String>,
    pub activity_type: Option<String>,
    /// The ids of the blocks it is in, outermost first.
    pub blocks: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnitKind {
    /// A SCORM SCO: talks to the runtime API.
    Sco,
    /// A SCORM asset: shown, nothing tracked but the launch.
    Asset,
    /// An HTML5 app's start page.
    Page,
    Video,
    Pdf,
}

/// What a learner launches in a non-cmi5 course.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unit {
    pub index: usize,
    /// The package's own identifier (a SCORM item identifier; the file for
    /// HTML5 and media).
    pub id: String,
    pub title: LangMap,
    pub kind: UnitKind,
    /// The file in the package to open, with the query string the package
    /// asks for (SCORM item `parameters`).
    pub href: String,
    /// Scaled 0..1 (SCORM 1.2's 0-100 `masteryscore` divided by 100; 2004's
    /// primary objective `minNormalizedMeasure`).
    pub mastery_score: Option<f64>,
    /// SCORM 2004 `completionThreshold` (`minProgressMeasure`).
    pub completion_threshold: Option<f64>,
    /// SCORM `datafromlms` / `dataFromLMS`, handed to the SCO as launch data.
    pub data_from_lms: Option<String>,
    /// The ids of the items (blocks) it is in, outermost first.
    pub blocks: Vec<String>,
}

impl Course {
    /// A course of one launchable unit (an HTML5 app, a video, a PDF): its
    /// publisher id is local (`urn:lms:<kind>:<id>`), as nothing in the
    /// package names one.
    pub(crate) fn single(package: &str, kind: Kind, id: String, title: String, unit: (UnitKind, String)) -> Course {
        let (unit_kind, href) = unit;
        let tag = serde_json::to_value(kind).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        Course {
            format: COURSE_FORMAT,
            kind,
            publisher_id: format!("urn:lms:{tag}:{id}"),
            id,
            title: LangMap::from([(String::new(), title.clone())]),
            description: LangMap::new(),
            source: package.to_string(),
            source_sha256: String::new(),
            objectives: Vec::new(),
            children: vec![Node::Unit(0)],
            aus: Vec::new(),
            units: vec![Unit {
                index: 0,
                id: href.split('?').next().unwrap_or_default().to_string(),
                title: LangMap::from([(String::new(), title)]),
                kind: unit_kind,
                href,
                mastery_score: None,
                completion_threshold: None,
                data_from_lms: None,
                blocks: Vec::new(),
            }],
        }
    }

    /// The title in `lang`, else in a language it shares the primary subtag
    /// with, else the first one.
    pub fn title_in(&self, lang: &str) -> &str {
        text_in(&self.title, lang)
    }
}

/// A language map's text for `lang`: exact, then same primary language,
/// then whatever comes first.
pub fn text_in<'a>(map: &'a LangMap, lang: &str) -> &'a str {
    let primary = |t: &str| t.split('-').next().unwrap_or_default().to_ascii_lowercase();
    map.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(lang))
        .or_else(|| map.iter().find(|(k, _)| primary(k) == primary(lang)))
        .or_else(|| map.iter().next())
        .map(|(_, v)| v.as_str())
        .unwrap_or_default()
}
