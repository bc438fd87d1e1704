//! The build-time policy check: the Gatekeeper ConstraintTemplates and
//! Constraints the image ships (appliance/k3s/policy) are evaluated with
//! regorus against every k3s manifest the image ships, the way Gatekeeper's
//! admission webhook would. A violation fails the build naming the manifest,
//! the constraint and the template's message.
//!
//! Gatekeeper's `match` is implemented for `kinds` and `excludedNamespaces`
//! (what our constraints use); `data.inventory` is not available (FACTS.md).

use serde_json::{Value, json};
use std::path::{Path, PathBuf};

struct Template {
    kind: String,
    package: String,
    rego: String,
    file: PathBuf,
}

struct Constraint {
    kind: String,
    name: String,
    parameters: Value,
    kinds: Vec<(String, String)>,
    excluded_namespaces: Vec<String>,
}

pub struct Policy {
    templates: Vec<Template>,
    constraints: Vec<Constraint>,
}

/// Every YAML document of every .yaml/.yml file under `dir`, sorted by path.
pub fn documents(dir: &Path) -> Result<Vec<(PathBuf, Value)>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let v: Value = serde::Deserialize::deserialize(doc).map_err(|e| format!("{}: {e}", f.display()))?;
            if !v.is_null() {
                out.push((f.clone(), v));
            }
        }
    }
    Ok(out)
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}

impl Policy {
    pub fn load(dir: &Path) -> Result<Policy, String> {
        let mut templates = Vec::new();
        let mut constraints = Vec::new();
        for (file, doc) in documents(dir)? {
            let at = |what: &str| format!("{}: {what}", file.display());
            let api = str_at(&doc, "/apiVersion").unwrap_or_default();
            let kind = str_at(&doc, "/kind").ok_or_else(|| at("a document without kind"))?;
            if kind == "ConstraintTemplate" {
                let tkind =
                    str_at(&doc, "/spec/crd/spec/names/kind").ok_or_else(|| at("spec.crd.spec.names.kind missing"))?;
                let rego = str_at(&doc, "/spec/targets/0/rego").ok_or_else(|| at("spec.targets[0].rego missing"))?;
                let package = rego
                    .lines()
                    .find_map(|l| l.trim().strip_prefix("package "))
                    .ok_or_else(|| at("the rego has no package line"))?
                    .trim()
                    .to_string();
                templates.push(Template { kind: tkind.into(), package, rego: rego.into(), file: file.clone() });
            } else if api.starts_with("constraints.gatekeeper.sh/") {
                let mut kinds = Vec::new();
                for k in doc.pointer("/spec/match/kinds").and_then(Value::as_array).into_iter().flatten() {
                    let groups: Vec<&str> =
                        k["apiGroups"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                    for kk in k["kinds"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                        for g in &groups {
                            kinds.push((g.to_string(), kk.to_string()));
                        }
                    }
                }
                constraints.push(Constraint {
                    kind: kind.into(),
                    name: str_at(&doc, "/metadata/name").ok_or_else(|| at("metadata.name missing"))?.into(),
                    parameters: doc.pointer("/spec/parameters").cloned().unwrap_or(json!({})),
                    kinds,
                    excluded_namespaces: doc
                        .pointer("/spec/match/excludedNamespaces")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect(),
                });
            } else {
                return Err(at(&format!("{kind} is neither a ConstraintTemplate nor a Constraint")));
            }
        }
        for c in &constraints {
            if !templates.iter().any(|t| t.kind == c.kind) {
                return Err(format!(
                    "{}: constraint {} has kind {} but no template defines it",
                    dir.display(),
                    c.name,
                    c.kind
                ));
            }
        }
        // Each template must compile.
        for t in &templates {
            engine(t).map_err(|e| format!("{}: rego of {}: {e}", t.file.display(), t.kind))?;
        }
        Ok(Policy { templates, constraints })
    }

    pub fn constraints(&self) -> usize {
        self.constraints.len()
    }

    /// Violations of `object` (a Kubernetes object), as
    /// "constraint NAME (KIND): message".
    pub fn violations(&self, object: &Value) -> Result<Vec<String>, String> {
        let api = object["apiVersion"].as_str().unwrap_or_default();
        let (group, version) = api.rsplit_once('/').unwrap_or(("", api));
        let kind = object["kind"].as_str().unwrap_or_default();
        let namespace = object.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("default");
        let mut out = Vec::new();
        for c in &self.constraints {
            let matches = c.kinds.iter().any(|(g, k)| (g == group || g == "*") && (k == kind || k == "*"));
            if !matches || c.excluded_namespaces.iter().any(|n| n == namespace) {
                continue;
            }
            let t = self.templates.iter().find(|t| t.kind == c.kind).expect("checked at load");
            let mut e = engine(t).map_err(|e| e.to_string())?;
            let input = json!({
                "review": {
                    "object": object,
                    "kind": {"group": group, "version": version, "kind": kind},
                    "operation": "CREATE",
                    "namespace": namespace,
                },
                "parameters": c.parameters,
            });
            e.set_input_json(&input.to_string()).map_err(|e| e.to_string())?;
            let v = e.eval_rule(format!("data.{}.violation", t.package)).map_err(|e| e.to_string())?;
            let v: Value = serde_json::from_str(&v.to_json_str().map_err(|e| e.to_string())?).unwrap_or(Value::Null);
            for viol in v.as_array().into_iter().flatten() {
                let msg = viol["msg"].as_str().unwrap_or("(no message)");
                out.push(format!("constraint {} ({}): {msg}", c.name, c.kind));
            }
        }
        Ok(out)
    }

    /// Checks every manifest under `dir`; the error names each manifest and
    /// the rule it breaks. Returns the number of objects checked.
    pub fn check_dir(&self, dir: &Path) -> Result<usize, String> {
        let docs = documents(dir)?;
        let mut errors = Vec::new();
        for (file, object) in &docs {
            let name = format!(
                "{}/{}",
                object["kind"].as_str().unwrap_or("?"),
                object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("?")
            );
            for v in self.violations(object)? {
                errors.push(format!("manifest {} ({name}) breaks {v}", file.display()));
            }
        }
        if errors.is_empty() { Ok(docs.len()) } else { Err(errors.join("\n")) }
    }
}

fn engine(t: &Template) -> anyhow::Result<regorus::Engine> {
    let mut e = regorus::Engine::new();
    e.set_rego_v0(true);
    // Gatekeeper's library templates call re_match; regorus leaves it to us.
    e.add_extension(
        "re_match".into(),
        2,
        Box::new(|args: Vec<regorus::Value>| {
            let re = regex::Regex::new(args[0].as_string()?)?;
            Ok(regorus::Value::from(re.is_match(args[1].as_string()?)))
        }),
    )?;
    e.add_policy(t.file.display().to_string(), t.rego.clone())?;
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../appliance/k3s/policy")).unwrap()
    }

