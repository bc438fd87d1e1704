//! The appliance settings file and the duration values every settings file
//! of the project uses.
//!
//! On the appliance one file on the data partition, `/data/etc/lms.toml`,
//! provisions a node after flashing:
//!
//! ```toml
//! node_id = "edge-berlin-0007"
//! [node]       # lms-node's settings (its --config keys)
//! upstream = "http://hub.example.org:8080/xapi"
//! [updater]    # lms-updater's settings (its --config keys)
//! repository = "http://updates.example.org/lms/"
//! ```
//!
//! lms-node reads `[node]`, lms-updater reads `[updater]`, both get the
//! top-level `node_id`. A file without those tables is a program's own flat
//! settings file, as before.

pub mod privileges;
pub mod tls;

/// An error with its sources, "a: b: c" (hyper's client errors say only
/// "client error (Connect)" on their own; the cause is further down).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        src = s.source();
    }
    out
}

use std::time::Duration;

/// Keys allowed at the top of an appliance settings file.
const TOP_LEVEL: [&str; 3] = ["node_id", "node", "updater"];

/// The table a program reads from `text`: its `[section]` (with `node_id`
/// copied in) when the file is an appliance settings file, else the whole
/// file. Errors name the key.
pub fn section(text: &str, section: &str) -> Result<toml::Table, String> {
    let mut top: toml::Table = toml::from_str(text).map_err(|e| e.to_string().trim().to_string())?;
    if !TOP_LEVEL[1..].iter().any(|s| top.get(*s).is_some_and(toml::Value::is_table)) {
        return Ok(top);
    }
    if let Some(k) = top.keys().find(|k| !TOP_LEVEL.contains(&k.as_str())) {
        return Err(format!("unknown key `{k}` (an appliance settings file has node_id, [node] and [updater])"));
    }
    let mut table = match top.remove(section) {
        Some(toml::Value::Table(t)) => t,
        Some(_) => return Err(format!("`{section}` must be a table")),
        None => toml::Table::new(),
    };
    if let Some(id) = top.remove("node_id") {
        if !id.is_str() {
            return Err("`node_id` must be a string".into());
        }
        table.insert("node_id".into(), id);
    }
    Ok(table)
}

/// `300` (seconds), `300s`, `500ms`, `10m`, `1h`, `7d`.
pub fn parse_duration(v: &str) -> Result<Duration, String> {
    let v = v.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("expected a duration like 10s, 500ms, 5m; got {v:?}"))?;
    let secs = |mult: u64| n.checked_mul(mult).map(Duration::from_secs).ok_or(format!("{v:?} is too long"));
    match unit {
        "" | "s" => secs(1),
        "ms" => Ok(Duration::from_millis(n)),
        "m" => secs(60),
        "h" => secs(3600),
        "d" => secs(86_400),
        _ => Err(format!("unknown unit {unit:?} in {v:?} (use ms, s, m, h or d)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("300").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("2d").unwrap(), Duration::from_secs(172_800));
        assert!(parse_duration("5x").unwrap_err().contains("5x"));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }

    #[test]
    fn appliance_file_gives_each_program_its_table_and_the_node_id() {
        let text = "node_id = \"edge-7\"\n[node]\ncache_ttl = \"60s\"\n[updater]\nchannel = \"beta\"\n";
        let node = section(text, "node").unwrap();
        assert_eq!(node["cache_ttl"].as_str(), Some("60s"));
        assert_eq!(node["node_id"].as_str(), Some("edge-7"));
        assert!(node.get("channel").is_none());
        let up = section(text, "updater").unwrap();
        assert_eq!(up["channel"].as_str(), Some("beta"));
        assert_eq!(up["node_id"].as_str(), Some("edge-7"));
    }

    #[test]
    fn flat_files_pass_through_and_strays_are_named() {
        let flat = section("listen = \"0.0.0.0:1\"\n", "node").unwrap();
        assert_eq!(flat["listen"].as_str(), Some("0.0.0.0:1"));
        let e = section("node_id = \"x\"\nlisten = \"a\"\n[node]\n", "node").unwrap_err();
        assert!(e.contains("listen"), "{e}");
        let e = section("node_id = 7\n[node]\n", "node").unwrap_err();
        assert!(e.contains("node_id"), "{e}");
        assert!(section("[node\n", "node").is_err());
    }
}
