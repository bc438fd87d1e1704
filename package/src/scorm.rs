//! SCORM 1.2 and 2004 packages (`imsmanifest.xml` at the zip's root), read
//! as the IMS Content Packaging and ADL CAM books say and as Moodle's
//! importer (mod/scorm/datamodels/scormlib.php) reads real packages: the
//! version from `metadata/schemaversion` (or the manifest's namespace), the
//! default organization and its nested items, each launching item's
//! resource (`identifierref`) with its `href` under any `xml:base`, the
//! item's `parameters`, `adlcp:scormtype` sco or asset, 1.2's
//! `masteryscore`, 2004's completion threshold and primary objective's
//! `minNormalizedMeasure`, `datafromlms`. Every resource a learner can
//! launch must be a file of the package: the node serves learners offline,
//! and a SCO reaches the runtime API only from the node's own origin.

use crate::ImportError;
use crate::archive::Archive;
use crate::course::{Block, Course, Kind, LangMap, Node, Unit, UnitKind};
use crate::xml::{self, Src, decimal};
use roxmltree::Node as X;
use std::collections::HashMap;

pub const MANIFEST_FILE: &str = "imsmanifest.xml";
const CP_12: &str = "http://www.imsproject.org/xsd/imscp_rootv1p1p2";
const CP_2004: &str = "http://www.imsglobal.org/xsd/imscp_v1p1";
const ADLCP: [&str; 2] = ["http://www.adlnet.org/xsd/adlcp_rootv1p2", "http://www.adlnet.org/xsd/adlcp_v1p3"];
const IMSSS: &str = "http://www.imsglobal.org/xsd/imsss";
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// Parses and checks `imsmanifest.xml` from `archive`.
pub fn parse(package: &str, bytes: &[u8], archive: &Archive, id: Option<&str>) -> Result<Course, ImportError> {
    let text = xml::text(package, MANIFEST_FILE, bytes)?;
    let doc = xml::document(package, MANIFEST_FILE, text)?;
    let src = Src { package, file: MANIFEST_FILE, doc: &doc };
    let root = doc.root_element();
    let cp = root.tag_name().namespace().unwrap_or_default();
    if root.tag_name().name() != "manifest" || ![CP_12, CP_2004].contains(&cp) {
        return Err(src.err(
            root,
            None,
            Some(cp),
            format!("the root element must be <manifest> in {CP_12} (SCORM 1.2) or {CP_2004} (2004)"),
        ));
    }
    let m = Manifest { src, archive, cp };
    let manifest_id = m.required(root, "identifier")?;
    let kind = m.version(root)?;
    if let Some(sub) = m.child(root, "manifest") {
        return Err(m.src.err(
            sub,
            None,
            None,
            "nested manifests (aggregated packages) are not supported; import each package on its own",
        ));
    }
    let resources = m.resources(root)?;
    let orgs =
        m.child(root, "organizations").ok_or_else(|| m.src.err(root, None, None, "<organizations> is required"))?;
    let all: Vec<X> = m.children(orgs, "organization").collect();
    let org = match orgs.attribute("default").map(str::trim) {
        Some(d) => *all
            .iter()
            .find(|o| o.attribute("identifier").map(str::trim) == Some(d))
            .ok_or_else(|| m.src.err(orgs, Some("default"), Some(d), "names no <organization> of this manifest"))?,
        None => *all.first().ok_or_else(|| m.src.err(orgs, None, None, "no <organization>: nothing to launch"))?,
    };
    let mut walk = Walk { m: &m, resources: &resources, kind, units: Vec::new(), ids: HashMap::new() };
    let org_id = m.required(org, "identifier")?;
    walk.ids.insert(org_id, org.range().start);
    let title = m.title(org)?;
    let mut path = Vec::new();
    let children = walk.items(org, &mut path)?;
    if walk.units.is_empty() {
        return Err(m.src.err(org, None, None, "no item launches a resource: nothing to learn"));
    }
    let id = crate::course_id(package, id, || crate::id_from_iri(&manifest_id))?;
    Ok(Course {
        format: crate::course::COURSE_FORMAT,
        kind,
        id,
        publisher_id: manifest_id,
        title: LangMap::from([(String::new(), title)]),
        description: LangMap::new(),
        source: package.to_string(),
        source_sha256: String::new(),
        objectives: Vec::new(),
        children,
        aus: Vec::new(),
        units: walk.units,
    })
}