    fn pod(runtime: Option<&str>, limits: bool) -> Value {
        let mut p = json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "quiz"},
            "spec": {"containers": [{"name": "quiz", "image": "lms/quiz:1"}]}
        });
        if let Some(r) = runtime {
            p["spec"]["runtimeClassName"] = json!(r);
        }
        if limits {
            p["spec"]["containers"][0]["resources"] = json!({"limits": {"cpu": "100m", "memory": "64Mi"}});
        }
        p
    }

    #[test]
    fn the_shipped_policy_accepts_a_wasm_pod_with_limits() {
        assert_eq!(policy().violations(&pod(Some("wasmedge"), true)).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn runtime_class_and_limits_are_required() {
        let p = policy();
        let v = p.violations(&pod(None, true)).unwrap();
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].contains("edge-pods-run-wasmedge") && v[0].contains("runtimeClassName wasmedge"), "{v:?}");
        let v = p.violations(&pod(Some("wasmedge"), false)).unwrap();
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v.iter().all(|m| m.contains("edge-containers-have-limits")), "{v:?}");
        let mut d = pod(Some("runc"), true);
        d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                   "spec": {"template": {"spec": d["spec"].clone()}}});
        assert_eq!(p.violations(&d).unwrap().len(), 1);
        let mut sys = pod(None, false);
        sys["metadata"]["namespace"] = json!("kube-system");
        assert!(p.violations(&sys).unwrap().is_empty());
    }

    #[test]
    fn re_match_is_available_to_templates() {
        let t = Template {
            kind: "K".into(),
            package: "k".into(),
            rego: "package k\nviolation[{\"msg\": \"x\"}] { re_match(\"^a.c$\", input.review.object.kind) }\n".into(),
            file: "k.rego".into(),
        };
        let mut e = engine(&t).unwrap();
        e.set_input_json(r#"{"review": {"object": {"kind": "abc"}}}"#).unwrap();
        let v = e.eval_rule("data.k.violation".into()).unwrap();
        assert!(v.to_json_str().unwrap().contains('x'));
    }
}
