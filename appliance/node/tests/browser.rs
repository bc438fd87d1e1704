//! Pages as people see them (issue 11): browser-tests/*.mjs drive Debian's
//! headless chromium (playwright-core) against a real node; axe-core checks
//! accessibility. `cargo xtask setup` installs chromium and the npm packages
//! from browser-tests/package-lock.json. Screenshots are kept in
//! target/tmp/browser-artifacts.

mod common;
use common::*;
use lms_node::roster::{NewPerson, Role, Roster};

fn browser_tests() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../browser-tests")
}

#[tokio::test]
async fn sign_in_page_in_a_real_browser() {
    let dir = browser_tests();
    assert!(
        dir.join("node_modules/playwright-core").is_dir() && std::path::Path::new("/usr/bin/chromium").exists(),
        "the browser tests need chromium and browser-tests/node_modules: run `cargo xtask setup`"
    );
    let n = TestNode::start(None, |_| {}).await.ready().await;
    let mut r = Roster::open(&n.node.cfg.roster_path()).unwrap();
    r.add(&NewPerson::new("mei", "王美", Role::Learner, &["7B".into()], "mei-password").unwrap()).unwrap();
    let artifacts = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-artifacts");
    let (script, base, to) = (dir.join("login.mjs"), n.base.clone(), artifacts.clone());
    // On a blocking thread: the node under test keeps serving meanwhile.
    let out = tokio::task::spawn_blocking(move || {
        // A hung browser fails the test instead of holding CI.
        std::process::Command::new("timeout")
            .args(["180", "node"])
            .arg(script)
            .arg(base)
            .arg(to)
            .args(["mei", "mei-password", "王美"])
            .output()
    })
    .await
    .unwrap()
    .expect("running node");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("{text}");
    assert!(out.status.success(), "browser test failed:\n{text}");
    for page in ["login-zh-CN", "login-en", "home-zh-CN", "home-en", "login-refused-en"] {
        assert!(artifacts.join(format!("{page}.png")).exists(), "no screenshot of {page}");
    }
    n.stop().await;
}
