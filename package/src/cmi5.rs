//! cmi5 course structures (`cmi5.xml`), checked as the cmi5 specification's
//! section 13 and its CourseStructure.xsd say: the elements in their order
//! and number, `id`s that are absolute IRIs and unique across the course,
//! objective references that resolve, `moveOn`, `masteryScore` (a decimal
//! from 0 to 1), `launchMethod`, and `url`s that are absolute or name a
//! file of the zip they came in (section 14: a standalone structure has
//! absolute URLs only). Values are trimmed on import (section 13.1).
//! Elements and attributes of other namespaces are extensions (13.1.5) and
//! are ignored; anything else unknown is refused.

use crate::ImportError;
use crate::archive::Archive;
use crate::course::{Au, Block, Course, Kind, LangMap, LaunchMethod, MoveOn, Node, Objective};
use crate::xml::{self, Src, decimal};
use iri_string::types::{IriReferenceStr, IriStr};
use roxmltree::Node as X;
use std::collections::{BTreeMap, HashMap};

pub const STRUCTURE_FILE: &str = "cmi5.xml";
/// The namespace of CourseStructure.xsd v1, and the draft's, which
/// published packages still carry.
pub const NAMESPACES: [&str; 2] =
    ["https://w3id.org/xapi/profiles/cmi5/v1/CourseStructure.xsd", "http://www.adlnet.gov/cmi5/CourseStructure.xsd"];

const MOVE_ON: [(&str, MoveOn); 5] = [
    ("NotApplicable", MoveOn::NotApplicable),
    ("Passed", MoveOn::Passed),
    ("Completed", MoveOn::Completed),
    ("CompletedAndPassed", MoveOn::CompletedAndPassed),
    ("CompletedOrPassed", MoveOn::CompletedOrPassed),
];

/// Parses and checks a course structure. `archive` is the zip it came in
/// (`None`: standalone, so every URL must be absolute); `id` the pack id to
/// give the course (`None`: made from the course IRI).
pub fn parse(package: &str, bytes: &[u8], archive: Option<&Archive>, id: Option<&str>) -> Result<Course, ImportError> {
    let file = if archive.is_some() { STRUCTURE_FILE.to_string() } else { package.to_string() };
    let text = xml::text(package, &file, bytes)?;
    let doc = xml::document(package, &file, text)?;
    let src = Src { package, file: &file, doc: &doc };
    let mut p = Parser { src, package, archive, ids: HashMap::new(), aus: Vec::new(), objectives: Vec::new() };
    p.course(doc.root_element(), id)
}

struct Parser<'a, 'd> {
    src: Src<'a, 'd>,
    package: &'a str,
    archive: Option<&'a Archive>,
    /// Every course, block, AU and objective id seen, with its byte offset.
    ids: HashMap<String, (&'static str, usize)>,
    aus: Vec<Au>,
    objectives: Vec<Objective>,
}

impl<'a, 'd> Parser<'a, 'd> {
    fn err(&self, n: X, attr: Option<&str>, value: Option<&str>, message: impl Into<String>) -> ImportError {
        self.src.err(n, attr, value, message)
    }

    fn ours(&self, n: X) -> bool {
        n.tag_name().namespace().is_some_and(|ns| NAMESPACES.contains(&ns))
    }

    /// The element children in the cmi5 namespace; an element in no
    /// namespace is an error (extensions must be namespaced).
    fn children(&self, n: X<'a, 'd>) -> Result<Vec<X<'a, 'd>>, ImportError> {
        let mut out = Vec::new();
        for c in n.children().filter(|c| c.is_element()) {
            if self.ours(c) {
                out.push(c);
            } else if c.tag_name().namespace().is_none() {
                return Err(self.err(c, None, None, "an element in no namespace; cmi5 elements are in the CourseStructure namespace, extensions in their own"));
            }
        }
        Ok(out)
    }

