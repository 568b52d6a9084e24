//! Set and forget: a project is a folder of the artifacts bucket (the config only overrides),
//! and the config file applies while the deployer runs — a valid change at once, a broken one
//! refused as a whole with the old one serving, nothing lost by a reload during a deployment.

mod common;

use std::time::Duration;

use common::{Harness, read_until};
use deployer::config::StoreLocation;
use deployer::reload::Reload;
use serde_json::{Value, json};

/// Waits (up to 20 s) until `check` holds for `GET /api/v1/projects`.
async fn projects_until(h: &Harness, what: &str, check: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let started = std::time::Instant::now();
    loop {
        let (status, body) = h.get("/api/v1/projects").await;
        assert_eq!(status, 200, "{body}");
        let list = body.as_array().unwrap().clone();
        if check(&list) {
            return list;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{what}: never seen in {list:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn find<'a>(list: &'a [Value], name: &str) -> Option<&'a Value> {
    list.iter().find(|p| p["name"] == name)
}

/// The harness's config as a file the deployer watches (`extra` appended), its store the
/// harness's own (SQLite or the scratch PostgreSQL database).
fn write_config(h: &Harness, extra: &str) -> std::path::PathBuf {
    let path = h.dir.path().join("deployer.toml");
    let mut text = common::config_toml(&h.moto, &h.dir.path().join("deployer.sqlite"));
    if let StoreLocation::Postgres(url) = &h.store {
        let line = text
            .lines()
            .find(|l| l.starts_with("store = "))
            .unwrap()
            .to_owned();
        text = text.replace(&line, &format!("store = {url:?}"));
    }
    text.push_str(extra);
    std::fs::write(&path, text).unwrap();
    path
}

async fn last_reload_until(h: &Harness, check: impl Fn(&Reload) -> bool) -> Reload {
    let reloader = h.state.services.reloader();
    for _ in 0..200 {
        if let Some(last) = reloader.last()
            && check(&last)
        {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no such reload; last: {:?}", reloader.last());
}

#[tokio::test]
async fn a_new_project_folder_appears_in_the_api_and_in_open_pages_without_configuration() {
    let h = Harness::start().await;
    let base = h.serve().await;
    let events = h.events(&base).await;
    let before = projects_until(&h, "the configured projects", |l| find(l, "web").is_some()).await;
    assert!(find(&before, "shop").is_none());

    // The build server writes a new project's first build: nothing else.
    h.put_build("shop", "shop-master-1").await;
    h.put_build("Legacy_Reports", "Legacy_Reports-master-1")
        .await;
    let list = projects_until(&h, "shop and Legacy_Reports", |l| {
        find(l, "shop").is_some() && find(l, "Legacy_Reports").is_some()
    })
    .await;
    let shop = find(&list, "shop").unwrap();
    assert_eq!(shop["discovered"], true);
    assert_eq!(shop["title"], "shop");
    assert_eq!(shop["environments"], json!(["DEV", "STG", "PRD", "GBL"]));
    assert!(shop.get("problem").is_none(), "{shop}");
    let web = find(&list, "web").unwrap();
    assert_eq!(
        web["discovered"], false,
        "configured projects come first, as configured"
    );
    assert_eq!(list[0]["name"], "web");

    // A folder that cannot be a project is listed with the reason, never dropped.
    let legacy = find(&list, "Legacy_Reports").expect("listed");
    let problem = legacy["problem"].as_str().unwrap();
    assert!(problem.contains("cannot be a project"), "{problem}");
    assert!(
        problem.contains('_') && problem.contains('L'),
        "names what is wrong: {problem}"
    );
    let (status, body) = h.builds("Legacy_Reports", "").await;
    assert_eq!(status, 404, "{body}");

    // Every open page hears it.
    let heard = read_until(events, |e| {
        e.event == "projects" && e.data.as_array().is_some_and(|l| find(l, "shop").is_some())
    })
    .await;
    assert!(heard.iter().any(|e| e.event == "projects"), "{heard:?}");

    // And it deploys like any other, to its default stack.
    let (status, builds) = h.builds("shop", "").await;
    assert_eq!(status, 200);
    assert_eq!(builds[0]["id"], "shop-master-1");
    let done = h.deploy("shop", "DEV", "shop-master-1").await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["stack_name"], "DEV-SHOP");
    let card = h.card("shop", "DEV").await;
    assert_eq!(card["exists"], true, "{card}");
}

#[tokio::test]
async fn an_override_and_a_hidden_folder_apply_when_the_file_changes() {
    let h = Harness::start().await;
    let path = write_config(&h, "");
    h.state.services.reloader().watch_file(path.clone());
    h.put_build("shop", "shop-master-1").await;
    h.put_build("scratch", "scratch-master-1").await;
    projects_until(&h, "shop and scratch", |l| {
        find(l, "shop").is_some() && find(l, "scratch").is_some()
    })
    .await;

    // Only overrides: a title and fewer environments for one, the other hidden.
    write_config(
        &h,
        "[[projects]]\nname = \"shop\"\ntitle = \"Shop\"\nenvironments = [\"DEV\", \"STG\"]\n\
         [[projects]]\nname = \"scratch\"\nhidden = true\n",
    );
    let applied = last_reload_until(&h, |r| matches!(r, Reload::Applied { .. })).await;
    let Reload::Applied {
        changes, trigger, ..
    } = applied
    else {
        unreachable!()
    };
    assert_eq!(trigger, "the config file changed");
    assert!(
        changes.iter().any(|c| c == "projects +shop")
            && changes.iter().any(|c| c == "hidden folders +scratch"),
        "{changes:?}"
    );
    let list = projects_until(&h, "the override", |l| {
        find(l, "shop").is_some_and(|p| p["title"] == "Shop")
    })
    .await;
    let shop = find(&list, "shop").unwrap();
    assert_eq!(shop["environments"], json!(["DEV", "STG"]));
    assert_eq!(shop["discovered"], false);
    assert!(find(&list, "scratch").is_none(), "hidden: {list:#?}");
    let (status, _) = h.builds("scratch", "").await;
    assert_eq!(status, 404);

    let (_, audit) = h.audit("action=config_reloaded").await;
    let entry = &audit[0];
    assert_eq!(entry["actor"], "config", "{audit}");
    assert!(
        entry["detail"].as_str().unwrap().contains("projects +shop"),
        "{entry}"
    );

    // The running config says where each value came from.
    let (status, running) = h.get("/api/v1/config").await;
    assert_eq!(status, 200, "{running}");
    assert_eq!(running["file"], path.display().to_string());
    assert_eq!(running["last_reload"]["outcome"], "applied");
    let config = &running["config"];
    assert_eq!(
        config["poll_interval_ms"],
        json!({"value": 50, "source": "file"})
    );
    assert_eq!(config["auth"]["session_hours"]["source"], "default");
    assert_eq!(
        config["artifacts"]["bucket"]["value"],
        h.moto.bucket.as_str()
    );
    let projects = config["projects"].as_array().unwrap();
    let shop = projects
        .iter()
        .find(|p| p["name"]["value"] == "shop")
        .unwrap();
    assert_eq!(shop["title"], json!({"value": "Shop", "source": "file"}));
    assert_eq!(
        shop["stacks"]["DEV"],
        json!({"value": "DEV-SHOP", "source": "default"})
    );
    let web_api = projects
        .iter()
        .find(|p| p["name"]["value"] == "web-api")
        .unwrap();
    assert_eq!(web_api["title"]["source"], "default");
    let bootstrap = &config["auth"]["bootstrap_token"];
    assert_eq!(bootstrap["source"], "environment");
    assert_ne!(bootstrap["value"], common::BOOTSTRAP_TOKEN);
    assert!(
        !running.to_string().contains(common::BOOTSTRAP_TOKEN),
        "secrets are redacted"
    );

    // An environment changed: its clients are connected again, the others kept; its stacks
    // read as before.
    let overrides = "[[projects]]\nname = \"shop\"\ntitle = \"Shop\"\nenvironments = [\"DEV\", \"STG\"]\n\
         [[projects]]\nname = \"scratch\"\nhidden = true\n";
    let path = write_config(&h, overrides);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replacen("name = \"PRD\"\n", "name = \"PRD\"\nprotected = true\n", 1),
    )
    .unwrap();
    last_reload_until(
        &h,
        |r| matches!(r, Reload::Applied { changes, .. } if changes == &["environments ~PRD"]),
    )
    .await;
    let (_, environments) = h.get("/api/v1/environments").await;
    let prd = environments
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "PRD")
        .unwrap();
    assert_eq!(prd["protected"], true, "{environments}");
    let (status, cards) = h.stacks("web").await;
    assert_eq!(status, 200, "{cards}");
    assert_eq!(cards.as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn a_broken_config_is_refused_whole_and_the_running_one_keeps_serving() {
    let h = Harness::start().await;
    let path = write_config(&h, "");
    let reloader = h.state.services.reloader().clone();
    reloader.watch_file(path.clone());

    // Half of this change is good (a title), half is not (an unknown environment): none of it
    // applies.
    write_config(
        &h,
        "[[projects]]\nname = \"shop\"\ntitle = \"Shop\"\n[[projects]]\nname = \"broken\"\nenvironments = [\"QA\"]\n",
    );
    let refused = last_reload_until(&h, |r| matches!(r, Reload::Refused { .. })).await;
    let Reload::Refused { reason, .. } = refused else {
        unreachable!()
    };
    assert!(
        reason.contains("projects[3].environments") && reason.contains("QA"),
        "{reason}"
    );
    assert!(
        h.state.catalog().config().project("shop").is_none(),
        "nothing applied"
    );
    let (status, list) = h.get("/api/v1/projects").await;
    assert_eq!(status, 200);
    assert!(find(list.as_array().unwrap(), "web").is_some());

    let (_, audit) = h.audit("action=config_refused").await;
    let detail = audit[0]["detail"].as_str().unwrap().to_owned();
    assert!(
        detail.contains("QA") && detail.contains("running config stays"),
        "{detail}"
    );
    let (_, running) = h.get("/api/v1/config").await;
    assert_eq!(running["last_reload"]["outcome"], "refused");
    assert!(
        running["last_reload"]["reason"]
            .as_str()
            .unwrap()
            .contains("QA")
    );
    // Admins see it on the page's first answer (the overview).
    let (status, overview) = h.server_fn("get_overview", json!({})).await;
    assert_eq!(status, 200, "{overview}");
    assert!(overview["config_refused"].as_str().unwrap().contains("QA"));

    // Not TOML at all: refused the same way.
    std::fs::write(&path, "listen = [").unwrap();
    last_reload_until(&h, |r| matches!(r, Reload::Refused { reason, .. } if reason.contains("TOML") || reason.contains("expected") || reason.contains("invalid"))).await;

    // What only a restart can change is refused by name; asked for directly (the API's reload,
    // as SIGHUP does), the answer is 409 with the reason.
    write_config(&h, "");
    std::fs::write(
        &path,
        std::fs::read_to_string(&path).unwrap().replace(
            &format!("bucket = \"{}\"", h.moto.bucket),
            "bucket = \"elsewhere\"",
        ),
    )
    .unwrap();
    let (status, body) = h.post("/api/v1/config/reload", json!({})).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or(&body.to_string())
            .contains("restart"),
        "{body}"
    );

    // A good file again applies, and a viewer may not see or reload the config.
    write_config(&h, "[[projects]]\nname = \"shop\"\ntitle = \"Shop\"\n");
    let (status, body) = h.post("/api/v1/config/reload", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert!(h.state.catalog().config().project("shop").is_some());
    let viewer = h.new_token("someone", "viewer").await;
    let get = axum::http::Request::get("/api/v1/config")
        .body(axum::body::Body::empty())
        .unwrap();
    let (status, _) = h.with_token(&viewer, get).await;
    assert_eq!(status, 403);
    let post = axum::http::Request::post("/api/v1/config/reload")
        .body(axum::body::Body::empty())
        .unwrap();
    let (status, _) = h.with_token(&viewer, post).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn a_reload_during_a_deployment_loses_nothing() {
    let h = Harness::start().await;
    let path = write_config(&h, "");
    let reloader = h.state.services.reloader().clone();
    reloader.watch_file(path.clone());
    let base = h.serve().await;
    let events = h.events(&base).await;

    h.put_build_of("web", "web-master-7", common::GATED_TEMPLATE)
        .await;
    let id = h.start_deployment("web-master-7").await;
    let stack = h.stack_appears("DEV", "DEV-WEB").await;
    let stack_id = stack.stack_id().unwrap().to_owned();

    // Removing the environment the deployment runs in is refused, naming the deployment.
    let text = std::fs::read_to_string(&path).unwrap();
    let without_dev = remove_environment(&text, "DEV").replace(
        "environments = [\"DEV\", \"STG\", \"PRD\"]",
        "environments = [\"STG\", \"PRD\"]",
    );
    let without_dev = without_dev
        .replace(
            "[[projects]]\nname = \"web-api\"\nenvironments = [\"DEV\"]\n",
            "[[projects]]\nname = \"web-api\"\nenvironments = [\"STG\"]\n",
        )
        .replace("deploy = [\"DEV\", \"STG\"]", "deploy = [\"STG\"]");
    std::fs::write(&path, &without_dev).unwrap();
    let refused = last_reload_until(&h, |r| matches!(r, Reload::Refused { .. })).await;
    let Reload::Refused { reason, .. } = refused else {
        unreachable!()
    };
    assert!(reason.contains("DEV") && reason.contains(&id), "{reason}");

    // A change it can make applies while the deployment runs: a new project and poll interval.
    std::fs::write(
        &path,
        format!(
            "{}[[projects]]\nname = \"shop\"\n",
            text.replace("poll_interval_ms = 50", "poll_interval_ms = 80")
        ),
    )
    .unwrap();
    last_reload_until(&h, |r| matches!(r, Reload::Applied { .. })).await;
    assert_eq!(h.state.engine().poll_interval(), Duration::from_millis(80));

    common::release_gate(&h.moto.endpoint, h.moto.account("DEV"), &stack_id).await;
    let done = h.wait(&id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    // The stream opened before the reload carried the deployment to its end.
    let heard = read_until(events, |e| {
        e.event == "deployment" && e.data["deployment"]["status"] == "succeeded"
    })
    .await;
    assert!(
        heard.iter().any(|e| e.event == "projects"),
        "the new project was announced"
    );
    assert!(
        heard
            .iter()
            .any(|e| e.event == "deployment" && e.data["deployment"]["status"] == "succeeded"),
        "{heard:?}"
    );
}

/// The config text without one `[[environments]]` table.
fn remove_environment(text: &str, name: &str) -> String {
    let start = text
        .find(&format!("[[environments]]\nname = \"{name}\""))
        .unwrap();
    let end = text[start + 1..]
        .find("[[")
        .map_or(text.len(), |i| start + 1 + i);
    format!("{}{}", &text[..start], &text[end..])
}
