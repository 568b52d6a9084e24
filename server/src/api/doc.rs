//! `GET /api/v1/openapi.json`: the REST API described (OpenAPI 3.1), made from the code — one
//! entry per route and method next to the route table ([`operations`]), the bodies' and answers'
//! schemas derived from the Rust types they are (`schemars`, JSON Schema 2020-12, which OpenAPI
//! 3.1 speaks), the error shape from `ErrorResponse`, the event names from `LiveEvent`. The test
//! `tests/openapi.rs` walks the router with it both ways (every documented method answers, every
//! other one is 405; every route is documented), so the document cannot drift from the routes.

use app::auth::{CreatedToken, Me, NewToken, Token};
use app::deployment::{
    CancelRequest, Deployment, DeploymentDetail, DeploymentUpdate, LiveEvent, StartDeployment,
};
use app::error::ErrorResponse;
use app::jenkins::{BuildsChanged, JenkinsBuilds};
use app::model::{
    Build, ContinueRollback, Environment, PreviewChange, PreviewRequest, Project, PromoteRequest,
    Promotion, RollbackVerdict, StackCard, WebhooksView,
};
use app::pause::{AuditEntry, PauseRequest, PauseStatus};
use schemars::generate::{SchemaGenerator, SchemaSettings};
use schemars::{JsonSchema, Schema};
use serde_json::{Map, Value, json};

/// A schema of one type, as a reference into `components/schemas`.
type SchemaOf = fn(&mut SchemaGenerator) -> Schema;

fn of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// One method of one path.
pub struct Operation {
    pub method: &'static str,
    /// Under `/api/v1`, as the route table spells it.
    pub path: &'static str,
    pub id: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    /// Optional query parameters: name and meaning.
    pub query: &'static [(&'static str, &'static str)],
    /// The rules the handler parses parameters by, where it says more than "a string".
    pub rules: &'static [Rule],
    /// The JSON body, and whether it may be left out.
    pub body: Option<(SchemaOf, bool)>,
    /// The success status and its JSON (none: described apart, e.g. the event stream).
    pub ok: (u16, Option<SchemaOf>),
    /// The error statuses besides 401 (every call without credentials) and 500.
    pub errors: &'static [u16],
    /// Reachable without credentials.
    pub open: bool,
}

const fn op(method: &'static str, path: &'static str, id: &'static str) -> Operation {
    Operation {
        method,
        path,
        id,
        tag: "",
        summary: "",
        query: &[],
        rules: &[],
        body: None,
        ok: (200, None),
        errors: &[],
        open: false,
    }
}

impl Operation {
    const fn tag(mut self, tag: &'static str, summary: &'static str) -> Self {
        self.tag = tag;
        self.summary = summary;
        self
    }
    const fn query(mut self, query: &'static [(&'static str, &'static str)]) -> Self {
        self.query = query;
        self
    }
    const fn rules(mut self, rules: &'static [Rule]) -> Self {
        self.rules = rules;
        self
    }
    const fn body(mut self, body: SchemaOf, optional: bool) -> Self {
        self.body = Some((body, optional));
        self
    }
    const fn ok(mut self, status: u16, answer: SchemaOf) -> Self {
        self.ok = (status, Some(answer));
        self
    }
    const fn errors(mut self, errors: &'static [u16]) -> Self {
        self.errors = errors;
        self
    }
}

const LIMIT: (&str, &str) = ("limit", "At most this many (1-1000, default 50)");

/// A parameter (path or query) whose value the handler parses as an id of `crate::ids`, and
/// whether it must be given.
pub struct Rule {
    pub name: &'static str,
    pub required: bool,
    pub id: Id,
}

/// The ids whose rules (`crate::ids`: length and characters) the document states.
#[derive(Clone, Copy)]
pub enum Id {
    Project,
    Environment,
    Build,
}

