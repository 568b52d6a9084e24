//! The OpenAPI document agrees with the router, both ways: every documented method of every path
//! answers (not 404 "no such endpoint", not 405), every other method is 405, every route of the
//! table is documented; every operation answers the error shape; the event stream's names are
//! `LiveEvent`'s; and the requests `deployctl` makes are documented ones.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::Harness;
use serde_json::Value;

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

async fn document(h: &Harness) -> Value {
    let (status, _, text) = h
        .anonymous(
            Request::get("/api/v1/openapi.json")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "open, like the health check: {text}"
    );
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn the_document_and_the_router_agree_both_ways() {
    let h = Harness::start().await;
    let doc = document(&h).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();

    // Every route of the table is documented, and nothing else is.
    let mut routes: Vec<String> = deployer::api::paths()
        .iter()
        .map(|p| format!("/api/v1{p}"))
        .collect();
    routes.sort();
    let mut documented: Vec<String> = paths.keys().cloned().collect();
    documented.sort();
    assert_eq!(routes, documented);

    for (path, item) in paths {
        let uri = path
            .replace("{project}", "web")
            .replace("{environment}", "DEV")
            .replace("{id}", "d-0");
        for method in METHODS {
            let (status, body) = if method == "get" && path == "/api/v1/events" {
                // An endless stream: its status only.
                (h.events_status("").await, Value::Null)
            } else {
                let request = Request::builder()
                    .method(Method::from_bytes(method.to_uppercase().as_bytes()).unwrap())
                    .uri(&uri)
                    .header("authorization", format!("Bearer {}", h.token))
                    .body(Body::empty())
                    .unwrap();
                let (status, _, text) = h.anonymous(request).await;
                (status, serde_json::from_str(&text).unwrap_or(Value::Null))
            };
            let documented = item.get(method).is_some();
            if documented {
                assert_ne!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {uri} is documented but not routed"
                );
                assert!(
                    !body.to_string().contains("no such API endpoint"),
                    "{method} {uri} is documented but not routed: {body}"
                );
                // What it answered is one of the statuses the document lists for it.
                let listed = item[method]["responses"]
                    .as_object()
                    .unwrap()
                    .contains_key(status.as_str());
                assert!(
                    listed,
                    "{method} {uri} answered {status}, which its description does not list: {body}"
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {uri} answers but is not documented: {body}"
                );
            }
        }
    }
}

#[tokio::test]
async fn every_error_is_the_error_shape_and_the_schemas_resolve() {
    let h = Harness::start().await;
    let doc = document(&h).await;
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let text = doc.to_string();
    // Every reference points at a schema the document has.
    for (i, _) in text.match_indices("\"$ref\":\"#/components/schemas/") {
        let rest = &text[i + 29..];
        let name = &rest[..rest.find('"').unwrap()];
        assert!(
            schemas.contains_key(name),
            "{name} is referenced, not defined"
        );
    }
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            let open = operation["security"] == serde_json::json!([]);
            assert_eq!(
                !open,
                responses.contains_key("401"),
                "{method} {path}: 401 unless open"
            );
            for (status, response) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorResponse",
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
    for needed in [
        "Deployment",
        "DeploymentDetail",
        "StackCard",
        "PauseStatus",
        "ErrorResponse",
    ] {
        assert!(schemas.contains_key(needed), "{needed}");
    }
    // The error shape: {"error": {"code", "message", …}}, with the codes the server answers.
    let error = &schemas["ErrorBody"];
    assert!(error["properties"]["code"].is_object(), "{error}");

    // The event stream: every event name the server sends, with its data's schema.
    let events = doc["paths"]["/api/v1/events"]["get"]["responses"]["200"]["x-events"]
        .as_object()
        .unwrap();
    let mut names: Vec<&str> = events.keys().map(String::as_str).collect();
    names.sort();
    let mut expected: Vec<&str> = app::deployment::LiveEvent::NAMES.to_vec();
    expected.push("resync");
    expected.sort();
    assert_eq!(names, expected);
}

