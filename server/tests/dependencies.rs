//! What is compiled in, read from the workspace's Cargo.lock: one TLS stack (rustls, one version)
//! under one HTTP stack (hyper 1) — not the AWS SDK's legacy client (hyper 0.14 with rustls 0.21)
//! beside it, nor OpenSSL — and no AWS SDK crate the deployer does not use.

use std::collections::BTreeMap;

/// Every package of the lock file: name → its versions.
fn locked() -> (BTreeMap<String, Vec<String>>, toml::Table) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock");
    let lock: toml::Table = toml::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{path} is not TOML: {}", e.message()));
    let mut packages: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for package in lock["package"].as_array().unwrap() {
        packages
            .entry(package["name"].as_str().unwrap().to_owned())
            .or_default()
            .push(package["version"].as_str().unwrap().to_owned());
    }
    (packages, lock)
}

#[test]
fn one_tls_stack_and_no_legacy_http_stack() {
    let (packages, _) = locked();
    let versions = |name: &str| packages.get(name).cloned().unwrap_or_default();
    for version in versions("hyper") {
        assert!(
            !version.starts_with("0."),
            "hyper {version} is compiled in (the AWS SDK's legacy client: its crates' default \
             `rustls` feature?); `cargo tree -i hyper@{version}` says who asks for it"
        );
    }
    for name in ["native-tls", "openssl", "openssl-sys", "hyper-tls"] {
        assert!(
            versions(name).is_empty(),
            "{name} is compiled in: `cargo tree -i {name}` says who asks for it"
        );
    }
    for name in ["rustls", "hyper-rustls", "tokio-rustls"] {
        let found = versions(name);
        assert!(found.len() <= 1, "{name} in versions {found:?}");
    }
    assert_eq!(
        versions("rustls").len(),
        1,
        "the AWS SDK and logins use rustls"
    );
}

#[test]
fn every_aws_sdk_crate_the_deployer_depends_on_is_used() {
    let (_, lock) = locked();
    let deployer = lock["package"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"].as_str() == Some("deployer"))
        .unwrap();
    let sdks: Vec<&str> = deployer["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d.as_str())
        .filter(|d| d.starts_with("aws-sdk-"))
        .collect();
    assert!(sdks.contains(&"aws-sdk-cloudformation"), "{sdks:?}");
    let mut code = String::new();
    read_rust(
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src")),
        &mut code,
    );
    for sdk in sdks {
        let name = sdk.split(' ').next().unwrap().replace('-', "_");
        assert!(
            code.contains(&format!("{name}::")),
            "the deployer depends on {sdk} but its code does not use it"
        );
    }
}

fn read_rust(dir: &std::path::Path, into: &mut String) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            read_rust(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
}