impl Id {
    /// The id's rule as JSON Schema: what `ProjectName::parse` & co. accept, so that a client
    /// generated from the document (or a fuzzer) sends what is not refused with a 400.
    pub fn schema(self) -> Value {
        use crate::ids::{BuildName, EnvName, ProjectName};
        // Letters, digits, '-', '_' and '.'.
        const NAME: &str = "^[A-Za-z0-9._-]+$";
        // One folder name: no whitespace, control character, '/' or backslash.
        const FOLDER: &str = r"^[^\s\x00-\x1f\x7f-\x9f/\\]+$";
        let (max, pattern) = match self {
            Id::Project => (ProjectName::MAX, NAME),
            Id::Environment => (EnvName::MAX, NAME),
            Id::Build => (BuildName::MAX, FOLDER),
        };
        json!({"type": "string", "minLength": 1, "maxLength": max, "pattern": pattern})
    }
}

const PROJECT: Rule = Rule {
    name: "project",
    required: true,
    id: Id::Project,
};
const ENVIRONMENT: Rule = Rule {
    name: "environment",
    required: true,
    id: Id::Environment,
};

/// `PreviewRequest`, its fields with the rules the handler parses them by.
fn preview_request(generator: &mut SchemaGenerator) -> Schema {
    let mut schema = PreviewRequest::json_schema(generator);
    schema.insert("required".into(), json!(["environment", "build"]));
    schema.insert(
        "properties".into(),
        json!({"environment": Id::Environment.schema(), "build": Id::Build.schema()}),
    );
    schema
}

