//! The shape of the code, checked: requests flow one way (api → service → deploy → aws / store →
//! live), so no two modules depend on each other, and nothing below the API knows about HTTP.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module of `src/` → the top-level modules it names as `crate::<module>`.
fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
    fn walk(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, files);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let top = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if top == "lib" || top == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (i, _) in text.match_indices("crate::") {
            let name: String = text[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            // Items of the crate root (`crate::MAX_BODY_BYTES`) are not modules.
            if !name.is_empty() && name != top && name.chars().all(|c| !c.is_ascii_uppercase()) {
                deps.entry(top.clone()).or_default().insert(name);
            }
        }
    }
    deps
}

#[test]
fn no_two_modules_depend_on_each_other() {
    let deps = dependencies();
    fn reach(
        deps: &BTreeMap<String, BTreeSet<String>>,
        from: &str,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        for next in deps.get(from).into_iter().flatten() {
            if path.contains(next) {
                let start = path.iter().position(|p| p == next).unwrap();
                let mut cycle = path[start..].to_vec();
                cycle.push(next.clone());
                return Some(cycle);
            }
            path.push(next.clone());
            if let Some(cycle) = reach(deps, next, path) {
                return Some(cycle);
            }
            path.pop();
        }
        None
    }
    for module in deps.keys() {
        let cycle = reach(&deps, module, &mut vec![module.clone()]);
        assert!(
            cycle.is_none(),
            "a dependency cycle: {}",
            cycle.unwrap().join(" → ")
        );
    }
    // And the direction: the layers below never reach up to the ways in.
    for low in [
        "service",
        "deploy",
        "catalog",
        "store",
        "aws",
        "artifacts",
        "live",
    ] {
        for high in ["api", "state"] {
            assert!(
                !deps.get(low).is_some_and(|d| d.contains(high)),
                "{low} uses {high}"
            );
        }
    }
    let uses = |a: &str, b: &str| deps.get(a).is_some_and(|d| d.contains(b));
    assert!(
        !uses("deploy", "service"),
        "the engine calls up into the services"
    );
    assert!(!uses("store", "deploy"), "the store knows the engine");
    assert!(!uses("aws", "deploy"), "the AWS seam knows the engine");
}

#[test]
fn nothing_below_the_api_knows_about_http() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for below in ["service", "deploy", "store", "aws", "artifacts"] {
        let mut stack = vec![src.join(below)];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let text = std::fs::read_to_string(&path).unwrap();
                    assert!(
                        !text.contains("axum::"),
                        "{} uses axum: HTTP belongs in api/",
                        path.display()
                    );
                }
            }
        }
    }
}

/// The packages a crate's manifest depends on (normal dependencies; renamed ones by package).
fn manifest_dependencies(crate_dir: &str) -> BTreeSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(crate_dir)
        .join("Cargo.toml");
    let manifest: toml::Table = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .parse()
        .unwrap();
    manifest
        .get("dependencies")
        .and_then(|d| d.as_table())
        .map(|deps| {
            deps.iter()
                .map(|(name, spec)| {
                    spec.get("package")
                        .and_then(|p| p.as_str())
                        .unwrap_or(name)
                        .to_owned()
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_wire_types_depend_on_no_framework_and_the_cli_not_on_the_page() {
    let frameworks = |deps: &BTreeSet<String>| -> Vec<String> {
        deps.iter()
            .filter(|d| {
                d.starts_with("leptos")
                    || d.starts_with("axum")
                    || d.starts_with("aws-")
                    || d.starts_with("tokio")
                    || d.starts_with("sqlx")
                    || d.as_str() == "app"
            })
            .cloned()
            .collect()
    };
    let wire = manifest_dependencies("crates/wire");
    assert!(
        frameworks(&wire).is_empty(),
        "crates/wire is serde only, but depends on {:?}",
        frameworks(&wire)
    );
    let cli = manifest_dependencies("cli");
    assert!(
        !cli.iter().any(|d| d.starts_with("leptos") || d == "app"),
        "deployctl must not depend on the page: {cli:?}"
    );
    assert!(
        manifest_dependencies("app").contains("deployer-wire"),
        "the page speaks the wire types"
    );
}
