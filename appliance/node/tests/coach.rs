//! The coach view against a real node with the real modules (issue 11): a
//! coach sees their class's learners × courses, who needs help, one
//! learner's detail and the CSV; nobody reaches a class or learner that is
//! not theirs, whatever URL they type.

mod common;
use common::people::*;
use common::*;
use lms_node::roster::{NewPerson, Role, Roster};

const QUIZ: &str = "/quizzes/arithmetic-check";
const RIGHT: &str = "answer-q1=b&answer-q2=c&answer-q3=a&answer-q4=d&answer-q5=b";
const WRONG: &str = "answer-q1=a&answer-q2=a&answer-q3=a&answer-q4=a&answer-q5=a";

#[tokio::test]
async fn a_coach_sees_their_class_who_needs_help_and_exports_it() {
    let n = TestNode::start(None, |_| {}).await.ready().await;
    people(&n);
    Roster::open(&n.node.cfg.roster_path())
        .unwrap()
        .add(&NewPerson::new("chen", "=陈小明", Role::Learner, &["7B".into()], "chen-password").unwrap())
        .unwrap();
    // amina reads a lesson and passes the quiz; chen fails it twice; bo (8A) does nothing.
    let (amina, csrf) = signed_in(&n, "amina").await;
    page(&get_as(&n, &amina, "/courses/arithmetic/lessons/place-value").await);
    page(&post_form(&n, QUIZ, &amina, &format!("csrf={csrf}&{RIGHT}")).await);
    let (chen, csrf) = signed_in(&n, "chen").await;
    for _ in 0..2 {
        page(&post_form(&n, QUIZ, &chen, &format!("csrf={csrf}&{WRONG}")).await);
    }

    let (wang, _) = signed_in(&n, "wang").await;
    let wang = format!("{wang}; lms_lang=en");
    let home = page(&get_as(&n, &wang, "/").await);
    assert!(home.contains(r#"<a href="/coach">Coach</a>"#), "{home}");
    let classes = page(&get_as(&n, &wang, "/coach").await);
    assert!(classes.contains(r#"href="/coach/classes/7B""#) && classes.contains("2 learners"), "{classes}");
    assert!(!classes.contains("8A"), "another coach's class listed: {classes}");

    let class = page(&get_as(&n, &wang, "/coach/classes/7B").await);
    assert!(class.contains(r#"<th scope="col">Everyday Arithmetic</th>"#), "{class}");
    assert!(
        class.contains(
            r#"<a href="/coach/learners/amina">amina</a></th><td>12.5%<br><span class="meta">quizzes 1/1</span>"#
        ),
        "{class}"
    );
    assert!(!class.contains("/coach/learners/bo"), "a learner of 8A in 7B: {class}");
    let help = &class[class.find("Needs help").unwrap()..class.find("Progress by course").unwrap()];
    assert!(
        help.contains(r#"<a href="/coach/learners/chen">=陈小明</a>"#)
            && help.contains("failed “Arithmetic check” 2 times"),
        "{help}"
    );
    assert!(!help.contains("amina"), "amina is doing fine: {help}");
    let zh = page(&get_as(&n, &wang, "/coach/classes/7B?lang=zh-CN").await);
    assert!(zh.contains("需要帮助") && zh.contains("“Arithmetic check”失败 2 次"), "{zh}");

    let detail = page(&get_as(&n, &wang, "/coach/learners/chen").await);
    assert!(detail.contains("<h1>=陈小明</h1>") && detail.contains(r#"href="/coach/classes/7B""#), "{detail}");
    assert!(detail.contains(r#"<th scope="row">Arithmetic check</th><td>2</td><td>2</td><td>20%</td>"#), "{detail}");

    // The CSV: a download, UTF-8 with a BOM, one row per learner, formula-safe.
    let r = get_as(&n, &wang, "/coach/classes/7B/csv").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("text/csv; charset=utf-8"));
    let disposition = r.header("content-disposition").unwrap();
    assert!(disposition.starts_with(r#"attachment; filename="class-7B-"#) && disposition.ends_with(r#".csv""#));
    let text = r.text();
    let body = text.strip_prefix('\u{feff}').expect("a byte order mark");
    let rows: Vec<csv::StringRecord> =
        csv::Reader::from_reader(body.as_bytes()).records().collect::<Result<_, _>>().unwrap();
    let header = csv::Reader::from_reader(body.as_bytes()).headers().unwrap().clone();
    assert_eq!(&header[0], "Learner id");
    assert_eq!(&header[2], "Everyday Arithmetic: % complete");
    assert_eq!(rows.len(), 2, "{body}");
    let amina_row = rows.iter().find(|r| &r[0] == "amina").unwrap();
    assert_eq!((&amina_row[2], &amina_row[3]), ("12.5", "1"));
    let chen_row = rows.iter().find(|r| &r[0] == "chen").unwrap();
    assert_eq!(&chen_row[1], "'=陈小明", "a name that looks like a formula is quoted");
    assert!(chen_row[header.len() - 1].contains("Arithmetic check"), "{chen_row:?}");

    // Not wang's: another class and its learner, by URL.
    for path in ["/coach/classes/8A", "/coach/classes/8A/csv", "/coach/learners/bo"] {
        assert_eq!(get_as(&n, &wang, path).await.status, 403, "{path}");
    }
    // A learner reaches none of it.
    let home = page(&get_as(&n, &amina, "/").await);
    assert!(!home.contains(r#"href="/coach""#), "a learner sees the coach entry");
    for path in
        ["/coach", "/coach/classes/7B", "/coach/classes/7B/csv", "/coach/learners/chen", "/coach/learners/amina"]
    {
        assert_eq!(get_as(&n, &amina, path).await.status, 403, "{path}");
    }
    let r = get_as(&n, &format!("{amina}; lms_lang=en"), "/coach").await;
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(r.text().contains("<h1>You may not see this page</h1>") && r.text().contains("amina is not a coach"));
    // Signed out, every coach page goes to sign-in.
    for path in ["/coach", "/coach/classes/7B", "/coach/learners/chen"] {
        let r = get_as(&n, "", path).await;
        assert_eq!((r.status.as_u16(), r.header("location")), (303, Some("/login")), "{path}");
    }

    // bo read a lesson ten days ago (a statement from another device,
    // through the client credential), past the default of 7 quiet days.
    let ten_days_ago = time::OffsetDateTime::now_utc() - time::Duration::days(10);
    let mut old = statement(
        &uuid(),
        "bo",
        "http://adlnet.gov/expapi/verbs/completed",
        "https://lms.example.org/xapi/activities/courses/arithmetic/lessons/place-value",
    );
    old["timestamp"] = ten_days_ago.format(&time::format_description::well_known::Rfc3339).unwrap().into();
    assert_eq!(n.send("POST", "/xapi/statements", old.to_string()).await.status, 200);

    // An admin sees every class and every learner.
    let (root, _) = signed_in(&n, "root").await;
    let root = format!("{root}; lms_lang=en");
    let classes = page(&get_as(&n, &root, "/coach").await);
    assert!(classes.contains("/coach/classes/7B") && classes.contains("/coach/classes/8A"), "{classes}");
    let class = page(&get_as(&n, &root, "/coach/classes/8A").await);
    assert!(
        class.contains(
            r#"<a href="/coach/learners/bo">bo</a>: <span class="status-failed">no activity for 10 days</span>"#
        ),
        "{class}"
    );
    // A learner who never started needs help too.
    let class = page(&get_as(&n, &root, "/coach/classes/7B").await);
    assert!(!class.contains("no activity"), "{class}");
    Roster::open(&n.node.cfg.roster_path())
        .unwrap()
        .add(&NewPerson::new("dan", "dan", Role::Learner, &["8A".into()], "dan-password").unwrap())
        .unwrap();
    let class = page(&get_as(&n, &root, "/coach/classes/8A").await);
    assert!(
        class.contains(r#"<a href="/coach/learners/dan">dan</a>: <span class="status-failed">no activity yet</span>"#),
        "{class}"
    );
    assert_eq!(get_as(&n, &root, "/coach/learners/nobody").await.status, 404);

    // The roster page: admins only, everyone listed, learners linked to their detail.
    let home = page(&get_as(&n, &root, "/").await);
    assert!(home.contains(r#"<a href="/roster">Roster</a>"#), "{home}");
    let roster = page(&get_as(&n, &root, "/roster").await);
    assert!(
        roster.contains("6 people") && roster.contains(r#"<a href="/coach/learners/chen">=陈小明</a>"#),
        "{roster}"
    );
    assert!(roster.contains("<td>wang</td><td>Coach</td><td>7B</td>"), "{roster}");
    for who in [&wang, &amina] {
        assert!(!page(&get_as(&n, who, "/").await).contains(r#"href="/roster""#));
        assert_eq!(get_as(&n, who, "/roster").await.status, 403);
    }
    n.stop().await;
}
