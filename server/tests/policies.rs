//! Least privilege, proven from the code: every AWS operation the deployer calls is allowed by the
//! role it calls it as (`infra/`), and the roles allow nothing else.
//!
//! The operations are read from the source at test time, not listed here: every call
//! `.<operation>()` in `server/src` whose name is an operation of an AWS SDK the server depends on
//! (the SDK's own list: the `src/operation/` modules of the crate `cargo metadata` resolves), in a
//! file that names that SDK (`aws_sdk_<service>`; a file naming none counts for every SDK with
//! that operation). Test code (`#[cfg(test)]` modules, `tests.rs`), comments and strings are
//! skipped. A new SDK call without a policy fails here, and so does a policy right no code uses.
//!
//! Whose rights: every SDK client of the deployer acts as an environment's `deployer` role
//! (`infra/deployer-access.yaml`, `DeployerRole`); the base credentials (the replicas' instance
//! role, `infra/deployer.yaml`, `InstanceRole`) only assume those roles (`AssumeRoleProvider`),
//! and run the image's boot script (`infra/packer/deployer-boot`, its `aws <service> <command>`
//! lines).
//!
//! Resources: each action is checked on the ARNs it acts on here ([`deployer_resources`]): a
//! policy scoped to the wrong bucket, queue or role fails as a missing action does.
//!
//! `tests/least_privilege.rs` runs the deployer against an emulator enforcing the same policies.

mod iam;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use iam::{Context, Template, action_matches, allows, glob, granted_actions, strings};
use serde_json::{Value as Json, json};
use serde_yaml::Value as Yaml;

// The sample accounts and names the policies are resolved with.
const ACCOUNT: &str = "111111111111";
const GBL_ACCOUNT: &str = "444444444444";
const REGION: &str = "eu-west-1";
const BUCKET: &str = "acme-build-artifacts";

/// Actions that accept no resource but `*`, per the AWS Service Authorization Reference
/// (<https://docs.aws.amazon.com/service-authorization/latest/reference/list_awscloudformation.html>,
/// <https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html>: their
/// "Resource types" column is empty). Only these may stand in a statement with `Resource: "*"`.
const ONLY_EVERY_RESOURCE: [&str; 5] = [
    "cloudformation:ListExports",
    "cloudformation:ListImports",
    "cloudformation:ListStacks",
    "cloudformation:ValidateTemplate",
    "ec2:DescribeImages",
];

/// CloudFormation actions whose resource is a stack (resource type `stack` in the reference).
const STACK_ACTIONS: [&str; 23] = [
    "CancelUpdateStack",
    "ContinueUpdateRollback",
    "CreateChangeSet",
    "CreateStack",
    "DeleteChangeSet",
    "DeleteStack",
    "DescribeChangeSet",
    "DescribeStackEvents",
    "DescribeStackResource",
    "DescribeStackResources",
    "DescribeStacks",
    "DetectStackDrift",
    "ExecuteChangeSet",
    "GetStackPolicy",
    "GetTemplate",
    // Called with a stack (the NoEcho keys of a deployed template) and with a template body;
    // the reference gives `stack` as its resource type.
    "GetTemplateSummary",
    "ListChangeSets",
    "ListStackResources",
    "RollbackStack",
    "SetStackPolicy",
    "SignalResource",
    "TagResource",
    "UpdateStack",
];

/// The IAM action that authorizes an SDK operation: its name, but where AWS authorizes an
/// operation as another action (the S3 and SQS references: ListObjectsV2 is `s3:ListBucket`,
/// HeadObject `s3:GetObject`, a batch call its single call's action).
fn iam_action(service: &str, operation: &str) -> String {
    let action = match (service, operation) {
        ("s3", "ListObjectsV2" | "ListObjects" | "HeadBucket") => "ListBucket",
        ("s3", "ListObjectVersions") => "ListBucketVersions",
        ("s3", "HeadObject") => "GetObject",
        ("s3", "ListMultipartUploads") => "ListBucketMultipartUploads",
        ("s3", "CreateMultipartUpload" | "UploadPart" | "CompleteMultipartUpload") => "PutObject",
        ("sqs", "DeleteMessageBatch") => "DeleteMessage",
        ("sqs", "SendMessageBatch") => "SendMessage",
        ("sqs", "ChangeMessageVisibilityBatch") => "ChangeMessageVisibility",
        _ => operation,
    };
    format!("{service}:{action}")
}

