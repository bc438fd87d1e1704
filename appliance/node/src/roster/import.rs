//! `lms-node roster import FILE.csv`: header `id,name,role,classes,password`,
//! classes separated by `;`. Every line is checked before anything is
//! written; the first bad one is named by line and column and nothing
//! changes. Parsing is the `csv` crate's (quoting, embedded commas and
//! newlines, UTF-8 checks).

use super::{NewPerson, Role, RosterError};

pub const HEADER: [&str; 5] = ["id", "name", "role", "classes", "password"];

#[derive(Debug, thiserror::Error)]
#[error("{file} line {line}, column {column}: {message}")]
pub struct ImportError {
    pub file: String,
    pub line: u64,
    pub column: String,
    pub message: String,
}

/// Parses and checks the whole file (passwords hashed on every core).
pub fn parse(file: &str, bytes: &[u8]) -> Result<Vec<NewPerson>, ImportError> {
    let err = |line: u64, column: &str, message: String| ImportError {
        file: file.to_string(),
        line,
        column: column.to_string(),
        message,
    };
    let mut rdr = csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(bytes);
    let header = rdr.headers().map_err(|e| err(1, "-", e.to_string()))?.clone();
    let got: Vec<&str> = header.iter().map(str::trim).collect();
    if got != HEADER {
        return Err(err(1, "-", format!("the header must be {}, got {}", HEADER.join(","), got.join(","))));
    }
    let mut rows = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            err(line, "-", e.to_string())
        })?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let field = |i: usize| rec.get(i).unwrap_or("").to_string();
        let role: Role = field(2).parse().map_err(|m| err(line, "role", m))?;
        let classes: Vec<String> =
            field(3).split(';').map(str::trim).filter(|c| !c.is_empty()).map(str::to_string).collect();
        let id = field(0);
        if let Some(first) = seen.insert(id.clone(), line) {
            return Err(err(line, "id", format!("{id:?} is already on line {first}")));
        }
        // Check everything but the (slow) hash now, so a bad line is named
        // before any bcrypt runs.
        let checks = super::check_id(&id)
            .and_then(|_| super::check_name(&field(1)))
            .and_then(|_| classes.iter().try_for_each(|c| super::check_class(c)))
            .and_then(|_| super::check_password(&field(4)));
        if let Err(RosterError::Invalid { field, message }) = checks {
            return Err(err(line, field, message));
        }
        rows.push((line, id, field(1), role, classes, field(4)));
    }
    let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let chunk = rows.len().div_ceil(workers).max(1);
    let results: Vec<Result<NewPerson, ImportError>> = std::thread::scope(|s| {
        let handles: Vec<_> = rows
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|(line, id, name, role, classes, pw)| {
                            NewPerson::new(id, name, *role, classes, pw).map_err(|e| match e {
                                RosterError::Invalid { field, message } => err(*line, field, message),
                                other => err(*line, "-", other.to_string()),
                            })
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("hashing thread")).collect()
    });
    results.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_file_parses_with_classes_and_quotes() {
        let csv = "id,name,role,classes,password\namina,\"Amina, K\",learner,7B;Chess,learner-pass\nwang,王老师,coach,7B,coach-pass-1\n";
        let people = parse("r.csv", csv.as_bytes()).unwrap();
        assert_eq!(people.len(), 2);
        assert_eq!(people[0].person.name, "Amina, K");
        assert_eq!(people[0].person.classes, ["7B", "Chess"]);
        assert_eq!(people[1].person.role, Role::Coach);
    }

    #[test]
    fn bad_lines_are_named_by_line_and_column() {
        let bad = |csv: &str| parse("r.csv", csv.as_bytes()).unwrap_err().to_string();
        let e = bad("id,name,role,classes,password\namina,A,learner,,learner-pass\nbo,B,teacher,,learner-pass\n");
        assert!(e.contains("r.csv line 3, column role") && e.contains("teacher"), "{e}");
        let e = bad("id,name,role,classes,password\na/b,A,learner,,learner-pass\n");
        assert!(e.contains("line 2, column id"), "{e}");
        let e = bad("id,name,role,classes,password\namina,A,learner,7B,short\n");
        assert!(e.contains("line 2, column password"), "{e}");
        let e = bad("id,name,role,classes,password\namina,A,learner,a;b!,learner-pass\n");
        assert!(e.contains("line 2, column classes"), "{e}");
        let e = bad("id,name,role,classes,password\namina,A,learner,,learner-pass\namina,B,learner,,learner-pass\n");
        assert!(e.contains("line 3, column id") && e.contains("line 2"), "{e}");
        let e = bad("id,name,role,classes,password\namina,A,learner\n");
        assert!(e.contains("line 2"), "{e}");
        assert!(bad("name,id,role,classes,password\n").contains("line 1"));
    }
}