/// Every REST operation (paths under `/api/v1`), in the route table's order.
pub fn operations() -> Vec<Operation> {
    vec![
        Operation {
            open: true,
            ..op("get", "/health", "health")
                .tag(
                    "meta",
                    "For load balancers: answers while the deployer serves",
                )
                .ok(200, of::<Health>)
        },
        Operation {
            open: true,
            ..op("get", "/ready", "ready")
                .tag(
                    "meta",
                    "For load balancers: 200 once the first sweep has listed every project's build folders (at most a minute after the start), 503 with the same report while it lists",
                )
                .ok(200, of::<crate::readiness::ReadyReport>)
        },
        Operation {
            open: true,
            ..op("get", "/openapi.json", "openapi")
                .tag("meta", "This document")
                .ok(200, of::<Value>)
        },
        op("get", "/environments", "environments")
            .tag("catalog", "The environments, in promotion order")
            .ok(200, of::<Vec<Environment>>),
        op("get", "/projects", "projects")
            .tag("catalog", "The projects")
            .ok(200, of::<Vec<Project>>),
        op("get", "/projects/{project}/builds", "builds")
            .tag(
                "catalog",
                "A project's builds (deploy configs), newest first",
            )
            .query(&[("branch", "Only this branch's builds"), LIMIT])
            .ok(200, of::<Vec<Build>>)
            .errors(&[400, 404, 502]),
        op("get", "/projects/{project}/stacks", "stacks")
            .tag("catalog", "A project's stack in each of its environments")
            .ok(200, of::<Vec<StackCard>>)
            .errors(&[400, 404, 502]),
        op("post", "/projects/{project}/promote", "promote")
            .tag(
                "deployments",
                "Deploy to an environment the build the environment before it runs",
            )
            .body(of::<PromoteRequest>, false)
            .ok(202, of::<Deployment>)
            .errors(&[400, 403, 404, 409, 422, 423, 502]),
        op("get", "/projects/{project}/rollback", "rollback_verdict")
            .tag(
                "deployments",
                "The verdict on deploying an older build (by default the one before the current)",
            )
            .query(&[
                ("environment", "The environment (required)"),
                ("build", "The build to check"),
            ])
            .rules(&[
                PROJECT,
                ENVIRONMENT,
                Rule {
                    name: "build",
                    required: false,
                    id: Id::Build,
                },
            ])
            .ok(200, of::<RollbackVerdict>)
            .errors(&[400, 403, 404, 409, 502]),
        op("post", "/projects/{project}/preview", "preview")
            .tag(
                "deployments",
                "What deploying a build would change, without deploying: a change set made in \
                 the environment's account and deleted. Needs the right to deploy there; a few \
                 per person at a time and a minute (429 past that)",
            )
            .rules(&[PROJECT])
            .body(preview_request, false)
            .ok(200, of::<Vec<PreviewChange>>)
            .errors(&[400, 403, 404, 409, 422, 429, 502]),
        op("get", "/projects/{project}/preview", "preview_by_query")
            .tag(
                "deployments",
                "As POST …/preview, for API tokens only (a session is refused: a cross-site \
                 link would send its cookie with a GET)",
            )
            .query(&[
                ("environment", "The environment (required)"),
                ("build", "The build (required)"),
            ])
            .rules(&[
                PROJECT,
                ENVIRONMENT,
                Rule {
                    name: "build",
                    required: true,
                    id: Id::Build,
                },
            ])
            .ok(200, of::<Vec<PreviewChange>>)
            .errors(&[400, 403, 404, 409, 422, 429, 502]),
        op(
            "post",
            "/projects/{project}/stacks/{environment}/continue-rollback",
            "continue_rollback",
        )
        .tag(
            "deployments",
            "ContinueUpdateRollback on a stack in UPDATE_ROLLBACK_FAILED",
        )
        .body(of::<ContinueRollback>, true)
        .ok(202, of::<StackCard>)
        .errors(&[400, 403, 404, 409, 502]),
        op("get", "/promotion", "promotion")
            .tag("deployments", "Every project across its environments")
            .ok(200, of::<Vec<Promotion>>)
            .errors(&[502]),
        op("get", "/deployments", "deployments")
            .tag("deployments", "Deployments, newest first")
            .query(&[
                ("project", "Only this project's"),
                ("environment", "Only this environment's"),
                LIMIT,
            ])
            .ok(200, of::<Vec<Deployment>>)
            .errors(&[400, 404]),
        op("post", "/deployments", "deploy")
            .tag("deployments", "Deploy a build to an environment")
            .body(of::<StartDeployment>, false)
            .ok(202, of::<Deployment>)
            .errors(&[400, 403, 404, 409, 422, 423, 502]),
        op("get", "/deployments/{id}", "deployment")
            .tag(
                "deployments",
                "One deployment with its steps, change set and stack events",
            )
            .ok(200, of::<DeploymentDetail>)
            .errors(&[400, 404]),
        op("post", "/deployments/{id}/cancel", "cancel")
            .tag("deployments", "Cancel a deployment")
            .body(of::<CancelRequest>, true)
            .ok(202, of::<Deployment>)
            .errors(&[400, 403, 404, 409, 502]),
        op("post", "/deployments/{id}/approve", "approve")
            .tag(
                "deployments",
                "Approve a deployment waiting in a protected environment",
            )
            .ok(202, of::<Deployment>)
            .errors(&[400, 403, 404, 409, 423]),
        op("post", "/deployments/{id}/discard", "discard")
            .tag(
                "deployments",
                "Discard a deployment waiting in a protected environment",
            )
            .ok(202, of::<Deployment>)
            .errors(&[400, 403, 404, 409]),
        op("get", "/events", "events")
            .tag(
                "live",
                "The live event stream (server-sent events); resume with Last-Event-ID",
            )
            .errors(&[503]),
        op("get", "/pause", "pause_status")
            .tag(
                "pause",
                "Whether deployments are paused, where, by whom and why",
            )
            .ok(200, of::<PauseStatus>),
        op("put", "/pause", "pause")
            .tag("pause", "Pause deployments (every environment, or one)")
            .body(of::<PauseRequest>, false)
            .ok(200, of::<PauseStatus>)
            .errors(&[400, 403, 404]),
        op("delete", "/pause", "resume")
            .tag("pause", "Lift the pause (all of it, or one environment's)")
            .query(&[("environment", "Only this environment's pause")])
            .ok(200, of::<PauseStatus>)
            .errors(&[400, 403, 404]),
        op("get", "/audit", "audit")
            .tag("audit", "The audit trail, newest first")
            .query(&[
                ("environment", "Only this environment's"),
                ("project", "Only this project's"),
                ("action", "Only this action's"),
                ("actor", "Only this actor's"),
                (
                    "before",
                    "Entries older than this id (the last of the previous page)",
                ),
                LIMIT,
            ])
            .ok(200, of::<Vec<AuditEntry>>)
            .errors(&[400]),
        op("get", "/jenkins/builds", "jenkins_builds")
            .tag(
                "catalog",
                "The Jenkins builds in progress and just finished",
            )
            .ok(200, of::<JenkinsBuilds>),
        op("get", "/me", "me")
            .tag("access", "Who is asking, and what they may do")
            .ok(200, of::<Me>),
        op("get", "/tokens", "tokens")
            .tag("access", "API tokens (admins), never their secrets")
            .ok(200, of::<Vec<Token>>)
            .errors(&[403]),
        op("post", "/tokens", "create_token")
            .tag(
                "access",
                "Make an API token (admins); its secret is answered once",
            )
            .body(of::<NewToken>, false)
            .ok(201, of::<CreatedToken>)
            .errors(&[400, 403, 409]),
        op("delete", "/tokens/{id}", "revoke_token")
            .tag("access", "Revoke an API token (admins), at once")
            .ok(200, of::<Token>)
            .errors(&[400, 403, 404]),
        op("delete", "/sessions", "end_sessions")
            .tag(
                "access",
                "End every session of a person (admins): they log in again, with the groups \
                 the identity provider gives them now",
            )
            .query(&[(
                "user",
                "The person's login name, or the identity provider's subject (required)",
            )])
            .ok(200, of::<app::auth::SessionsEnded>)
            .errors(&[400, 403]),
        op("get", "/webhooks", "webhooks")
            .tag(
                "notifications",
                "The webhooks and their newest deliveries (admins)",
            )
            .query(&[LIMIT])
            .ok(200, of::<WebhooksView>)
            .errors(&[400, 403]),
        op("get", "/config", "runningConfig")
            .tag(
                "config",
                "The running config, secrets redacted, each value with its source (file, default, environment, discovered), and the last reload (admins)",
            )
            .ok(200, of::<crate::service::running_config::RunningConfig>)
            .errors(&[403]),
        op("post", "/config/reload", "reloadConfig")
            .tag(
                "config",
                "Reads the config file again and applies it (as SIGHUP or a change of the file does); 409 with the reason when refused, the running config staying (admins)",
            )
            .ok(200, of::<serde_json::Value>)
            .errors(&[403, 409]),
    ]
}