    /// Refuses attributes in no namespace other than `allowed`.
    fn attributes(&self, n: X, allowed: &[&str]) -> Result<(), ImportError> {
        for a in n.attributes() {
            if a.namespace().is_none() && !allowed.contains(&a.name()) {
                return Err(self.err(
                    n,
                    Some(a.name()),
                    Some(a.value()),
                    format!("unknown attribute; {} takes {allowed:?}", n.tag_name().name()),
                ));
            }
        }
        Ok(())
    }

    /// Checks that `children` follow `order` (names; `+` may repeat) with the
    /// required ones present; returns them by name.
    fn sequence(
        &self,
        parent: X<'a, 'd>,
        children: &[X<'a, 'd>],
        order: &[(&'static str, Occurs)],
    ) -> Result<Parts<'a, 'd>, ImportError> {
        let mut found: BTreeMap<&'static str, Vec<X<'a, 'd>>> = BTreeMap::new();
        let mut at = 0;
        for c in children {
            let name = c.tag_name().name();
            let Some(pos) = order.iter().position(|(n, _)| n.split('|').any(|alt| alt == name)) else {
                let expected: Vec<&str> = order.iter().map(|(n, _)| *n).collect();
                return Err(self.err(
                    *c,
                    None,
                    None,
                    format!("not an element of <{}> (expected {expected:?})", parent.tag_name().name()),
                ));
            };
            if pos < at {
                return Err(self.err(
                    *c,
                    None,
                    None,
                    format!("out of order in <{}>: it comes before <{}>", parent.tag_name().name(), order[at].0),
                ));
            }
            let key = leak_name(order[pos].0, name);
            let list = found.entry(key).or_default();
            if order[pos].1 != Occurs::Many && !list.is_empty() {
                return Err(self.err(*c, None, None, format!("appears twice in <{}>", parent.tag_name().name())));
            }
            list.push(*c);
            at = pos;
        }
        for (name, occurs) in order {
            let present = name.split('|').any(|alt| found.keys().any(|k| *k == alt));
            if *occurs != Occurs::Optional && !present {
                return Err(self.err(
                    parent,
                    None,
                    None,
                    format!("<{name}> is required in <{}>", parent.tag_name().name()),
                ));
            }
        }
        Ok(found)
    }

    /// A required attribute, trimmed.
    fn required(&self, n: X, attr: &str) -> Result<String, ImportError> {
        match n.attribute(attr) {
            Some(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
            Some(v) => Err(self.err(n, Some(attr), Some(v), "must not be empty")),
            None => Err(self.err(n, Some(attr), None, "is required")),
        }
    }

    /// An `id` attribute: an absolute IRI, unique in the course; recorded
    /// as the `kind`'s (course, block, AU, objective) for later duplicates.
    fn id(&mut self, n: X, kind: &'static str) -> Result<String, ImportError> {
        let id = self.required(n, "id")?;
        if IriStr::new(&id).is_err() {
            return Err(self.err(
                n,
                Some("id"),
                Some(&id),
                "is not an absolute IRI (cmi5 ids are fully qualified, e.g. https://example.org/courses/geology)",
            ));
        }
        if let Some((other, at)) = self.ids.get(&id) {
            let line = self.src.line_at(*at);
            return Err(self.err(
                n,
                Some("id"),
                Some(&id),
                format!("is already the id of the {other} on line {line}; ids are unique in a course"),
            ));
        }
        self.ids.insert(id.clone(), (kind, n.range().start));
        Ok(id)
    }

    /// A textType (title, description): one or more langstrings.
    fn text(&self, n: X<'a, 'd>, nonempty: bool) -> Result<LangMap, ImportError> {
        self.attributes(n, &[])?;
        let children = self.children(n)?;
        self.sequence(n, &children, &[("langstring", Occurs::Many)])?;
        let mut map = LangMap::new();
        for s in children {
            self.attributes(s, &["lang"])?;
            if s.children().any(|c| c.is_element()) {
                return Err(self.err(s, None, None, "holds elements; a langstring is text"));
            }
            let lang = s.attribute("lang").map(str::trim).unwrap_or_default().to_string();
            if !lang.is_empty() && !language_tag(&lang) {
                return Err(self.err(s, Some("lang"), Some(&lang), "is not a language tag such as en-US or zh-CN"));
            }
            let value: String = s.text().unwrap_or_default().trim().to_string();
            if map.insert(lang.clone(), value).is_some() {
                return Err(self.err(
                    s,
                    Some("lang"),
                    Some(&lang),
                    format!("a second langstring in <{}> for this language", n.tag_name().name()),
                ));
            }
        }
        if nonempty && map.values().all(|v| v.is_empty()) {
            return Err(self.err(n, None, None, "is empty; learners choose courses and AUs by their titles"));
        }
        Ok(map)
    }

    fn course(&mut self, root: X<'a, 'd>, id: Option<&str>) -> Result<Course, ImportError> {
        if root.tag_name().name() != "courseStructure" || !self.ours(root) {
            return Err(self.err(
                root,
                None,
                root.tag_name().namespace(),
                format!("the root element must be <courseStructure xmlns=\"{}\">", NAMESPACES[0]),
            ));
        }
        self.attributes(root, &[])?;
        let children = self.children(root)?;
        let parts = self.sequence(
            root,
            &children,
            &[("course", Occurs::One), ("objectives", Occurs::Optional), ("au|block", Occurs::Many)],
        )?;
        let course = parts["course"][0];
        self.attributes(course, &["id"])?;
        let publisher_id = self.id(course, "course")?;
        let course_children = self.children(course)?;
        let cparts = self.sequence(
            course,
            &course_children,
            &[("title", Occurs::One), ("description", Occurs::One), ("languages", Occurs::Optional)],
        )?;
        let title = self.text(cparts["title"][0], true)?;
        let description = self.text(cparts["description"][0], false)?;
        if let Some(objectives) = parts.get("objectives") {
            self.objectives(objectives[0])?;
        }
        let nodes = self.members(&children, &mut Vec::new())?;
        let id = crate::course_id(self.package, id, || crate::id_from_iri(&publisher_id))?;
        Ok(Course {
            format: crate::course::COURSE_FORMAT,
            kind: Kind::Cmi5,
            id,
            publisher_id,
            title,
            description,
            source: self.package.to_string(),
            source_sha256: String::new(),
            objectives: std::mem::take(&mut self.objectives),
            children: nodes,
            aus: std::mem::take(&mut self.aus),
            units: Vec::new(),
        })
    }

    fn objectives(&mut self, n: X<'a, 'd>) -> Result<(), ImportError> {
        self.attributes(n, &[])?;
        let children = self.children(n)?;
        self.sequence(n, &children, &[("objective", Occurs::Many)])?;
        for o in children {
            self.attributes(o, &["id"])?;
            let id = self.id(o, "objective")?;
            let parts = self.children(o)?;
            // xs:all: title and description once each, in either order.
            let mut title = None;
            let mut description = None;
            for p in parts {
                let slot = match p.tag_name().name() {
                    "title" => &mut title,
                    "description" => &mut description,
                    _ => {
                        return Err(self.err(
                            p,
                            None,
                            None,
                            "not an element of <objective> (expected title, description)",
                        ));
                    }
                };
                if slot.is_some() {
                    return Err(self.err(p, None, None, "appears twice in <objective>"));
                }
                *slot = Some(p);
            }
            let (Some(t), Some(d)) = (title, description) else {
                return Err(self.err(o, None, None, "<title> and <description> are required in <objective>"));
            };
            let objective =
                Objective { id: id.clone(), title: self.text(t, false)?, description: self.text(d, false)? };
            self.objectives.push(objective);
        }
        Ok(())
    }

    /// An `objectives` element of references: each `idref` must name an
    /// objective declared at the top of the structure.
    fn references(&self, n: X<'a, 'd>) -> Result<Vec<String>, ImportError> {
        self.attributes(n, &[])?;
        let children = self.children(n)?;
        self.sequence(n, &children, &[("objective", Occurs::Many)])?;
        let mut out = Vec::new();
        for r in children {
            self.attributes(r, &["idref"])?;
            let idref = r.attribute("idref").map(str::trim).unwrap_or_default();
            if !self.objectives.iter().any(|o| o.id == idref) {
                return Err(self.err(
                    r,
                    Some("idref"),
                    Some(idref),
                    "names no objective declared in the course's <objectives>",
                ));
            }
            out.push(idref.to_string());
        }
        Ok(out)
    }

    /// The au and block members among the (checked) children of the course
    /// or a block, in order; `blocks` is the path of block ids down to here.
    fn members(&mut self, children: &[X<'a, 'd>], blocks: &mut Vec<String>) -> Result<Vec<Node>, ImportError> {
        let mut out = Vec::new();
        for m in children {
            match m.tag_name().name() {
                "au" => out.push(Node::Au(self.au(*m, blocks)?)),
                "block" => out.push(Node::Block(self.block(*m, blocks)?)),
                _ => {}
            }
        }
        Ok(out)
    }

    /// What a block and an AU both start with: title (non-empty for an AU,
    /// which learners pick by it), description, objective references.
    fn head(
        &self,
        parts: &Parts<'a, 'd>,
        title_nonempty: bool,
    ) -> Result<(LangMap, LangMap, Vec<String>), ImportError> {
        let title = self.text(parts["title"][0], title_nonempty)?;
        let description = self.text(parts["description"][0], false)?;
        let objectives = match parts.get("objectives") {
            Some(o) => self.references(o[0])?,
            None => Vec::new(),
        };
        Ok((title, description, objectives))
    }

    fn block(&mut self, n: X<'a, 'd>, path: &mut Vec<String>) -> Result<Block, ImportError> {
        self.attributes(n, &["id"])?;
        let id = self.id(n, "block")?;
        let children = self.children(n)?;
        let parts = self.sequence(
            n,
            &children,
            &[
                ("title", Occurs::One),
                ("description", Occurs::One),
                ("objectives", Occurs::Optional),
                ("au|block", Occurs::Many),
            ],
        )?;
        let (title, description, objectives) = self.head(&parts, false)?;
        path.push(id.clone());
        let nested = self.members(&children, path)?;
        path.pop();
        Ok(Block { id, title, description, objectives, children: nested })
    }

    fn au(&mut self, n: X<'a, 'd>, blocks: &[String]) -> Result<usize, ImportError> {
        self.attributes(n, &["id", "moveOn", "masteryScore", "launchMethod", "activityType", "authenticationMethod"])?;
        let id = self.id(n, "AU")?;
        let move_on = match n.attribute("moveOn").map(str::trim) {
            None => MoveOn::NotApplicable,
            Some(v) => MOVE_ON.iter().find(|(name, _)| *name == v).map(|(_, m)| *m).ok_or_else(|| {
                self.err(
                    n,
                    Some("moveOn"),
                    Some(v),
                    "is not one of NotApplicable, Passed, Completed, CompletedAndPassed, CompletedOrPassed",
                )
            })?,
        };
        let mastery_score = match n.attribute("masteryScore").map(str::trim) {
            None => None,
            Some(v) => Some(decimal(v).filter(|s| (0.0..=1.0).contains(s)).ok_or_else(|| {
                self.err(n, Some("masteryScore"), Some(v), "is not a decimal from 0 to 1 (e.g. 0.8)")
            })?),
        };
        let launch_method = match n.attribute("launchMethod").map(str::trim) {
            None | Some("AnyWindow") => LaunchMethod::AnyWindow,
            Some("OwnWindow") => LaunchMethod::OwnWindow,
            Some(v) => return Err(self.err(n, Some("launchMethod"), Some(v), "is not AnyWindow or OwnWindow")),
        };
        if let Some(v) = n.attribute("authenticationMethod").map(str::trim)
            && v != "Basic"
        {
            return Err(self.err(
                n,
                Some("authenticationMethod"),
                Some(v),
                "is not Basic, the only method cmi5 defines",
            ));
        }
        let children = self.children(n)?;
        let parts = self.sequence(
            n,
            &children,
            &[
                ("title", Occurs::One),
                ("description", Occurs::One),
                ("objectives", Occurs::Optional),
                ("url", Occurs::One),
                ("launchParameters", Occurs::Optional),
                ("entitlementKey", Occurs::Optional),
            ],
        )?;
        let (title, description, objectives) = self.head(&parts, true)?;
        let url_node = parts["url"][0];
        let url = url_node.text().unwrap_or_default().trim().to_string();
        let in_package = self.url(url_node, &url)?;
        let plain = |name: &str| -> Result<Option<String>, ImportError> {
            let Some(e) = parts.get(name).map(|v| v[0]) else { return Ok(None) };
            if e.children().any(|c| c.is_element()) {
                return Err(self.err(e, None, None, "holds elements; it is text"));
            }
            Ok(Some(e.text().unwrap_or_default().trim().to_string()))
        };
        let index = self.aus.len();
        let au = Au {
            index,
            id,
            title,
            description,
            objectives,
            url,
            in_package,
            launch_method,
            move_on,
            mastery_score,
            launch_parameters: plain("launchParameters")?,
            entitlement_key: plain("entitlementKey")?,
            activity_type: n.attribute("activityType").map(|v| v.trim().to_string()),
            blocks: blocks.to_vec(),
        };
        self.aus.push(au);
        Ok(index)
    }

    /// An AU's url: absolute (any scheme), or, in a zip, a relative path
    /// to one of its files. Returns whether it is in the package.
    fn url(&self, n: X, url: &str) -> Result<bool, ImportError> {
        if url.is_empty() {
            return Err(self.err(n, None, None, "is empty; every AU has a launch URL"));
        }
        if IriStr::new(url).is_ok() {
            return Ok(false);
        }
        let Ok(reference) = IriReferenceStr::new(url) else {
            return Err(self.err(n, None, Some(url), "is not a URL"));
        };
        let Some(archive) = self.archive else {
            return Err(self.err(
                n,
                None,
                Some(url),
                "is relative, but a course structure without a zip must use fully qualified URLs (cmi5 14.2)",
            ));
        };
        if reference.authority_str().is_some() || url.starts_with('/') {
            return Err(self.err(n, None, Some(url), "is neither fully qualified nor relative to the package"));
        }
        let path = reference.path_str();
        let decoded = percent_encoding::percent_decode_str(path)
            .decode_utf8()
            .map_err(|_| self.err(n, None, Some(url), "its path is not UTF-8 once percent-decoded"))?;
        if !crate::archive::safe_path(&decoded) {
            return Err(self.err(n, None, Some(url), "leaves the package ('..', '.' or an empty path segment)"));
        }
        if !archive.has(&decoded) {
            return Err(self.err(n, None, Some(url), format!("names {decoded:?}, which is not a file in the package")));
        }
        Ok(true)
    }
}

/// An element's children by name, as [`Parser::sequence`] checked them.
type Parts<'a, 'd> = BTreeMap<&'static str, Vec<X<'a, 'd>>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Occurs {
    One,
    Optional,
    Many,
}

/// The static name an element was found under (`"au|block"` alternatives
/// are stored under the alternative that matched).
fn leak_name(spec: &'static str, found: &str) -> &'static str {
    spec.split('|').find(|alt| *alt == found).unwrap_or(spec)
}

/// xs:language (RFC 3066 shape): 1-8 letters, then subtags of 1-8 letters or digits.
fn language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let first = parts.next().unwrap_or_default();
    (1..=8).contains(&first.len())
        && first.bytes().all(|b| b.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_and_language_tags() {
        assert_eq!(decimal("0.85"), Some(0.85));
        assert_eq!(decimal("1"), Some(1.0));
        assert_eq!(decimal(".5"), Some(0.5));
        for bad in ["", ".", "1e-1", "NaN", "0,5", "inf"] {
            assert_eq!(decimal(bad), None, "{bad}");
        }
        assert!(language_tag("en-US") && language_tag("zh-Hans-CN") && language_tag("i-klingon"));
        assert!(!language_tag("en_US") && !language_tag("") && !language_tag("toolonglang"));
    }
}
