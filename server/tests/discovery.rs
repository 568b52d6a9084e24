//! Artifact discovery against moto with the real SDK: pagination, incomplete builds, ordering,
//! branch filters and the REST contract around them.

mod common;

use axum::http::StatusCode;
use common::Harness;
use futures::StreamExt;

#[tokio::test]
async fn discovery_pages_through_more_than_a_thousand_objects() {
    let h = Harness::start().await;
    // 650 builds x 2 files = 1,300 objects: ListObjectsV2 answers at most 1,000 per page.
    let ids: Vec<String> = (1..=650).map(|n| format!("web-master-{n}")).collect();
    futures::stream::iter(ids.iter())
        .for_each_concurrent(16, |id| h.put_build("web", id))
        .await;

    let (status, builds) = h.builds("web", "").await;
    assert_eq!(status, StatusCode::OK);
    let builds = builds.as_array().unwrap();
    assert_eq!(
        builds.len(),
        650,
        "every build folder is listed, across pages"
    );
    let numbers: Vec<u64> = builds
        .iter()
        .map(|b| b["number"].as_u64().unwrap())
        .collect();
    let mut expected: Vec<u64> = (1..=650).collect();
    expected.reverse();
    assert_eq!(
        numbers, expected,
        "newest first, numerically (100 after 99 after 9)"
    );
    assert!(
        builds
            .iter()
            .all(|b| b["deployable"] == true && b["problem"].is_null())
    );

    let (_, limited) = h.builds("web", "limit=3").await;
    let ids: Vec<&str> = limited
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["web-master-650", "web-master-649", "web-master-648"]);
}

#[tokio::test]
async fn incomplete_and_misnamed_builds_are_listed_as_not_deployable() {
    let h = Harness::start().await;
    h.put_build("web", "web-master-7").await;
    h.put("web/web-master-8/template.yaml", common::TEMPLATE)
        .await;
    h.put("web/web-master-9/parameters.json", "{}").await;
    h.put_build("web", "web-latest").await;

    let (status, builds) = h.builds("web", "").await;
    assert_eq!(status, StatusCode::OK);
    let find = |id: &str| {
        builds
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(find("web-master-7")["deployable"], true);
    assert_eq!(find("web-master-8")["deployable"], false);
    assert_eq!(find("web-master-8")["problem"], "no parameters.json");
    assert_eq!(find("web-master-9")["deployable"], false);
    assert!(
        find("web-master-9")["problem"]
            .as_str()
            .unwrap()
            .starts_with("no template")
    );
    let latest = find("web-latest");
    assert_eq!(latest["deployable"], false);
    assert!(latest["branch"].is_null() && latest["number"].is_null());
    assert!(
        latest["problem"]
            .as_str()
            .unwrap()
            .contains("no build number")
    );
    for key in [
        "id",
        "project",
        "branch",
        "number",
        "created_at",
        "deployable",
        "problem",
    ] {
        assert!(latest.get(key).is_some(), "field {key} is always present");
    }
}

#[tokio::test]
async fn builds_filter_by_branch_and_stay_in_their_project() {
    let h = Harness::start().await;
    for id in [
        "web-master-1",
        "web-master-2",
        "web-feature-login-1",
        "web-feature-login-10",
        "web-feature-login-9",
    ] {
        h.put_build("web", id).await;
    }
    h.put_build("web-api", "web-api-master-5").await;

    let (_, builds) = h
        .get("/api/v1/projects/web/builds?branch=feature-login")
        .await;
    let ids: Vec<&str> = builds
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "web-feature-login-10",
            "web-feature-login-9",
            "web-feature-login-1"
        ]
    );
    assert!(
        builds
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["branch"] == "feature-login")
    );

    let (_, all) = h.builds("web", "").await;
    assert_eq!(
        all.as_array().unwrap().len(),
        5,
        "web-api's folder is not web's"
    );
    let (_, api) = h.builds("web-api", "").await;
    assert_eq!(api[0]["id"], "web-api-master-5");
    assert_eq!(api[0]["project"], "web-api");
    assert_eq!(api[0]["branch"], "master");
}