/// `GET /api/v1/health`'s answer.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct Health {
    /// Always `ok`.
    status: String,
}

/// What one event of the stream carries (its `data:` line, JSON).
#[derive(JsonSchema)]
#[allow(dead_code)]
struct Snapshot {
    /// The active deployments, as the store has them.
    active: Vec<Deployment>,
}

#[derive(JsonSchema)]
#[allow(dead_code)]
struct Resync {
    /// How many events this subscriber missed.
    missed: u64,
}

/// Each event name of `GET /api/v1/events` and the schema of its data.
fn events(generator: &mut SchemaGenerator) -> Map<String, Value> {
    let mut map = Map::new();
    for name in LiveEvent::NAMES {
        let schema = match name {
            "deployment" => of::<DeploymentUpdate>(generator),
            "stack" => of::<StackCard>(generator),
            "pause" => of::<PauseStatus>(generator),
            "snapshot" => of::<Snapshot>(generator),
            "jenkins" => of::<JenkinsBuilds>(generator),
            "builds" => of::<BuildsChanged>(generator),
            _ => Schema::default(),
        };
        map.insert(name.to_owned(), schema.to_value());
    }
    map.insert("resync".to_owned(), of::<Resync>(generator).to_value());
    map
}

fn error_words(status: u16) -> &'static str {
    match status {
        400 => "Not a valid request: a malformed name, body or query (`bad_request`)",
        401 => "No session or API token, or one that expired or was revoked (`unauthorized`)",
        403 => "Without the right this needs; the message names it (`forbidden`)",
        404 => "A well-formed name that names nothing (`not_found`)",
        409 => {
            "The stack has an active deployment (`conflict`, its id in `error.deployment_id`), \
             the state changed, or a confirmation is needed (`confirmation_required`)"
        }
        422 => "The build cannot be deployed; the message says why (`refused`)",
        423 => {
            "Deployments are paused there (`paused`: `error.reason`, `error.actor`, \
             `error.since`, `error.environment`)"
        }
        429 => {
            "Asked too often or too much at once by one person; the message says when to try again (`too_many_requests`)"
        }
        500 => "A bug in the deployer (`internal`)",
        502 => "AWS failed; the AWS error code is named (`aws_unavailable`)",
        503 => "At a limit (e.g. open event streams); try again shortly (`unavailable`)",
        _ => "An error",
    }
}