/// The resources a deployer-role action acts on, as ARNs in the sample account.
fn deployer_resources(action: &str) -> Option<Vec<String>> {
    let stack = format!(
        "arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/DEV-WEB/0b8a2c50-1d2e-11f0-9c3a-0a1b2c3d4e5f"
    );
    let queue = |name: &str| format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}");
    let (service, name) = action.split_once(':')?;
    Some(match (service, name) {
        _ if ONLY_EVERY_RESOURCE.contains(&action) => vec!["*".to_owned()],
        ("cloudformation", name) if STACK_ACTIONS.contains(&name) => vec![stack],
        // A build's files (the deployer reads them; CloudFormation reads a TemplateURL with the
        // caller's rights).
        ("s3", "GetObject") => vec![format!(
            "arn:aws:s3:::{BUCKET}/builds/web/web-master-7/template.yaml"
        )],
        ("s3", "ListBucket") => vec![format!("arn:aws:s3:::{BUCKET}")],
        // Both queues the deployer reads: the bucket's notifications (artifacts.notifications_
        // queue_url, made by deployer.yaml) and the account's stack events (deployer-access.yaml).
        (
            "sqs",
            "ReceiveMessage" | "DeleteMessage" | "ChangeMessageVisibility" | "GetQueueAttributes",
        ) => {
            vec![
                queue("deployer-artifacts-events"),
                queue("deployer-stack-events"),
            ]
        }
        // The role CloudFormation changes stacks with (environments[].cloudformation_role_arn).
        ("iam", "PassRole") => vec![format!(
            "arn:aws:iam::{ACCOUNT}:role/deployer-cloudformation"
        )],
        _ => return None,
    })
}

fn environment_roles() -> Vec<String> {
    vec![
        format!("arn:aws:iam::{ACCOUNT}:role/deployer"),
        format!("arn:aws:iam::{GBL_ACCOUNT}:role/deployer"),
    ]
}

/// The resources an instance-role action acts on.
fn instance_resources(action: &str, ctx: &Context) -> Option<Vec<String>> {
    let (a, r) = (GBL_ACCOUNT, REGION);
    Some(match action.to_lowercase().as_str() {
        "sts:assumerole" => environment_roles(),
        "ssm:getparameter" => vec![format!("arn:aws:ssm:{r}:{a}:parameter/deployer/config")],
        "rds:describedbinstances" => vec![format!("arn:aws:rds:{r}:{a}:db:database")],
        "secretsmanager:getsecretvalue" => {
            vec![format!(
                "arn:aws:secretsmanager:{r}:{a}:secret:rds!db-0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b-Ab12Cd"
            )]
        }
        "cloudformation:signalresource" => vec![ctx.stack_id()],
        _ => return None,
    })
}

fn deployer_role() -> Vec<Json> {
    let ctx = Context::new(ACCOUNT, REGION, "deployer-access")
        .param(
            "DeployerInstanceRoleArn",
            format!("arn:aws:iam::{GBL_ACCOUNT}:role/GBL-DEPLOYER-InstanceRole-1A2B3C"),
        )
        .param("ArtifactsBucketName", BUCKET);
    Template::load("deployer-access.yaml").role_policies("DeployerRole", &ctx)
}

fn instance_context() -> Context {
    Context::new(GBL_ACCOUNT, REGION, "GBL-DEPLOYER")
        .param("EnvironmentRoleArns", json!(environment_roles()))
}

fn instance_role() -> Vec<Json> {
    Template::load("deployer.yaml").role_policies("InstanceRole", &instance_context())
}