#[tokio::test]
async fn the_requests_of_the_cli_are_documented_ones() {
    let h = Harness::start().await;
    let doc = document(&h).await;
    let paths = doc["paths"].as_object().unwrap();
    for (method, path) in deployctl::ENDPOINTS {
        let item = &paths[&format!("/api/v1{path}")];
        assert!(
            item.get(method.to_lowercase()).is_some(),
            "deployctl sends {method} {path}, which the API does not describe"
        );
    }
}

/// The parameter of an operation, by name.
fn parameter<'a>(operation: &'a Value, name: &str) -> &'a Value {
    operation["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no parameter {name}: {operation}"))
}

#[tokio::test]
async fn the_rollback_and_preview_parameters_say_what_the_handlers_accept() {
    use deployer::ids::{BuildName, EnvName, ProjectName};
    let h = Harness::start().await;
    let doc = document(&h).await;
    let rollback = &doc["paths"]["/api/v1/projects/{project}/rollback"]["get"];
    let by_query = &doc["paths"]["/api/v1/projects/{project}/preview"]["get"];
    let by_body = &doc["paths"]["/api/v1/projects/{project}/preview"]["post"];

    // What ids.rs parses, said as JSON Schema: length and characters.
    let name_rule = |max: usize| {
        serde_json::json!({"type": "string", "minLength": 1, "maxLength": max,
                           "pattern": "^[A-Za-z0-9._-]+$"})
    };
    let build_rule = serde_json::json!({"type": "string", "minLength": 1,
        "maxLength": BuildName::MAX, "pattern": "^[^\\s\\x00-\\x1f\\x7f-\\x9f/\\\\]+$"});
    for operation in [rollback, by_query, by_body] {
        let project = parameter(operation, "project");
        assert_eq!(project["required"], true);
        assert_eq!(
            project["schema"],
            name_rule(ProjectName::MAX),
            "{operation}"
        );
    }
    for (operation, build_required) in [(rollback, false), (by_query, true)] {
        let environment = parameter(operation, "environment");
        assert_eq!(environment["required"], true, "{operation}");
        assert_eq!(environment["schema"], name_rule(EnvName::MAX));
        let build = parameter(operation, "build");
        assert_eq!(build["required"], build_required, "{operation}");
        assert_eq!(build["schema"], build_rule);
    }
    let body = &by_body["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(by_body["requestBody"]["required"], true);
    assert_eq!(
        body["required"],
        serde_json::json!(["environment", "build"]),
        "{body}"
    );
    assert_eq!(body["properties"]["environment"], name_rule(EnvName::MAX));
    assert_eq!(body["properties"]["build"], build_rule);

    // Each handler answers 400 to values outside those rules, and takes the longest inside.
    let long = |n: usize| "a".repeat(n);
    let bad_request = [
        format!(
            "/projects/{}/rollback?environment=DEV",
            long(ProjectName::MAX + 1)
        ),
        "/projects/web/rollback".to_owned(),
        format!(
            "/projects/web/rollback?environment={}",
            long(EnvName::MAX + 1)
        ),
        "/projects/web/rollback?environment=D%20V".to_owned(),
        "/projects/web/rollback?environment=DEV&build=a%2Fb".to_owned(),
        format!(
            "/projects/web/rollback?environment=DEV&build={}",
            long(BuildName::MAX + 1)
        ),
        "/projects/web/preview?environment=DEV".to_owned(),
        "/projects/web/preview?environment=DEV&build=a%09b".to_owned(),
    ];
    for uri in bad_request {
        let (status, body) = h.get(&format!("/api/v1{uri}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
    }
    let within = [
        format!(
            "/projects/{}/rollback?environment=DEV",
            long(ProjectName::MAX)
        ),
        format!("/projects/web/rollback?environment={}", long(EnvName::MAX)),
        format!(
            "/projects/web/rollback?environment=DEV&build={}",
            long(BuildName::MAX)
        ),
    ];
    for uri in within {
        let (status, body) = h.get(&format!("/api/v1{uri}")).await;
        assert_ne!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
    }
}