fn parameter_words(name: &str) -> &'static str {
    match name {
        "project" => "A project's name",
        "environment" => "An environment's name (DEV, STG, PRD, …)",
        "id" => "The id (a deployment's `d-…`, a token's `t-…`)",
        _ => "",
    }
}

/// The document.
pub fn document() -> Value {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas".into())
        .into_generator();
    let error = of::<ErrorResponse>(&mut generator).to_value();
    let mut paths = Map::new();
    for o in operations() {
        let full = format!("/api/v1{}", o.path);
        let mut parameters: Vec<Value> = o
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| {
                json!({"name": name, "in": "path", "required": true,
                       "description": parameter_words(name), "schema": {"type": "string"}})
            })
            .collect();
        parameters.extend(o.query.iter().map(|(name, words)| {
            json!({"name": name, "in": "query", "required": false, "description": words,
                   "schema": {"type": "string"}})
        }));
        for rule in o.rules {
            if let Some(p) = parameters.iter_mut().find(|p| p["name"] == rule.name) {
                p["required"] = json!(rule.required);
                p["schema"] = rule.id.schema();
            }
        }
        if o.id == "events" {
            parameters.push(
                json!({"name": "Last-Event-ID", "in": "header", "required": false,
                "description": "The last event's id: the stream resumes after it",
                "schema": {"type": "string"}}),
            );
        }
        let mut responses = Map::new();
        let ok = match (o.id, o.ok.1) {
            ("events", _) => json!({
                "description": "`text/event-stream`: each event has an `id:`, an `event:` name \
                    (listed with its data's schema in `x-events`) and a JSON `data:` line; \
                    keep-alive comments every 15 s",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
                "x-events": events(&mut generator),
            }),
            (_, Some(answer)) => json!({
                "description": "OK",
                "content": {"application/json": {"schema": answer(&mut generator).to_value()}},
            }),
            (_, None) => json!({"description": "OK"}),
        };
        responses.insert(o.ok.0.to_string(), ok);
        let mut statuses: Vec<u16> = o.errors.to_vec();
        if !o.open {
            statuses.push(401);
        }
        statuses.push(500);
        statuses.sort_unstable();
        statuses.dedup();
        for status in statuses {
            responses.insert(
                status.to_string(),
                json!({"description": error_words(status),
                       "content": {"application/json": {"schema": error.clone()}}}),
            );
        }
        let mut operation = json!({
            "operationId": o.id,
            "tags": [o.tag],
            "summary": o.summary,
            "parameters": parameters,
            "responses": responses,
        });
        if let Some((body, optional)) = o.body {
            operation["requestBody"] = json!({
                "required": !optional,
                "content": {"application/json": {"schema": body(&mut generator).to_value()}},
            });
        }
        if o.open {
            operation["security"] = json!([]);
        }
        let entry = paths
            .entry(full)
            .or_insert_with(|| Value::Object(Map::new()));
        entry[o.method] = operation;
    }
    let schemas: Map<String, Value> = generator.take_definitions(true).into_iter().collect();
    json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "The deployer",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Deploys CloudFormation stacks from build artifacts. Errors are \
                `{\"error\": {\"code\", \"message\", …}}` with the status their code means. \
                Calls need `Authorization: Bearer <API token>` (or the page's session cookie).",
        },
        "security": [{"bearer": []}, {"session": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "An API token (`dpl_…`)"},
                "session": {"type": "apiKey", "in": "cookie",
                            "name": crate::auth::SESSION_COOKIE},
            },
        },
    })
}
