//! The page as a person meets it when an AWS account is slow: the project page's shell (header,
//! projects, heading, environment tabs) is sent at once, the card says it is asking AWS, and the
//! page is finished within the server's budget for AWS; the browser then asks for the card — or
//! the card says why it could not be read. Stands for AWS
//! answering DescribeStacks slowly (a throttled or distant account): the fault proxy holds
//! moto's answers.
//!
//! They run side by side, each on a runtime of its own. They used to run one at a time, as two
//! runtimes rendering pages in one process had held each other's pages back (one page never
//! ended). The cause was each router working out the pages' routes: see the last test.

mod common;

use std::time::{Duration, Instant};

use common::{Harness, proxy::Fault};
use futures::StreamExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_account_does_not_hold_the_page_back() {
    let h = Harness::start_behind_proxy().await;
    h.put_build("web", "web-master-1").await;
    let proxy = h.proxy.as_ref().unwrap();
    let hold = Duration::from_secs(6);
    proxy.inject("DescribeStacks", Fault::SlowAnswer(hold), 1_000);
    let base = h.serve().await;

    let asked = Instant::now();
    let response = h
        .http_client()
        .get(format!("{base}/projects/web/DEV"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut page = String::new();
    // The shell, before the account has answered: the card named, saying it is asking AWS,
    // and the history (from the deployer's own store) filled in already.
    while !(page.contains("Asking AWS for DEV-WEB") && page.contains("Recent deployments")) {
        let chunk = tokio::time::timeout(hold, body.next())
            .await
            .unwrap_or_else(|_| {
                std::fs::write("/tmp/page_shell.html", &page).unwrap();
                panic!("the page's shell waited for the slow account")
            })
            .expect("the page ended before its shell")
            .unwrap();
        page.push_str(&String::from_utf8_lossy(&chunk));
    }
    let shell_at = asked.elapsed();
    assert!(shell_at < hold, "shell after {shell_at:?}");
    // (Not `<h1>Web</h1>`: erased views put a hydration marker after the text.)
    assert!(page.contains("<h1>Web<"), "{page}");
    assert!(
        page.contains("role=\"tablist\"") || page.contains("class=\"tabs"),
        "{page}"
    );
    assert!(!page.contains("web-master-1 →"), "{page}");

    // The page is finished without the card's head: the server waited for AWS only so long
    // (app::api::PAGE_BUDGET), and the browser asks for the stack itself once the page is live.
    while let Some(chunk) = tokio::time::timeout(hold, body.next())
        .await
        .expect("the page waited for the slow account")
    {
        page.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    let done_at = asked.elapsed();
    assert!(done_at < hold, "the page took {done_at:?}");
    assert!(done_at >= app::api::PAGE_BUDGET, "{done_at:?}");
    assert!(!page.contains("deployed-build"), "{page}");
    println!("slow account: shell after {shell_at:?}, page done after {done_at:?}");

    // What the browser then asks: the stack, answered when AWS answers.
    let stack = ask_for_the_stack(&h, &base).await;
    assert_eq!(stack.status(), 200);
    let stack: serde_json::Value = stack.json().await.unwrap();
    assert_eq!(stack["card"]["name"], "DEV-WEB", "{stack}");
}

/// Stands for an account that fails every DescribeStacks (503s, the SDK's retries spent): the
/// card says so in its own head, and the rest of the page — tabs, the card's history — is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_that_fails_says_so_in_its_card() {
    let h = Harness::start_behind_proxy().await;
    h.put_build("web", "web-master-1").await;
    h.proxy
        .as_ref()
        .unwrap()
        .inject("DescribeStacks", Fault::Unavailable, 1_000);
    let base = h.serve().await;
    let page = h
        .http_client()
        .get(format!("{base}/projects/web/DEV"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("aria-label=\"Stack DEV-WEB\""), "{page}");
    assert!(page.contains("Recent deployments"), "{page}");
    assert!(page.contains("role=\"tablist\""), "{page}");
    // The card's head: the failure if it came within the server's budget for AWS, else still
    // asking — and the browser's own ask ends in the failure, in words.
    assert!(
        page.contains("Could not read the stack") || page.contains("Asking AWS for DEV-WEB"),
        "{page}"
    );
    let answer = ask_for_the_stack(&h, &base).await;
    assert!(answer.status().is_server_error(), "{}", answer.status());
    let error: serde_json::Value = answer.json().await.unwrap();
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{error}"
    );
}

/// What the page's browser asks once it is live: DEV-WEB's card (the `get_stack` server function).
async fn ask_for_the_stack(h: &Harness, base: &str) -> reqwest::Response {
    h.http_client()
        .post(format!("{base}/api/get_stack"))
        .json(&serde_json::json!({"project": "web", "environment": "DEV"}))
        .send()
        .await
        .unwrap()
}

/// Pages rendered while routers are built beside them, in the same process, all end. Building a
/// router used to work out the pages' routes each time, which renders the app with resource
/// loading suppressed process-wide (leptos-rs/leptos#4773): a page whose resource first asked
/// meanwhile waited forever — once in about thirty runs of the access tests, whose harness
/// builds a router per request; it held CI until its time ran out. The routes are now worked out
/// once per process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_end_while_routers_are_built_beside_them() {
    let h = Harness::start().await;
    h.put_build("web", "web-master-1").await;
    let building = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let builder = {
        let building = building.clone();
        let state = h.state.clone();
        let runtime = tokio::runtime::Handle::current();
        std::thread::spawn(move || {
            let _runtime = runtime.enter();
            let mut built = 0u32;
            while building.load(std::sync::atomic::Ordering::Relaxed) {
                drop(deployer::router(state.clone()));
                built += 1;
            }
            built
        })
    };
    // The audit trail waits for its resources before it answers; the stack page streams them.
    for round in 0..40 {
        for path in ["/audit?environment=DEV", "/projects/web/DEV"] {
            let page = axum::http::Request::get(path)
                .header("accept", "text/html")
                .header("authorization", format!("Bearer {}", h.token))
                .body(axum::body::Body::empty())
                .unwrap();
            let answered = tokio::time::timeout(Duration::from_secs(10), h.anonymous(page)).await;
            let Ok((status, _, html)) = answered else {
                building.store(false, std::sync::atomic::Ordering::Relaxed);
                panic!("{path} (round {round}) never ended while routers were being built");
            };
            assert_eq!(status, 200, "{path}: {html}");
            assert!(html.contains("</html>"), "{path}: {html}");
        }
    }
    building.store(false, std::sync::atomic::Ordering::Relaxed);
    let built = builder.join().unwrap();
    assert!(built > 0, "no router was built beside the pages");
}
