//! `lms-node roster` as a program (issue 11): the command contract, exit
//! codes, and that a bad input changes nothing.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn roster(data: &std::path::Path, args: &[&str], stdin: &str) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lms-node"))
        .arg("roster")
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    c.wait_with_output().unwrap()
}

fn list(data: &std::path::Path) -> serde_json::Value {
    let o = roster(data, &["list", "--json"], "");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn add_passwd_remove_list() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path();
    let add = ["add", "--id", "amina", "--name", "Amina K", "--role", "learner", "--class", "7B", "--class", "棋社"];
    let o = roster(data, &[&add[..], &["--password-stdin"]].concat(), "learner-pass\n");
    assert!(o.status.success(), "{}", err(&o));
    let people = list(data);
    assert_eq!(people[0]["id"], "amina");
    assert_eq!(people[0]["classes"], serde_json::json!(["7B", "棋社"]));
    assert!(people[0].get("password").is_none() && !people.to_string().contains("$2"), "{people}");

    // The same id again, a password on the command line, bad values: exit 1, named.
    let o = roster(data, &[&add[..], &["--password-stdin"]].concat(), "learner-pass\n");
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("already exists"), "{}", err(&o));
    let o = roster(data, &add, "");
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("--password-stdin"), "{}", err(&o));
    let o = roster(data, &["add", "--id", "bo", "--name", "Bo", "--role", "learner", "--password-stdin"], "short\n");
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("password"), "{}", err(&o));
    let o =
        roster(data, &["add", "--id", "bo", "--name", "Bo", "--role", "teacher", "--password-stdin"], "long-enough\n");
    assert_ne!(o.status.code(), Some(0));
    assert!(err(&o).contains("teacher"), "{}", err(&o));
    assert_eq!(list(data).as_array().unwrap().len(), 1, "a refused add wrote something");

    let o = roster(data, &["passwd", "--id", "amina", "--password-stdin"], "new-password\n");
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        roster(data, &["passwd", "--id", "nobody", "--password-stdin"], "new-password\n").status.code(),
        Some(1)
    );
    assert!(roster(data, &["remove", "--id", "amina"], "").status.success());
    assert!(list(data).as_array().unwrap().is_empty());
    assert_eq!(roster(data, &["remove", "--id", "amina"], "").status.code(), Some(1));
}

#[test]
fn import_is_all_or_nothing_and_names_the_bad_line() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path();
    let good = d.path().join("good.csv");
    std::fs::write(
        &good,
        "id,name,role,classes,password\namina,\"Amina, K\",learner,7B;Chess,learner-pass\nwang,王老师,coach,7B,coach-pass-1\n",
    )
    .unwrap();
    let o = roster(data, &["import", good.to_str().unwrap()], "");
    assert!(o.status.success(), "{}", err(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("2 added, 0 replaced"));
    let before = list(data);

    let bad = d.path().join("bad.csv");
    std::fs::write(
        &bad,
        "id,name,role,classes,password\nzoe,Zoe,learner,7B,learner-pass\namina,Amina,principal,7B,learner-pass\n",
    )
    .unwrap();
    let o = roster(data, &["import", bad.to_str().unwrap()], "");
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("bad.csv line 3, column role"), "{}", err(&o));
    assert_eq!(list(data), before, "a bad file changed the roster");

    // A replaced person keeps one entry, with the new values.
    std::fs::write(&good, "id,name,role,classes,password\namina,Amina Khan,learner,8A,learner-pass\n").unwrap();
    let o = roster(data, &["import", good.to_str().unwrap()], "");
    assert!(String::from_utf8_lossy(&o.stdout).contains("0 added, 1 replaced"), "{}", err(&o));
    let people = list(data);
    assert_eq!(people.as_array().unwrap().len(), 2);
    assert_eq!(people[0]["name"], "Amina Khan");
    assert_eq!(people[0]["classes"], serde_json::json!(["8A"]));
}