// ---- what the code calls ----

/// One place in the code that needs an IAM action.
#[derive(Clone, Debug)]
struct Need {
    action: String,
    at: String,
}

/// An SDK crate of the server: its IAM service prefix and its operations (snake_case name →
/// the operation's own name).
struct Sdk {
    crate_name: String,
    service: String,
    operations: BTreeMap<String, String>,
}

fn server_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The AWS SDKs the server depends on, with the operations each defines, from the crates cargo
/// resolved for this build.
fn sdks() -> Vec<Sdk> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let manifest = server_dir().join("../Cargo.toml");
    let out = std::process::Command::new(&cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--offline",
            "--manifest-path",
        ])
        .arg(&manifest)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cargo} metadata: {e}"));
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Json = serde_json::from_slice(&out.stdout).unwrap();
    let packages: BTreeMap<&str, &Json> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p))
        .collect();
    let server = meta["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| packages[n["id"].as_str().unwrap()]["name"] == "deployer")
        .expect("the deployer package in cargo metadata");
    let mut found = Vec::new();
    for dep in server["deps"].as_array().unwrap() {
        let package = packages[dep["pkg"].as_str().unwrap()];
        let name = package["name"].as_str().unwrap();
        let Some(suffix) = name.strip_prefix("aws-sdk-") else {
            continue;
        };
        let src = Path::new(package["manifest_path"].as_str().unwrap())
            .parent()
            .unwrap()
            .join("src/operation");
        let mut operations = BTreeMap::new();
        for entry in std::fs::read_dir(&src).unwrap_or_else(|e| panic!("{}: {e}", src.display())) {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let snake = path.file_stem().unwrap().to_str().unwrap().to_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            // `pub struct ListObjectsV2;`: the operation's own name (snake_case does not say
            // where AWS puts capitals: DescribeDBInstances).
            let Some(pascal) = text
                .lines()
                .find_map(|l| l.strip_prefix("pub struct ")?.strip_suffix(';'))
            else {
                continue;
            };
            operations.insert(snake, pascal.to_owned());
        }
        assert!(
            !operations.is_empty(),
            "no operations found in {}",
            src.display()
        );
        found.push(Sdk {
            crate_name: format!("aws_sdk_{}", suffix.replace('-', "_")),
            service: iam_prefix(suffix).to_owned(),
            operations,
        });
    }
    assert!(
        found.len() >= 4,
        "the server's AWS SDKs were not found: {}",
        found.len()
    );
    found
}

/// The IAM service prefix of an SDK crate (`aws-sdk-<suffix>`).
fn iam_prefix(suffix: &str) -> &str {
    match suffix {
        "cloudwatchlogs" => "logs",
        "elasticloadbalancingv2" => "elasticloadbalancing",
        "secretsmanager" | "cloudformation" | "s3" | "sqs" | "sns" | "ec2" | "sts" | "ssm"
        | "iam" => suffix,
        other => {
            panic!("which IAM service prefix is aws-sdk-{other}? (tests/policies.rs, iam_prefix)")
        }
    }
}

