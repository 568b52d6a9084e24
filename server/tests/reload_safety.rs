//! Reloading the config safely: a file being written is applied only once it has settled (never
//! half-written), and a change that would pull a project or its stack from under a running
//! deployment is refused, the running config staying.

mod common;

use std::io::Write;
use std::time::Duration;

use common::Harness;
use deployer::config::StoreLocation;
use deployer::reload::Reload;
use serde_json::json;

/// The harness's config as the text of a file (`extra` appended), its store the harness's own.
fn config_text(h: &Harness, extra: &str) -> String {
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
    text
}

/// Writes the harness's config file and has the deployer watch it.
fn watched_config(h: &Harness) -> std::path::PathBuf {
    let path = h.dir.path().join("deployer.toml");
    std::fs::write(&path, config_text(h, "")).unwrap();
    h.state.services.reloader().watch_file(path.clone());
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
async fn a_config_file_written_slowly_in_place_is_applied_once_and_whole() {
    let h = Harness::start().await;
    let path = watched_config(&h);

    // An editor (or a copy over a slow disk) writes the new file in place, a piece every 200 ms:
    // for seconds the file is a prefix of the new one, some prefixes parsing (fewer projects,
    // no roles), some not.
    let text = config_text(&h, "[[projects]]\nname = \"shop\"\ntitle = \"Shop\"\n");
    let mut file = std::fs::File::create(&path).unwrap();
    for piece in text.as_bytes().chunks(text.len().div_ceil(12)) {
        file.write_all(piece).unwrap();
        file.flush().unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(file);

    let applied = last_reload_until(&h, |r| matches!(r, Reload::Applied { .. })).await;
    let Reload::Applied { changes, .. } = applied else {
        unreachable!()
    };
    assert_eq!(changes, ["projects +shop"]);
    // Nothing of the pieces was applied, or refused, before or after.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, reloaded) = h.audit("action=config_reloaded").await;
    let (_, refused) = h.audit("action=config_refused").await;
    assert_eq!(
        (
            reloaded.as_array().unwrap().len(),
            refused.as_array().unwrap().len()
        ),
        (1, 0),
        "only the whole file was applied: {reloaded:#} {refused:#}"
    );
}

#[tokio::test]
async fn a_reload_that_hides_a_project_or_renames_its_stack_under_a_deployment_is_refused() {
    let h = Harness::start().await;
    let path = watched_config(&h);
    h.put_build_of("web", "web-master-7", common::GATED_TEMPLATE)
        .await;
    let id = h.start_deployment("web-master-7").await;
    let stack = h.stack_appears("DEV", "DEV-WEB").await;

    let base = config_text(&h, "");
    let web = "[[projects]]\nname = \"web\"\ntitle = \"Web\"\nenvironments = [\"DEV\", \"STG\", \"PRD\"]\n";
    assert!(base.contains(web), "{base}");
    let renamed = base.replace(
        web,
        &format!("{web}[projects.stacks]\nDEV = \"DEV-WEB-NEW\"\n"),
    );
    let hidden = base.replace(web, "[[projects]]\nname = \"web\"\nhidden = true\n");
    let without_dev = base.replace(
        web,
        "[[projects]]\nname = \"web\"\nenvironments = [\"STG\", \"PRD\"]\n",
    );
    for (what, text, says) in [
        ("its stack renamed", &renamed, "DEV-WEB-NEW"),
        ("hidden", &hidden, "web"),
        ("no longer in DEV", &without_dev, "web"),
    ] {
        std::fs::write(&path, text).unwrap();
        let (status, body) = h.post("/api/v1/config/reload", json!({})).await;
        assert_eq!(status, 409, "web {what}: {body}");
        let Some(Reload::Refused { reason, .. }) = h.state.services.reloader().last() else {
            panic!(
                "web {what}: not refused: {:?}",
                h.state.services.reloader().last()
            );
        };
        assert!(
            reason.contains(&id) && reason.contains("DEV-WEB") && reason.contains(says),
            "web {what}: {reason}"
        );
        assert_eq!(
            h.state.catalog().stack_name("web", "DEV").unwrap(),
            "DEV-WEB",
            "web {what}: the running config stays"
        );
    }
    let (_, refused) = h.audit("action=config_refused").await;
    assert!(
        refused.as_array().unwrap().len() >= 3,
        "each refusal is audited: {refused:#}"
    );

    // Once the deployment has ended, the same change applies.
    tokio::time::sleep(Duration::from_millis(500)).await;
    common::release_gate(
        &h.moto.endpoint,
        h.moto.account("DEV"),
        stack.stack_id().unwrap(),
    )
    .await;
    let done = h.wait(&id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    std::fs::write(&path, &renamed).unwrap();
    let (status, body) = h.post("/api/v1/config/reload", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        h.state.catalog().stack_name("web", "DEV").unwrap(),
        "DEV-WEB-NEW"
    );
}