struct Manifest<'a, 'd> {
    src: Src<'a, 'd>,
    archive: &'a Archive,
    /// The content packaging namespace of this manifest's elements.
    cp: &'a str,
}

struct Resource<'a, 'd> {
    node: X<'a, 'd>,
    /// The launch file's path in the package and its query string.
    href: Option<(String, String)>,
    sco: Option<bool>,
}

impl<'a, 'd> Manifest<'a, 'd> {
    fn child(&self, n: X<'a, 'd>, name: &'a str) -> Option<X<'a, 'd>> {
        self.children(n, name).next()
    }

    fn children(&self, n: X<'a, 'd>, name: &'a str) -> impl Iterator<Item = X<'a, 'd>> + use<'a, 'd> {
        let cp = self.cp;
        n.children()
            .filter(move |c| c.is_element() && c.tag_name().name() == name && c.tag_name().namespace() == Some(cp))
    }

    /// An element of the ADL namespaces (1.2 `adlcp_rootv1p2`, 2004 `adlcp_v1p3`).
    fn adlcp(&self, n: X<'a, 'd>, names: &[&str]) -> Option<X<'a, 'd>> {
        n.children().find(|c| {
            c.is_element()
                && names.contains(&c.tag_name().name())
                && c.tag_name().namespace().is_some_and(|ns| ADLCP.contains(&ns))
        })
    }

    fn adlcp_attr<'n>(&self, n: X<'n, 'd>, names: &[&str]) -> Option<&'n str> {
        n.attributes()
            .find(|a| names.contains(&a.name()) && a.namespace().is_some_and(|ns| ADLCP.contains(&ns)))
            .map(|a| a.value().trim())
    }

    fn required(&self, n: X, attr: &str) -> Result<String, ImportError> {
        match n.attribute(attr).map(str::trim) {
            Some(v) if !v.is_empty() => Ok(v.to_string()),
            v => Err(self.src.err(n, Some(attr), v, "is required")),
        }
    }

    fn title(&self, n: X<'a, 'd>) -> Result<String, ImportError> {
        let t = self.child(n, "title").ok_or_else(|| self.src.err(n, None, None, "<title> is required"))?;
        let text = t.text().unwrap_or_default().trim().to_string();
        if text.is_empty() {
            return Err(self.src.err(t, None, None, "is empty; learners choose by titles"));
        }
        Ok(text)
    }

    fn version(&self, root: X<'a, 'd>) -> Result<Kind, ImportError> {
        let found = self.child(root, "metadata").and_then(|m| self.child(m, "schemaversion"));
        let Some(v) = found else {
            return Ok(if self.cp == CP_12 { Kind::Scorm12 } else { Kind::Scorm2004 });
        };
        match v.text().unwrap_or_default().trim() {
            "1.2" => Ok(Kind::Scorm12),
            "CAM 1.3" | "2004 2nd Edition" | "2004 3rd Edition" | "2004 4th Edition" => Ok(Kind::Scorm2004),
            other => Err(self.src.err(
                v,
                None,
                Some(other),
                "is not SCORM 1.2 (\"1.2\") or 2004 (\"CAM 1.3\", \"2004 3rd Edition\", \"2004 4th Edition\")",
            )),
        }
    }

    /// `xml:base` of `n`, if any.
    fn base<'n>(&self, n: X<'n, 'd>) -> &'n str {
        n.attribute((XML_NS, "base")).map(str::trim).unwrap_or_default()
    }