/// The source with comments and the insides of string and char literals blanked (newlines
/// kept, so lines still count), and `#[cfg(test)] mod … { … }` blocks removed.
fn code_only(src: &str) -> String {
    let b: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
        } else if c == 'r'
            && (next == Some('"') || next == Some('#'))
            && !ident_char(b.get(i.wrapping_sub(1)).copied())
        {
            // A raw string: r"…", r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            out.push('"');
            j += 1;
            let closing: String = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            let closing: Vec<char> = closing.chars().collect();
            while j < b.len() && b[j..].iter().take(closing.len()).ne(closing.iter()) {
                out.push(blank(b[j]));
                j += 1;
            }
            out.push('"');
            i = j + closing.len();
        } else if c == '"' {
            out.push('"');
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < b.len() {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
            out.push('"');
            i += 1;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{1F600}'), or a lifetime ('a), left as is.
            let end = if next == Some('\\') {
                (i + 2..b.len().min(i + 12)).find(|&j| b[j] == '\'')
            } else {
                (b.get(i + 2) == Some(&'\'')).then_some(i + 2)
            };
            match end {
                Some(end) => {
                    out.push_str(&" ".repeat(end - i + 1));
                    i = end + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    drop_test_modules(&out)
}

fn ident_char(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Blanks `#[cfg(test)] mod name { … }` (braces matched; the code has no strings left).
fn drop_test_modules(code: &str) -> String {
    let mut out: Vec<char> = code.chars().collect();
    let text: String = out.iter().collect();
    let mut from = 0;
    while let Some(at) = text[from..].find("#[cfg(test)]") {
        let start = from + at;
        let rest = text[start + "#[cfg(test)]".len()..].trim_start();
        if rest.starts_with("mod ")
            && let Some(open) = text[start..].find('{')
            && !text[start..start + open].contains(';')
        {
            let mut depth = 0;
            let chars: Vec<(usize, char)> = text.char_indices().collect();
            let begin = chars.iter().position(|(i, _)| *i == start).unwrap();
            for (k, (_, ch)) in chars.iter().enumerate().skip(begin) {
                match ch {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            for slot in out.iter_mut().take(k + 1).skip(begin) {
                                if *slot != '\n' {
                                    *slot = ' ';
                                }
                            }
                            break;
                        }
                    }
                    _ => {}
                }
            }
        }
        from = start + 1;
    }
    out.into_iter().collect()
}

/// Every `.<name>()` call in the code, with its line.
fn no_argument_calls(code: &str) -> Vec<(String, usize)> {
    let b: Vec<char> = code.chars().collect();
    let mut calls = Vec::new();
    let mut line = 1;
    let skip_ws = |mut j: usize| {
        while j < b.len() && b[j].is_whitespace() {
            j += 1;
        }
        j
    };
    for i in 0..b.len() {
        if b[i] == '\n' {
            line += 1;
        }
        if b[i] != '.' || b.get(i + 1) == Some(&'.') || (i > 0 && b[i - 1] == '.') {
            continue;
        }
        let start = skip_ws(i + 1);
        let mut end = start;
        while end < b.len()
            && (b[end].is_ascii_lowercase() || b[end].is_ascii_digit() || b[end] == '_')
        {
            end += 1;
        }
        if end == start || !b[start].is_ascii_lowercase() {
            continue;
        }
        let open = skip_ws(end);
        if b.get(open) != Some(&'(') {
            continue;
        }
        let close = skip_ws(open + 1);
        if b.get(close) == Some(&')') {
            let extra = b[i..start].iter().filter(|c| **c == '\n').count();
            calls.push((b[start..end].iter().collect(), line + extra));
        }
    }
    calls
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// Every IAM action the deployer's SDK clients need, with where: each SDK call, and what
/// CloudFormation authorizes as the caller when a call carries a role, tags or a template URL.
fn deployer_needs() -> Vec<Need> {
    let sdks = sdks();
    let src = server_dir().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut needs = Vec::new();
    for file in files {
        // `mod tests;` files under `#[cfg(test)]` (the crate's convention): test code.
        if file.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let code = code_only(&std::fs::read_to_string(&file).unwrap());
        let shown = file
            .strip_prefix(server_dir())
            .unwrap()
            .display()
            .to_string();
        let named: Vec<&Sdk> = sdks
            .iter()
            .filter(|s| code.contains(&format!("{}::", s.crate_name)))
            .collect();
        let mut file_services = BTreeSet::new();
        for (name, line) in no_argument_calls(&code) {
            let having: Vec<&Sdk> = sdks
                .iter()
                .filter(|s| s.operations.contains_key(&name))
                .collect();
            if having.is_empty() {
                continue;
            }
            let narrowed: Vec<&Sdk> = having
                .iter()
                .copied()
                .filter(|s| named.iter().any(|n| n.crate_name == s.crate_name))
                .collect();
            let services = if narrowed.is_empty() {
                having
            } else {
                narrowed
            };
            for sdk in services {
                file_services.insert(sdk.service.clone());
                needs.push(Need {
                    action: iam_action(&sdk.service, &sdk.operations[&name]),
                    at: format!("{shown}:{line} .{name}()"),
                });
            }
        }
        // What a CloudFormation call authorizes as its caller besides its own action.
        if file_services.contains("cloudformation") {
            for (setter, action, why) in [
                (
                    "role_arn",
                    "iam:PassRole",
                    "RoleARN: the caller passes the role",
                ),
                (
                    "tags",
                    "cloudformation:TagResource",
                    "Tags on a stack change are authorized as TagResource",
                ),
                (
                    "template_url",
                    "s3:GetObject",
                    "CloudFormation reads a TemplateURL with the caller's rights",
                ),
            ] {
                for (name, line) in setter_calls(&code, setter) {
                    needs.push(Need {
                        action: action.to_owned(),
                        at: format!("{shown}:{line} .{name}(…) ({why})"),
                    });
                }
            }
        }
    }
    needs
}

/// Calls of `.<setter>(…)` or `.set_<setter>(…)` with arguments, with their lines.
fn setter_calls(code: &str, setter: &str) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    for (n, text) in code.lines().enumerate() {
        for name in [setter.to_owned(), format!("set_{setter}")] {
            if let Some(at) = text.find(&format!(".{name}(")) {
                let after = &text[at + name.len() + 2..];
                if !after.trim_start().starts_with(')') {
                    found.push((name, n + 1));
                }
            }
        }
    }
    found
}

/// The actions the base credentials need: AssumeRole (the SDK's AssumeRoleProvider), and every
/// `aws <service> <command>` of the image's boot script.
fn instance_needs() -> Vec<Need> {
    let mut needs = Vec::new();
    let mut files = Vec::new();
    rust_files(&server_dir().join("src"), &mut files);
    for file in files {
        let code = code_only(&std::fs::read_to_string(&file).unwrap());
        for (n, line) in code.lines().enumerate() {
            if line.contains("AssumeRoleProvider::") {
                needs.push(Need {
                    action: "sts:AssumeRole".to_owned(),
                    at: format!(
                        "{}:{} AssumeRoleProvider (environments[].role_arn)",
                        file.strip_prefix(server_dir()).unwrap().display(),
                        n + 1
                    ),
                });
            }
        }
    }
    let boot = iam::infra_path("packer/deployer-boot");
    let script = std::fs::read_to_string(&boot).unwrap();
    for (n, line) in script.lines().enumerate() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line
            .split(|c: char| c.is_whitespace() || c == '(' || c == ';' || c == '|' || c == '`')
            .filter(|w| !w.is_empty())
            .collect();
        for window in words.windows(3) {
            let [aws, service, command] = window else {
                continue;
            };
            let is_service = |w: &str| {
                w.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            };
            let is_command =
                |w: &str| w.contains('-') && w.chars().all(|c| c.is_ascii_lowercase() || c == '-');
            if *aws == "aws" && is_service(service) && is_command(command) {
                let pascal: String = command
                    .split('-')
                    .map(|part| {
                        let mut chars = part.chars();
                        chars
                            .next()
                            .map(|c| c.to_ascii_uppercase())
                            .into_iter()
                            .chain(chars)
                            .collect::<String>()
                    })
                    .collect();
                let service = if *service == "s3api" { "s3" } else { service };
                needs.push(Need {
                    action: format!("{service}:{pascal}"),
                    at: format!(
                        "infra/packer/deployer-boot:{} aws {service} {command}",
                        n + 1
                    ),
                });
            }
        }
    }
    needs
}

