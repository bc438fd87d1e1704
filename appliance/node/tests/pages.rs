//! The learner app against a real node with the real modules (issue 11):
//! every page as a signed-in learner sees it, what each one records, and
//! what bad input, stale forms and lost sessions get.

mod common;
use common::people::*;
use common::*;

const LESSON: &str = "/courses/arithmetic/lessons/place-value";
const COMPLETED: &str = "http://adlnet.gov/expapi/verbs/completed";
/// arithmetic-check's key, and one wrong answer.
const RIGHT: &str = "answer-q1=b&answer-q2=c&answer-q3=a&answer-q4=d&answer-q5=b";
const ONE_WRONG: &str = "answer-q1=a&answer-q2=c&answer-q3=a&answer-q4=d&answer-q5=b";

fn q(s: &str) -> String {
    serde_urlencoded::to_string([("x", s)]).unwrap()[2..].to_string()
}

/// The statements stored for `learner` (as the node's client credential sees them).
async fn statements_of(n: &TestNode, learner: &str) -> Vec<serde_json::Value> {
    let agent = q(&format!(r#"{{"account":{{"homePage":"https://lms.example.org/learners","name":"{learner}"}}}}"#));
    let r = n.get(&format!("/xapi/statements?agent={agent}&limit=500")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["statements"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_learner_reads_a_lesson_takes_a_quiz_and_sees_their_progress() {
    let n = TestNode::start(None, |_| {}).await.ready().await;
    people(&n);
    let (amina, csrf) = signed_in(&n, "amina").await;
    let en = format!("{amina}; lms_lang=en");

    let home = page(&get_as(&n, &en, "/").await);
    assert!(home.contains("Welcome, amina") && home.contains("You have not started a course yet."), "{home}");
    let catalog = page(&get_as(&n, &en, "/courses").await);
    assert!(catalog.contains(r#"href="/courses/arithmetic""#) && catalog.contains("Everyday Arithmetic"), "{catalog}");
    let course = page(&get_as(&n, &en, "/courses/arithmetic").await);
    assert!(course.contains("0 of 8 lessons completed") && course.contains(r#"href="/quizzes/arithmetic-check""#));

    // Reading a lesson completes it, once however often it is read.
    for _ in 0..2 {
        let lesson = page(&get_as(&n, &en, LESSON).await);
        assert!(lesson.contains("<h1 id=\"lesson-title\">Place value</h1>") && lesson.contains("<p>Our number system"));
        assert!(lesson.contains("Next: Adding with carrying"), "{lesson}");
    }
    let completed: Vec<_> =
        statements_of(&n, "amina").await.into_iter().filter(|s| s["verb"]["id"] == COMPLETED).collect();
    assert_eq!(completed.len(), 1, "{completed:?}");
    assert_eq!(
        completed[0]["object"]["id"],
        "https://lms.example.org/xapi/activities/courses/arithmetic/lessons/place-value"
    );
    assert_eq!(completed[0]["authority"]["account"]["name"], "person:amina");
    let course = page(&get_as(&n, &en, "/courses/arithmetic").await);
    assert!(course.contains("1 of 8 lessons completed"), "{course}");
    assert!(course.contains(r#"Place value</a> · <span class="status-done">Completed</span>"#), "{course}");
    let home = page(&get_as(&n, &en, "/").await);
    assert!(home.contains("Continue: Adding with carrying"), "{home}");

    // The quiz: a form, then the score and feedback; the attempt is stored.
    let quiz = page(&get_as(&n, &en, "/quizzes/arithmetic-check").await);
    assert!(quiz.contains(r#"name="answer-q1" value="b""#) && !quiz.contains("explanation"), "{quiz}");
    let r = post_form(&n, "/quizzes/arithmetic-check", &en, &format!("csrf={csrf}&{ONE_WRONG}")).await;
    let result = page(&r);
    assert!(result.contains("You answered 4 of 5 correctly (80%).") && result.contains("You passed."), "{result}");
    assert!(result.contains("Not correct") && !result.contains("The 4 is in the hundreds place"));
    let r = post_form(&n, "/quizzes/arithmetic-check", &en, &format!("csrf={csrf}&{RIGHT}")).await;
    assert!(page(&r).contains("You answered 5 of 5 correctly (100%)."));
    let stored = statements_of(&n, "amina").await;
    assert_eq!(stored.iter().filter(|s| s["verb"]["id"] == "http://adlnet.gov/expapi/verbs/passed").count(), 2);

    let progress = page(&get_as(&n, &en, "/progress").await);
    assert!(progress.contains("Everyday Arithmetic</a></th><td>1/8</td><td>12.5%</td><td>1/1</td>"), "{progress}");
    // Another learner sees none of it.
    let (bo, _) = signed_in(&n, "bo").await;
    let theirs = page(&get_as(&n, &format!("{bo}; lms_lang=en"), "/progress").await);
    assert!(theirs.contains("<td>0/8</td><td>0%</td><td>0/1</td><td>Never</td>"), "{theirs}");
    // The course outline both read is one render; each sees their own
    // status, name and form token in it.
    let course = page(&get_as(&n, &format!("{bo}; lms_lang=en"), "/courses/arithmetic").await);
    assert!(course.contains("0 of 8 lessons completed") && course.contains("bo"), "{course}");
    assert!(!course.contains("status-done") && !course.contains(&csrf) && !course.contains("amina"), "{course}");
    assert!(!course.contains("lmsslot"), "no slot left unfilled: {course}");
    let course = page(&get_as(&n, &en, "/courses/arithmetic").await);
    assert!(course.contains("Passed (best score 100%)") && course.contains(&csrf), "{course}");
    // A first read twelve times at the same moment (a double click, two
    // tabs) still records the lesson once: the writer checks again in the
    // transaction that would store it.
    let bo = format!("{bo}; lms_lang=en");
    let mut reads = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let (client, url, cookie) = (n.client.clone(), n.url("/courses/arithmetic/lessons/addition"), bo.clone());
        reads.spawn(async move { client.get(&url, &[("cookie", &cookie)]).await.unwrap().status });
    }
    while let Some(status) = reads.join_next().await {
        assert_eq!(status.unwrap(), 200);
    }
    let completed: Vec<_> =
        statements_of(&n, "bo").await.into_iter().filter(|s| s["verb"]["id"] == COMPLETED).collect();
    assert_eq!(completed.len(), 1, "{completed:?}");
    n.stop().await;
}

#[tokio::test]
async fn stale_forms_lost_sessions_and_bad_answers_change_nothing() {
    let n = TestNode::start(None, |_| {}).await.ready().await;
    people(&n);
    let (amina, csrf) = signed_in(&n, "amina").await;
    let quiz = "/quizzes/arithmetic-check";
    // No CSRF token, another one, an oversize form, an answer that is no choice.
    // People get pages, not JSON: the status, what it means, and the detail.
    let r = post_form(&n, quiz, &amina, RIGHT).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(r.header("content-security-policy").is_some());
    let text = r.text();
    assert!(text.contains("<h1>你无权查看此页面</h1>") && text.contains("csrf"), "{text}");
    assert!(text.contains(r#"action="/logout""#), "the signed-in frame: {text}");
    assert_eq!(post_form(&n, quiz, &amina, &format!("csrf=not-{csrf}&{RIGHT}")).await.status, 403);
    let huge = format!("csrf={csrf}&{RIGHT}&pad={}", "x".repeat(70 * 1024));
    assert_eq!(post_form(&n, quiz, &amina, &huge).await.status, 413);
    let r = post_form(&n, quiz, &amina, &format!("csrf={csrf}&answer-q1=z")).await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("answers.q1") && r.text().contains("无法处理"), "{}", r.text());
    // Without a live session (none, made up, signed out) pages and posts go to sign-in.
    for cookie in ["", "lms_session=made-up-token-000000000000000"] {
        for path in ["/", "/courses", LESSON, "/progress", quiz] {
            let r = get_as(&n, cookie, path).await;
            assert_eq!((r.status.as_u16(), r.header("location")), (303, Some("/login")), "{path}");
        }
        let r = post_form(&n, quiz, cookie, &format!("csrf={csrf}&{RIGHT}")).await;
        assert_eq!((r.status.as_u16(), r.header("location")), (303, Some("/login")));
    }
    assert!(statements_of(&n, "amina").await.is_empty(), "a refused form recorded something");
    // Unknown courses, lessons and quizzes are 404.
    for path in ["/courses/nope", "/courses/arithmetic/lessons/nope", "/quizzes/nope"] {
        let r = get_as(&n, &format!("{amina}; lms_lang=en"), path).await;
        assert_eq!(r.status, 404, "{path}");
        assert!(r.text().contains("<h1>Page not found</h1>"), "{path}: {}", r.text());
    }
    // A signed-out session is gone for good.
    let r = post_form(&n, "/logout", &amina, &format!("csrf={csrf}")).await;
    assert_eq!(r.status, 303);
    assert_eq!(get_as(&n, &amina, LESSON).await.status, 303);
    assert!(statements_of(&n, "amina").await.is_empty());
    n.stop().await;
}

#[tokio::test]
async fn the_language_switch_is_saved_with_the_person() {
    let n = TestNode::start(None, |_| {}).await.ready().await;
    people(&n);
    let amina = session_of(&login(&n, "amina", "amina-password").await);
    // The node's default (zh-CN) until the browser or the person says otherwise.
    let zh = page(&get_as(&n, &amina, "/courses").await);
    assert!(zh.contains(r#"<html lang="zh-CN">"#) && zh.contains("全部课程"), "{zh}");
    assert!(zh.contains("汉语拼音入门") && zh.contains("生活安全常识"), "the Chinese courses are listed: {zh}");
    let csrf = csrf_in(&zh);
    assert_eq!(post_form(&n, "/language", &amina, "lang=en&next=/courses&csrf=wrong").await.status, 403);
    assert_eq!(post_form(&n, "/language", &amina, &format!("lang=fr&next=/&csrf={csrf}")).await.status, 400);
    let r = post_form(&n, "/language", &amina, &format!("lang=en&next=/courses&csrf={csrf}")).await;
    assert_eq!((r.status.as_u16(), r.header("location")), (303, Some("/courses")));
    // Saved with the person: a browser asking for Chinese, with no cookie, gets English.
    let r = n.client.get(&n.url("/courses"), &[("cookie", &amina), ("accept-language", "zh-CN")]).await.unwrap();
    assert!(page(&r).contains(r#"<html lang="en">"#));
    // Only paths of this node are come back to.
    let r = post_form(&n, "/language", &amina, &format!("lang=zh-CN&next=//evil.example/&csrf={csrf}")).await;
    assert_eq!(r.header("location"), Some("/"));
    // Before sign-in the choice is a cookie, under the sign-in form's token.
    let r = post_form(&n, "/language", &format!("lms_csrf={CSRF}"), &format!("lang=en&next=/login&csrf={CSRF}")).await;
    assert_eq!(r.status, 303);
    assert!(r.header("set-cookie").unwrap().starts_with("lms_lang=en"));
    let r = n.client.get(&n.url("/login"), &[("cookie", "lms_lang=en")]).await.unwrap();
    assert!(page(&r).contains("Sign in to learn"));
    n.stop().await;
}

#[tokio::test]
async fn static_files_come_from_the_active_modules_under_hashed_names() {
    let n = TestNode::start(None, |_| {}).await.ready().await;
    let login = n.client.get(&n.url("/login"), &[]).await.unwrap().text();
    let at = login.find(r#"<link rel="stylesheet" href=""#).unwrap() + 29;
    let css = login[at..].split('"').next().unwrap().to_string();
    assert!(css.starts_with("/static/app.") && css.ends_with(".css") && css.len() == "/static/app..css".len() + 16);
    let r = n.client.get(&n.url(&css), &[]).await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/css; charset=utf-8"));
    assert_eq!(r.header("cache-control"), Some("public, max-age=31536000, immutable"));
    assert!(r.text().contains("PingFang SC"), "Chinese fonts first");
    let etag = r.header("etag").unwrap().to_string();
    let again = n.client.get(&n.url(&css), &[("if-none-match", &etag)]).await.unwrap();
    assert_eq!(again.status, 304);
    assert_eq!(n.client.get(&n.url("/static/app.css"), &[]).await.unwrap().status, 404);
    assert_eq!(n.client.get(&n.url("/static/manifest.json"), &[]).await.unwrap().status, 404);
    n.stop().await;
}

#[tokio::test]
async fn a_lesson_rendered_once_is_each_readers_own() {
    for cache in [true, false] {
        let n = TestNode::start(None, |c| c.cache_enabled = cache).await.ready().await;
        people(&n);
        let (amina, amina_csrf) = signed_in(&n, "amina").await;
        let (bo, bo_csrf) = signed_in(&n, "bo").await;
        let before = n.node.current().unwrap().answers.len();
        let a = page(&get_as(&n, &amina, LESSON).await);
        let b = page(&get_as(&n, &bo, LESSON).await);
        let kept = n.node.current().unwrap().answers.len() - before;
        assert_eq!(kept, usize::from(cache), "one shared render with the cache on, none off");
        for (text, name, csrf, other) in [(&a, "amina", &amina_csrf, &bo_csrf), (&b, "bo", &bo_csrf, &amina_csrf)] {
            assert!(!text.contains("lmsslot"), "a slot was left in the page");
            assert_eq!(csrf_in(text), *csrf, "{name}'s forms carry their own token");
            assert!(!text.contains(other.as_str()), "{name}'s page carries another's token");
            assert!(
                text.contains(&format!("已登录：{name}")) || text.contains(&format!("Signed in as {name}")),
                "{text}"
            );
        }
        let (sa, sb) = (statements_of(&n, "amina").await, statements_of(&n, "bo").await);
        assert_eq!((sa.len(), sb.len()), (1, 1), "{sa:?} {sb:?}");
        assert_ne!(sa[0]["id"], sb[0]["id"]);
        assert_eq!(sb[0]["actor"]["account"]["name"], "bo");
        assert_eq!(sb[0]["authority"]["account"]["name"], "person:bo");
        assert_eq!(sa[0]["verb"]["id"], COMPLETED);
        n.stop().await;
    }
}