    fn resources(&self, root: X<'a, 'd>) -> Result<HashMap<String, Resource<'a, 'd>>, ImportError> {
        let mut out = HashMap::new();
        let Some(rs) = self.child(root, "resources") else {
            return Err(self.src.err(root, None, None, "<resources> is required"));
        };
        let outer = format!("{}{}", self.base(root), self.base(rs));
        for r in self.children(rs, "resource") {
            let id = self.required(r, "identifier")?;
            let href = match r.attribute("href").map(str::trim) {
                Some(h) if !h.is_empty() => Some(self.href(r, &format!("{outer}{}", self.base(r)), h)?),
                _ => None,
            };
            let sco = match self.adlcp_attr(r, &["scormtype", "scormType"]) {
                Some(t) if t.eq_ignore_ascii_case("sco") => Some(true),
                Some(t) if t.eq_ignore_ascii_case("asset") => Some(false),
                Some(t) => return Err(self.src.err(r, Some("adlcp:scormType"), Some(t), "is not sco or asset")),
                None => None,
            };
            if out.insert(id.clone(), Resource { node: r, href, sco }).is_some() {
                return Err(self.src.err(
                    r,
                    Some("identifier"),
                    Some(&id),
                    "is the identifier of another <resource> too",
                ));
            }
        }
        Ok(out)
    }

    /// A resource href under its `xml:base`: a file of the package (path,
    /// query string).
    fn href(&self, r: X, base: &str, href: &str) -> Result<(String, String), ImportError> {
        let full = format!("{base}{href}");
        if full.contains("://") || full.starts_with('/') || full.starts_with("//") {
            return Err(self.src.err(r, Some("href"), Some(&full), "is outside the package; the node serves learners offline, so a resource must be one of the package's files"));
        }
        let without_fragment = full.split('#').next().unwrap_or_default();
        let (path, query) = without_fragment.split_once('?').unwrap_or((without_fragment, ""));
        let decoded = percent_encoding::percent_decode_str(path)
            .decode_utf8()
            .map_err(|_| self.src.err(r, Some("href"), Some(&full), "is not UTF-8 once percent-decoded"))?;
        if !crate::archive::safe_path(&decoded) {
            return Err(self.src.err(
                r,
                Some("href"),
                Some(&full),
                "leaves the package ('..', '.' or an empty segment)",
            ));
        }
        if !self.archive.has(&decoded) {
            return Err(self.src.err(
                r,
                Some("href"),
                Some(&full),
                format!("names {decoded:?}, which is not a file in the package"),
            ));
        }
        Ok((decoded.into_owned(), query.to_string()))
    }
}

struct Walk<'m, 'a, 'd> {
    m: &'m Manifest<'a, 'd>,
    resources: &'m HashMap<String, Resource<'a, 'd>>,
    kind: Kind,
    units: Vec<Unit>,
    /// Item and organization identifiers seen, with their byte offsets.
    ids: HashMap<String, usize>,
}