fn check(
    needs: &[Need],
    policies: &[Json],
    resources: impl Fn(&str) -> Option<Vec<String>>,
    whose: &str,
) -> Vec<String> {
    let mut problems = Vec::new();
    for need in needs {
        let Some(arns) = resources(&need.action) else {
            problems.push(format!(
                "{} needs {}: say which resource it acts on (tests/policies.rs; the Service \
                 Authorization Reference gives its resource type)",
                need.at, need.action
            ));
            continue;
        };
        for arn in arns {
            match allows(policies, &need.action, &arn) {
                Ok(sid) => println!(
                    "{:<40} on {arn:<95} by {whose} {sid:<34} ({})",
                    need.action, need.at
                ),
                Err(why) => problems.push(format!(
                    "{} needs {} on {arn}: {why} in {whose}",
                    need.at, need.action
                )),
            }
        }
    }
    problems
}

#[test]
fn every_aws_call_of_the_deployer_is_allowed_by_the_deployer_role() {
    let needs = deployer_needs();
    // The scan finds what it must (or it finds nothing and proves nothing).
    let actions: BTreeSet<&str> = needs.iter().map(|n| n.action.as_str()).collect();
    for known in [
        "cloudformation:CreateStack",
        "cloudformation:CreateChangeSet",
        "cloudformation:DescribeStacks",
        "s3:ListBucket",
        "s3:GetObject",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "ec2:DescribeImages",
        "iam:PassRole",
    ] {
        assert!(
            actions.contains(known),
            "the scan of server/src found no {known}: {actions:?}"
        );
    }
    let problems = check(
        &needs,
        &deployer_role(),
        deployer_resources,
        "deployer-access.yaml DeployerRole",
    );
    assert!(
        problems.is_empty(),
        "calls the policies do not allow:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_instance_role_allows_assuming_the_environment_roles_and_the_boot_scripts_calls() {
    let needs = instance_needs();
    assert!(
        needs.iter().any(|n| n.action == "sts:AssumeRole"),
        "{needs:?}"
    );
    assert!(
        needs.len() >= 4,
        "the boot script's aws commands were not found: {needs:?}"
    );
    let ctx = instance_context();
    let problems = check(
        &needs,
        &instance_role(),
        |a| instance_resources(a, &ctx),
        "deployer.yaml InstanceRole",
    );
    assert!(
        problems.is_empty(),
        "calls the policies do not allow:\n{}",
        problems.join("\n")
    );
    // And only those roles: not every role of an account, not another account's admin.
    for other in [
        format!("arn:aws:iam::{ACCOUNT}:role/OrganizationAccountAccessRole"),
        format!("arn:aws:iam::{ACCOUNT}:role/deployer-cloudformation"),
    ] {
        assert!(
            allows(&instance_role(), "sts:AssumeRole", &other).is_err(),
            "{other}"
        );
    }
}

/// Least privilege the other way round: every right the roles grant is one the code uses.
#[test]
fn the_roles_grant_nothing_the_code_does_not_use() {
    let mut problems = Vec::new();
    for (whose, granted, needs) in [
        (
            "deployer-access.yaml DeployerRole",
            granted_actions(&deployer_role()),
            deployer_needs(),
        ),
        (
            "deployer.yaml InstanceRole",
            granted_actions(&instance_role()),
            instance_needs(),
        ),
    ] {
        for action in granted {
            if action.contains('*') || action.contains('?') {
                problems.push(format!(
                    "{whose} grants {action}: name the actions the code calls"
                ));
            } else if !needs.iter().any(|n| action_matches(&action, &n.action)) {
                problems.push(format!("{whose} grants {action}, which no code calls"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "rights nobody uses:\n{}",
        problems.join("\n")
    );
}

#[test]
fn no_statement_grants_every_action_or_every_resource_where_a_narrower_one_exists() {
    let mut problems = Vec::new();
    for file in ["deployer-access.yaml", "deployer.yaml"] {
        let template = Template::load(file);
        for (at, statement) in template.statements() {
            let list = |key: &str| -> Vec<String> {
                match statement.get(key) {
                    Some(Yaml::String(s)) => vec![s.clone()],
                    Some(Yaml::Sequence(items)) => items
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect(),
                    _ => Vec::new(),
                }
            };
            let actions = list("Action");
            for action in &actions {
                if action == "*" || action.ends_with(":*") {
                    problems.push(format!("{at}: Action {action}"));
                }
            }
            if statement.get("Effect").and_then(Yaml::as_str) == Some("Allow")
                && list("Resource").iter().any(|r| r == "*")
            {
                for action in &actions {
                    if !ONLY_EVERY_RESOURCE
                        .iter()
                        .any(|a| a.eq_ignore_ascii_case(action))
                    {
                        problems.push(format!(
                            "{at}: {action} on Resource \"*\", and it takes resource-level permissions"
                        ));
                    }
                }
            }
        }
        // AdministratorAccess only for the role CloudFormation acts with, which only
        // CloudFormation can assume (infra/README.md: the CloudFormation role).
        for role in template.resources_of_type("AWS::IAM::Role") {
            if !template
                .managed_policy_arns(&role)
                .iter()
                .any(|a| a.contains("AdministratorAccess"))
            {
                continue;
            }
            let trust = template.trust_policy(&role).cloned().unwrap_or(Yaml::Null);
            let principals: Vec<String> = trust
                .get("Statement")
                .and_then(Yaml::as_sequence)
                .into_iter()
                .flatten()
                .map(|s| format!("{:?}", s.get("Principal")))
                .collect();
            if principals.len() != 1
                || !principals[0].contains("cloudformation.amazonaws.com")
                || principals[0].contains("AWS")
            {
                problems.push(format!(
                    "{file}: {role} has AdministratorAccess and trusts {principals:?}"
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "statements wider than they need be:\n{}",
        problems.join("\n")
    );
}

/// The checker itself: wildcards, resolution of the templates' short tags.
#[test]
fn the_checker_matches_as_iam_does_and_reads_the_templates_tags() {
    assert!(glob("arn:aws:s3:::b/*", "arn:aws:s3:::b/x/y"));
    assert!(!glob("arn:aws:s3:::b/*", "arn:aws:s3:::b"));
    assert!(glob("a?c", "abc") && glob("*", "") && !glob("a", "ab"));
    assert!(action_matches(
        "cloudformation:Describe*",
        "cloudformation:describestacks"
    ));
    assert!(!action_matches(
        "cloudformation:Describe*",
        "cloudformation:ListStacks"
    ));

    let policies = deployer_role();
    let sids: Vec<String> = iam::resolved_statements(&policies)
        .iter()
        .map(|s| s["Sid"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        sids.contains(&"HandTheWorkToCloudFormation".to_owned()),
        "{sids:?}"
    );
    // !GetAtt CloudFormationRole.Arn and !Sub …${ArtifactsBucketName}… resolved.
    let text = serde_json::to_string(&policies).unwrap();
    assert!(
        text.contains(&format!(
            "arn:aws:iam::{ACCOUNT}:role/deployer-cloudformation"
        )),
        "{text}"
    );
    assert!(text.contains(&format!("arn:aws:s3:::{BUCKET}/*")), "{text}");
    assert!(!text.contains("${"), "{text}");
    // A policy without the right denies it.
    assert!(
        allows(
            &policies,
            "s3:PutObject",
            &format!("arn:aws:s3:::{BUCKET}/x")
        )
        .is_err()
    );
    assert!(allows(&policies, "s3:GetObject", "arn:aws:s3:::another-bucket/x").is_err());

    // The scan of calls skips comments, strings and test modules.
    let code = code_only(
        "let a = s3.get_object(); // .delete_bucket()\nlet b = \".put_object()\";\n#[cfg(test)]\nmod tests { fn f() { x.delete_stack(); } }\nlet c = r#\".list_buckets()\"#;\n",
    );
    let calls: Vec<String> = no_argument_calls(&code)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(calls, ["get_object"], "{code}");
    let strings_seen = strings(&json!(["a", ["b"]]));
    assert_eq!(strings_seen, ["a", "b"]);
}