#[tokio::test]
async fn bad_requests_get_clear_json_errors() {
    let h = Harness::start().await;
    let (status, body) = h.builds("nope", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    assert!(body["error"]["message"].as_str().unwrap().contains("nope"));

    let (status, body) = h.stacks("nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");

    for query in ["limit=abc", "limit=0", "limit=-1"] {
        let (status, body) = h.get(&format!("/api/v1/projects/web/builds?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(body["error"]["code"], "bad_request");
    }

    let (status, body) = h.get("/api/v1/no-such-thing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn a_missing_bucket_is_summarised_not_leaked() {
    let h = Harness::start().await;
    h.s3()
        .delete_bucket()
        .bucket(&h.moto.bucket)
        .send()
        .await
        .unwrap();
    // The builds watch may have listed the bucket before it went: read it again.
    h.state.catalog().artifacts.invalidate("web");
    let (status, body) = h.builds("web", "").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(body["error"]["code"], "aws_unavailable");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("NoSuchBucket"), "{message}");
    assert!(
        !message.contains("<?xml") && !message.contains("RequestId"),
        "{message}"
    );
}

/// The listing of a project at scale: a page never waits on a re-list (the listing in memory is
/// served however old while a fresh one is made in the background), and a re-list lists only
/// what is new — the folder names, then the files of folders not seen or seen incomplete.
#[tokio::test]
async fn a_stale_listing_is_served_at_once_and_re_listed_in_the_background_listing_only_what_is_new()
 {
    use deployer::artifacts::{ArtifactStore, ListingCounts};
    use std::time::Duration;

    let h = Harness::start().await;
    let ids: Vec<String> = (1..=30).map(|n| format!("web-master-{n}")).collect();
    futures::stream::iter(ids.iter())
        .for_each_concurrent(8, |id| h.put_build("web", id))
        .await;
    let ttl = Duration::from_millis(300);
    let store = ArtifactStore::new(
        h.s3().clone(),
        h.moto.bucket.clone(),
        h.state.catalog().artifacts.prefix().to_owned(),
        vec!["DEV".into(), "STG".into(), "PRD".into()],
        ttl,
    );
    let ids_of = |folders: &[deployer::artifacts::BuildFolder]| -> Vec<String> {
        folders.iter().map(|f| f.build.id.clone()).collect()
    };

    let first = store.folders("web").await.unwrap();
    assert_eq!(first.len(), 30);
    assert_eq!(
        store.counts("web"),
        ListingCounts {
            listings: 1,
            full_listings: 1,
            s3_calls: 1
        },
        "the first listing lists every object (60 fit one page)"
    );

    // A new build lands, and another is half written (its template only).
    h.put_build("web", "web-master-31").await;
    h.put("web/web-master-32/template.yaml", common::TEMPLATE)
        .await;
    tokio::time::sleep(ttl + Duration::from_millis(50)).await;

    let stale = store.folders("web").await.unwrap();
    assert_eq!(
        ids_of(&stale),
        ids_of(&first),
        "a stale listing is answered as it is, without waiting for S3"
    );
    let mut fresh = stale;
    for _ in 0..100 {
        fresh = store.cached("web").unwrap();
        if fresh.len() == 32 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        fresh.len(),
        32,
        "the background re-list found both new folders"
    );
    assert_eq!(fresh[0].build.id, "web-master-32");
    assert!(!fresh[0].build.deployable, "{:?}", fresh[0].build);
    assert_eq!(fresh[1].build.id, "web-master-31");
    assert!(fresh[1].build.deployable);
    assert_eq!(
        store.counts("web"),
        ListingCounts {
            listings: 2,
            full_listings: 1,
            s3_calls: 1 + 1 + 2
        },
        "the re-list: one page of folder names, then the two new folders' files"
    );

    // The half-written build is completed: a re-list lists that folder again, and only it.
    h.put("web/web-master-32/parameters.json", r#"{"Greeting":"hi"}"#)
        .await;
    let now = store.relist("web", Duration::ZERO).await.unwrap();
    assert_eq!(now.len(), 32);
    assert_eq!(now[0].build.id, "web-master-32");
    assert!(now[0].build.deployable, "{:?}", now[0].build);
    assert_eq!(store.counts("web").s3_calls, 4 + 1 + 1);

    // A folder removed from the bucket leaves the listing.
    for file in ["template.yaml", "parameters.json"] {
        h.s3()
            .delete_object()
            .bucket(&h.moto.bucket)
            .key(format!(
                "{}web/web-master-1/{file}",
                h.state.catalog().artifacts.prefix()
            ))
            .send()
            .await
            .unwrap();
    }
    let now = store.relist("web", Duration::ZERO).await.unwrap();
    assert_eq!(now.len(), 31);
    assert!(now.iter().all(|f| f.build.id != "web-master-1"));
    assert_eq!(store.counts("web").full_listings, 1);
}

/// `GET /api/v1/ready` of a replica (the load balancer's check), its answer and status.
async fn ready_of(state: &deployer::state::AppState) -> (StatusCode, serde_json::Value) {
    let request = axum::http::Request::get("/api/v1/ready")
        .body(axum::body::Body::empty())
        .unwrap();
    common::answer(state, request).await
}

/// The replica's ready report, once it says 200 (at most 30 s).
async fn once_ready(state: &deployer::state::AppState) -> serde_json::Value {
    let started = std::time::Instant::now();
    loop {
        let (status, report) = ready_of(state).await;
        if status == StatusCode::OK {
            return report;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "never ready: {report}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A second deployer over the harness's bucket (a new replica, as a self-deploy starts),
/// reaching S3 through its own fault proxy.
async fn replica_behind(
    h: &Harness,
    proxy: &common::proxy::FaultProxy,
) -> deployer::state::AppState {
    // Its own store: what it is ready for is the bucket's listing, not the record.
    let config = common::config_via(&proxy.url, &h.moto, &h.dir.path().join("replica.sqlite"));
    let aws = deployer::aws::AwsClients::connect(&config, Some(common::static_credentials())).await;
    deployer::state(config, aws).await.unwrap()
}

/// A new replica takes people only once its first sweep has listed every project: while S3 is
/// slow, `/api/v1/ready` answers 503 `warming_up` (`/health` already 200: it is alive); then 200
/// `ready`, and a builds page waits for no listing — S3 is not asked again. The load balancer
/// of the self-deploy template checks `ready`, so no one's first page after a deploy waits.
#[tokio::test]
async fn a_new_replica_is_ready_once_its_first_sweep_has_listed_every_project() {
    let h = Harness::start().await;
    h.put_build("web", "web-master-1").await;
    h.put_build("web", "web-master-2").await;
    let proxy = common::proxy::FaultProxy::start(&h.moto.endpoint).await;
    // Every listing of this replica's takes 700 ms (S3 on a bad day, or 10,000 builds).
    proxy.inject(
        "ListObjectsV2",
        common::proxy::Fault::SlowAnswer(std::time::Duration::from_millis(700)),
        1_000,
    );
    let replica = replica_behind(&h, &proxy).await;
    let (status, report) = ready_of(&replica).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{report}");
    assert_eq!(report["ready"], false);
    assert_eq!(report["status"], "warming_up");

    let report = once_ready(&replica).await;
    assert_eq!(report["status"], "ready", "{report}");
    // The configured projects (web, web-api) and the bucket's folder `web` (the same project).
    assert_eq!(report["projects"], 2, "{report}");
    assert_eq!(report["listed"], 2, "{report}");
    assert_eq!(report["failed"], serde_json::json!([]), "{report}");
    assert!(report["warm_up_ms"].as_u64().unwrap() >= 700, "{report}");

    let listings = proxy.forwarded("ListObjectsV2");
    let asked = std::time::Instant::now();
    let builds = replica.catalog().builds("web", None, None).await.unwrap();
    let ids: Vec<&str> = builds.iter().map(|b| b.id.as_str()).collect();
    assert_eq!(ids, ["web-master-2", "web-master-1"]);
    assert!(
        asked.elapsed() < std::time::Duration::from_millis(700),
        "the first page did not wait for a listing: {:?}",
        asked.elapsed()
    );
    assert_eq!(
        proxy.forwarded("ListObjectsV2"),
        listings,
        "the first page listed nothing"
    );
}

/// A replica whose bucket answers only errors still becomes ready (it is no worse than the
/// others, and holding it back would only have it replaced again and again); the report names
/// the projects whose listing failed.
#[tokio::test]
async fn a_replica_whose_listings_fail_is_ready_and_names_them() {
    let h = Harness::start().await;
    h.put_build("web", "web-master-1").await;
    let proxy = common::proxy::FaultProxy::start(&h.moto.endpoint).await;
    proxy.inject("ListObjectsV2", common::proxy::Fault::Unavailable, 1_000);
    let replica = replica_behind(&h, &proxy).await;
    let report = once_ready(&replica).await;
    assert_eq!(report["status"], "ready", "{report}");
    assert_eq!(
        report["failed"],
        serde_json::json!(["web", "web-api"]),
        "{report}"
    );
}