impl<'a, 'd> Walk<'_, 'a, 'd> {
    fn items(&mut self, parent: X<'a, 'd>, path: &mut Vec<String>) -> Result<Vec<Node>, ImportError> {
        let m = self.m;
        let mut out = Vec::new();
        for item in m.children(parent, "item") {
            let id = m.required(item, "identifier")?;
            if let Some(at) = self.ids.get(&id) {
                let line = m.src.line_at(*at);
                return Err(m.src.err(
                    item,
                    Some("identifier"),
                    Some(&id),
                    format!("is already the identifier on line {line}"),
                ));
            }
            self.ids.insert(id.clone(), item.range().start);
            let title = m.title(item)?;
            let has_children = m.child(item, "item").is_some();
            let unit = match item.attribute("identifierref").map(str::trim) {
                Some(r) if !r.is_empty() => Some(self.unit(item, &id, &title, r, path)?),
                _ if has_children => None,
                _ => return Err(m.src.err(item, None, None, "a leaf item must reference a resource (identifierref)")),
            };
            if has_children {
                // A 1.2 item may both launch and hold items: its own unit first.
                let mut children: Vec<Node> = unit.map(Node::Unit).into_iter().collect();
                path.push(id.clone());
                children.extend(self.items(item, path)?);
                path.pop();
                out.push(Node::Block(Block {
                    id,
                    title: LangMap::from([(String::new(), title)]),
                    description: LangMap::new(),
                    objectives: Vec::new(),
                    children,
                }));
            } else if let Some(u) = unit {
                out.push(Node::Unit(u));
            }
        }
        Ok(out)
    }

    fn unit(&mut self, item: X<'a, 'd>, id: &str, title: &str, r: &str, path: &[String]) -> Result<usize, ImportError> {
        let m = self.m;
        let res = self
            .resources
            .get(r)
            .ok_or_else(|| m.src.err(item, Some("identifierref"), Some(r), "names no <resource> of this manifest"))?;
        let Some((file, query)) = &res.href else {
            return Err(m.src.err(res.node, Some("href"), None, "is required on a resource an item launches"));
        };
        let Some(sco) = res.sco else {
            return Err(m.src.err(res.node, Some("adlcp:scormType"), None, "is required (sco or asset)"));
        };
        // CAM: parameters are appended to the href, '?' or '&' as needed.
        let params = item.attribute("parameters").map(str::trim).unwrap_or_default();
        let params = params.trim_start_matches(['?', '&']);
        let href = match (query.is_empty(), params.is_empty()) {
            (true, true) => file.clone(),
            (false, true) => format!("{file}?{query}"),
            (true, false) => format!("{file}?{params}"),
            (false, false) => format!("{file}?{query}&{params}"),
        };
        let text = |names: &[&str]| m.adlcp(item, names).map(|e| (e, e.text().unwrap_or_default().trim().to_string()));
        let mastery_score = match (self.kind, text(&["masteryscore"])) {
            (Kind::Scorm12, Some((e, v))) => Some(
                decimal(&v)
                    .filter(|s| (0.0..=100.0).contains(s))
                    .map(|s| s / 100.0)
                    .ok_or_else(|| m.src.err(e, None, Some(&v), "is not a number from 0 to 100"))?,
            ),
            _ => self.primary_measure(item)?,
        };
        let completion_threshold = match m.adlcp(item, &["completionThreshold"]) {
            None => None,
            Some(e) => {
                let v = e
                    .attribute("minProgressMeasure")
                    .map(str::trim)
                    .map(str::to_string)
                    .unwrap_or_else(|| e.text().unwrap_or_default().trim().to_string());
                if v.is_empty() {
                    None
                } else {
                    Some(
                        decimal(&v)
                            .filter(|s| (0.0..=1.0).contains(s))
                            .ok_or_else(|| m.src.err(e, None, Some(&v), "is not a decimal from 0 to 1"))?,
                    )
                }
            }
        };
        let index = self.units.len();
        self.units.push(Unit {
            index,
            id: id.to_string(),
            title: LangMap::from([(String::new(), title.to_string())]),
            kind: if sco { UnitKind::Sco } else { UnitKind::Asset },
            href,
            mastery_score,
            completion_threshold,
            data_from_lms: text(&["datafromlms", "dataFromLMS"]).map(|(_, v)| v).filter(|v| !v.is_empty()),
            blocks: path.to_vec(),
        });
        Ok(index)
    }

    /// SCORM 2004: the primary objective's `minNormalizedMeasure` when it is
    /// satisfied by measure.
    fn primary_measure(&self, item: X<'a, 'd>) -> Result<Option<f64>, ImportError> {
        let ss = |n: X<'a, 'd>, name: &str| -> Option<X<'a, 'd>> {
            n.children()
                .find(|c| c.is_element() && c.tag_name().name() == name && c.tag_name().namespace() == Some(IMSSS))
        };
        let Some(primary) =
            ss(item, "sequencing").and_then(|s| ss(s, "objectives")).and_then(|o| ss(o, "primaryObjective"))
        else {
            return Ok(None);
        };
        if primary.attribute("satisfiedByMeasure").map(str::trim) != Some("true") {
            return Ok(None);
        }
        let Some(e) = ss(primary, "minNormalizedMeasure") else { return Ok(Some(1.0)) };
        let v = e.text().unwrap_or_default().trim().to_string();
        decimal(&v)
            .filter(|s| (-1.0..=1.0).contains(s))
            .map(|s| Some(s.max(0.0)))
            .ok_or_else(|| self.m.src.err(e, None, Some(&v), "is not a decimal from -1 to 1"))
    }
}
