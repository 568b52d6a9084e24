//! The IAM policies of `infra/`, read from the CloudFormation templates as they are written and
//! asked what they allow. Shared by `tests/policies.rs` (every AWS call the code makes is allowed,
//! and nothing else is) and `tests/least_privilege.rs` (the same policies, enforced by the
//! emulator while the deployer works).
//!
//! CloudFormation's short tags (`!Sub`, `!Ref`, `!GetAtt`) reach serde_yaml as tagged values;
//! [`Template::role_policies`] resolves them, and their long forms (`Fn::Sub`, …), with the
//! values a test gives ([`Context`]). What it cannot resolve it refuses by name, so that a new
//! construct in a template fails here rather than passing unread.
#![allow(dead_code)]

use std::collections::BTreeMap;

use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

/// A template of `infra/` (`deployer.yaml`, `deployer-access.yaml`).
pub struct Template {
    pub file: String,
    doc: Yaml,
}

/// The account, region and parameters a template is resolved with.
#[derive(Clone, Debug)]
pub struct Context {
    pub partition: String,
    pub account: String,
    pub region: String,
    pub stack_name: String,
    /// Parameter values (a `CommaDelimitedList` as a JSON array); a parameter not given here
    /// takes its template default.
    pub params: BTreeMap<String, Json>,
}

impl Context {
    pub fn new(account: &str, region: &str, stack_name: &str) -> Context {
        Context {
            partition: "aws".to_owned(),
            account: account.to_owned(),
            region: region.to_owned(),
            stack_name: stack_name.to_owned(),
            params: BTreeMap::new(),
        }
    }

    pub fn param(mut self, name: &str, value: impl Into<Json>) -> Context {
        self.params.insert(name.to_owned(), value.into());
        self
    }

    /// `AWS::StackId` (the stack's id is not known before it exists: a fixed one).
    pub fn stack_id(&self) -> String {
        format!(
            "arn:{}:cloudformation:{}:{}:stack/{}/00000000-0000-0000-0000-000000000000",
            self.partition, self.region, self.account, self.stack_name
        )
    }
}

/// The path of a file of `infra/`.
pub fn infra_path(file: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../infra")
        .join(file)
}

impl Template {
    pub fn load(file: &str) -> Template {
        let path = infra_path(file);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        Template::parse(file, &text)
    }

    pub fn parse(file: &str, text: &str) -> Template {
        let doc = serde_yaml::from_str(text).unwrap_or_else(|e| panic!("{file}: {e}"));
        Template {
            file: file.to_owned(),
            doc,
        }
    }

    fn resources(&self) -> &serde_yaml::Mapping {
        self.doc
            .get("Resources")
            .and_then(Yaml::as_mapping)
            .unwrap_or_else(|| panic!("{}: no Resources", self.file))
    }

    fn resource(&self, logical: &str) -> Option<&Yaml> {
        self.resources().get(logical)
    }

    fn resource_type(&self, logical: &str) -> Option<&str> {
        self.resource(logical)?.get("Type")?.as_str()
    }

    fn property(&self, logical: &str, name: &str) -> Option<&Yaml> {
        self.resource(logical)?.get("Properties")?.get(name)
    }

    /// The logical ids of the resources of this type.
    pub fn resources_of_type(&self, kind: &str) -> Vec<String> {
        self.resources()
            .iter()
            .filter(|(_, r)| r.get("Type").and_then(Yaml::as_str) == Some(kind))
            .filter_map(|(k, _)| k.as_str().map(str::to_owned))
            .collect()
    }

    /// The permission policies of a role (its `Policies[].PolicyDocument`), resolved.
    pub fn role_policies(&self, role: &str, ctx: &Context) -> Vec<Json> {
        self.named_role_policies(role, ctx)
            .into_iter()
            .map(|(_, doc)| doc)
            .collect()
    }

    /// A role's inline policies: each `PolicyName` with its document, resolved.
    pub fn named_role_policies(&self, role: &str, ctx: &Context) -> Vec<(String, Json)> {
        assert_eq!(
            self.resource_type(role),
            Some("AWS::IAM::Role"),
            "{}: {role} is not an AWS::IAM::Role",
            self.file
        );
        let policies = self
            .property(role, "Policies")
            .and_then(Yaml::as_sequence)
            .unwrap_or_else(|| panic!("{}: {role} has no Policies", self.file));
        policies
            .iter()
            .map(|p| {
                let name = p.get("PolicyName").map(|n| self.resolve(n, ctx));
                let name = name.and_then(|n| n.as_str().map(str::to_owned));
                let doc = p
                    .get("PolicyDocument")
                    .unwrap_or_else(|| panic!("{}: a policy of {role} has no document", self.file));
                (
                    name.unwrap_or_else(|| panic!("{}: a policy of {role} has no name", self.file)),
                    self.resolve(doc, ctx),
                )
            })
            .collect()
    }

    /// A role's managed policy ARNs, as written.
    pub fn managed_policy_arns(&self, role: &str) -> Vec<String> {
        self.property(role, "ManagedPolicyArns")
            .and_then(Yaml::as_sequence)
            .map(|arns| arns.iter().map(|a| format!("{}", Shown(a))).collect())
            .unwrap_or_default()
    }

    /// A role's trust policy, as written.
    pub fn trust_policy(&self, role: &str) -> Option<&Yaml> {
        self.property(role, "AssumeRolePolicyDocument")
    }

    /// Every statement of every permission or resource policy in the template (every
    /// `PolicyDocument`, wherever it is), as written, with where it is.
    pub fn statements(&self) -> Vec<(String, Yaml)> {
        let mut found = Vec::new();
        for (logical, resource) in self.resources() {
            let logical = logical.as_str().unwrap_or_default();
            collect_statements(resource, &format!("{}: {logical}", self.file), &mut found);
        }
        found
    }

    /// Resolves CloudFormation's intrinsic functions in `value` (short or long form).
    pub fn resolve(&self, value: &Yaml, ctx: &Context) -> Json {
        match value {
            Yaml::Null => Json::Null,
            Yaml::Bool(b) => Json::Bool(*b),
            Yaml::Number(n) => serde_json::to_value(n).unwrap(),
            Yaml::String(s) => Json::String(s.clone()),
            Yaml::Sequence(items) => {
                Json::Array(items.iter().map(|v| self.resolve(v, ctx)).collect())
            }
            Yaml::Tagged(tagged) => {
                let tag = tagged.tag.to_string();
                self.function(tag.trim_start_matches('!'), &tagged.value, ctx)
            }
            Yaml::Mapping(map) => {
                if map.len() == 1
                    && let Some((Yaml::String(key), arg)) = map.iter().next()
                    && (key == "Ref" || key.starts_with("Fn::"))
                {
                    return self.function(key.trim_start_matches("Fn::"), arg, ctx);
                }
                Json::Object(
                    map.iter()
                        .map(|(k, v)| (format!("{}", Shown(k)), self.resolve(v, ctx)))
                        .collect(),
                )
            }
        }
    }

    fn function(&self, name: &str, arg: &Yaml, ctx: &Context) -> Json {
        match name {
            "Ref" => self.reference(text(arg, &self.file), ctx),
            "GetAtt" => {
                let (logical, attribute) = match arg {
                    Yaml::String(s) => s
                        .split_once('.')
                        .unwrap_or_else(|| panic!("{}: !GetAtt {s} names no attribute", self.file)),
                    Yaml::Sequence(parts) if parts.len() == 2 => {
                        (text(&parts[0], &self.file), text(&parts[1], &self.file))
                    }
                    other => panic!("{}: !GetAtt {other:?}", self.file),
                };
                Json::String(self.attribute(logical, attribute, ctx))
            }
            "Sub" => {
                let (pattern, vars) = match arg {
                    Yaml::String(s) => (s.as_str(), BTreeMap::new()),
                    Yaml::Sequence(parts) if parts.len() == 2 => {
                        let vars = parts[1]
                            .as_mapping()
                            .unwrap_or_else(|| panic!("{}: !Sub's variables", self.file))
                            .iter()
                            .map(|(k, v)| (format!("{}", Shown(k)), self.resolve(v, ctx)))
                            .collect();
                        (text(&parts[0], &self.file), vars)
                    }
                    other => panic!("{}: !Sub {other:?}", self.file),
                };
                Json::String(self.substitute(pattern, &vars, ctx))
            }
            "Join" => {
                let parts = arg.as_sequence().filter(|p| p.len() == 2);
                let parts = parts.unwrap_or_else(|| panic!("{}: !Join {arg:?}", self.file));
                let separator = text(&parts[0], &self.file);
                let values = self.resolve(&parts[1], ctx);
                let values: Vec<String> = strings(&values);
                Json::String(values.join(separator))
            }
            other => panic!(
                "{}: the policy tests cannot resolve Fn::{other} yet (tests/iam/mod.rs)",
                self.file
            ),
        }
    }

    fn substitute(&self, pattern: &str, vars: &BTreeMap<String, Json>, ctx: &Context) -> String {
        let mut out = String::new();
        let mut rest = pattern;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .unwrap_or_else(|| panic!("{}: unclosed ${{ in {pattern}", self.file));
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(value) = vars.get(name) {
                out.push_str(&strings(value).join(","));
            } else if let Some((logical, attribute)) = name.split_once('.') {
                out.push_str(&self.attribute(logical, attribute, ctx));
            } else {
                out.push_str(&strings(&self.reference(name, ctx)).join(","));
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out
    }

    fn reference(&self, name: &str, ctx: &Context) -> Json {
        let (p, a, r) = (&ctx.partition, &ctx.account, &ctx.region);
        match name {
            "AWS::Partition" => return Json::String(p.clone()),
            "AWS::AccountId" => return Json::String(a.clone()),
            "AWS::Region" => return Json::String(r.clone()),
            "AWS::StackName" => return Json::String(ctx.stack_name.clone()),
            "AWS::StackId" => return Json::String(ctx.stack_id()),
            "AWS::URLSuffix" => return Json::String("amazonaws.com".to_owned()),
            "AWS::NoValue" => return Json::Null,
            _ => {}
        }
        if let Some(param) = self.doc.get("Parameters").and_then(|ps| ps.get(name)) {
            if let Some(value) = ctx.params.get(name) {
                return value.clone();
            }
            if let Some(default) = param.get("Default") {
                return self.resolve(default, ctx);
            }
            panic!(
                "{}: give the test a value for the parameter {name}",
                self.file
            );
        }
        let name_of = |property: &str| self.named(name, property, ctx);
        match self.resource_type(name) {
            Some("AWS::SNS::Topic") => {
                Json::String(format!("arn:{p}:sns:{r}:{a}:{}", name_of("TopicName")))
            }
            Some("AWS::SQS::Queue") => Json::String(format!(
                "https://sqs.{r}.amazonaws.com/{a}/{}",
                name_of("QueueName")
            )),
            Some("AWS::IAM::Role") => Json::String(name_of("RoleName")),
            Some("AWS::RDS::DBInstance") => Json::String(name_of("DBInstanceIdentifier")),
            Some("AWS::Logs::LogGroup") => Json::String(name_of("LogGroupName")),
            Some(kind) => panic!(
                "{}: the policy tests cannot resolve a Ref to {name} ({kind}) yet (tests/iam/mod.rs)",
                self.file
            ),
            None => panic!(
                "{}: Ref to {name}, which the template does not declare",
                self.file
            ),
        }
    }

    fn attribute(&self, logical: &str, attribute: &str, ctx: &Context) -> String {
        let (p, a, r) = (&ctx.partition, &ctx.account, &ctx.region);
        let name_of = |property: &str| self.named(logical, property, ctx);
        match (self.resource_type(logical), attribute) {
            (Some("AWS::IAM::Role"), "Arn") => {
                format!("arn:{p}:iam::{a}:role/{}", name_of("RoleName"))
            }
            (Some("AWS::SQS::Queue"), "Arn") => {
                format!("arn:{p}:sqs:{r}:{a}:{}", name_of("QueueName"))
            }
            (Some("AWS::SQS::Queue"), "QueueName") => name_of("QueueName"),
            (Some("AWS::SNS::Topic"), "TopicArn") => {
                format!("arn:{p}:sns:{r}:{a}:{}", name_of("TopicName"))
            }
            (Some("AWS::Logs::LogGroup"), "Arn") => {
                format!(
                    "arn:{p}:logs:{r}:{a}:log-group:{}:*",
                    name_of("LogGroupName")
                )
            }
            (kind, _) => panic!(
                "{}: the policy tests cannot resolve !GetAtt {logical}.{attribute} ({kind:?}) yet (tests/iam/mod.rs)",
                self.file
            ),
        }
    }

    /// A resource's name property, or the name CloudFormation would make up (here: the
    /// logical id, lower-cased for database instances).
    fn named(&self, logical: &str, property: &str, ctx: &Context) -> String {
        match self.property(logical, property) {
            Some(value) => strings(&self.resolve(value, ctx)).join(","),
            None if property == "DBInstanceIdentifier" => logical.to_lowercase(),
            None => format!("{}-{logical}", ctx.stack_name),
        }
    }
}

fn collect_statements(value: &Yaml, at: &str, found: &mut Vec<(String, Yaml)>) {
    match value {
        Yaml::Mapping(map) => {
            for (key, value) in map {
                if key.as_str() == Some("PolicyDocument") {
                    let statements = value.get("Statement");
                    match statements {
                        Some(Yaml::Sequence(list)) => {
                            found.extend(list.iter().map(|s| (at.to_owned(), s.clone())));
                        }
                        Some(single) => found.push((at.to_owned(), single.clone())),
                        None => {}
                    }
                } else {
                    collect_statements(value, at, found);
                }
            }
        }
        Yaml::Sequence(items) => items.iter().for_each(|v| collect_statements(v, at, found)),
        Yaml::Tagged(tagged) => collect_statements(&tagged.value, at, found),
        _ => {}
    }
}

fn text<'a>(value: &'a Yaml, file: &str) -> &'a str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{file}: expected a string, found {value:?}"))
}

/// A YAML scalar (or a short-tagged one) as text, for messages and keys.
struct Shown<'a>(&'a Yaml);

impl std::fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Yaml::String(s) => f.write_str(s),
            Yaml::Tagged(t) => write!(f, "{} {}", t.tag, Shown(&t.value)),
            other => write!(
                f,
                "{}",
                serde_yaml::to_string(other).unwrap_or_default().trim()
            ),
        }
    }
}

/// Every string in a value (a string, or an array of them, nested or not).
pub fn strings(value: &Json) -> Vec<String> {
    match value {
        Json::String(s) => vec![s.clone()],
        Json::Array(items) => items.iter().flat_map(strings).collect(),
        Json::Null => Vec::new(),
        other => vec![other.to_string()],
    }
}

/// IAM's wildcard match: `*` any run of characters, `?` one.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// An action matches a policy's action pattern case-insensitively (IAM's rule).
pub fn action_matches(pattern: &str, action: &str) -> bool {
    glob(&pattern.to_lowercase(), &action.to_lowercase())
}

/// The statements of resolved policy documents.
pub fn resolved_statements(policies: &[Json]) -> Vec<&Json> {
    policies
        .iter()
        .flat_map(|doc| match &doc["Statement"] {
            Json::Array(list) => list.iter().collect::<Vec<_>>(),
            single => vec![single],
        })
        .collect()
}

/// Whether the policies allow `action` on `resource`: the `Sid` of the statement that does
/// (conditions are not evaluated: a conditional allow counts), or why not.
pub fn allows(policies: &[Json], action: &str, resource: &str) -> Result<String, String> {
    let mut allowed_by = None;
    for statement in resolved_statements(policies) {
        for unsupported in ["NotAction", "NotResource", "NotPrincipal"] {
            assert!(
                statement.get(unsupported).is_none(),
                "{unsupported} is not read by the policy tests: {statement}"
            );
        }
        let matches = strings(&statement["Action"])
            .iter()
            .any(|p| action_matches(p, action))
            && strings(&statement["Resource"])
                .iter()
                .any(|p| glob(p, resource));
        if !matches {
            continue;
        }
        let sid = statement["Sid"].as_str().unwrap_or("(no Sid)").to_owned();
        match statement["Effect"].as_str() {
            Some("Deny") => return Err(format!("denied by {sid}")),
            Some("Allow") => allowed_by = allowed_by.or(Some(sid)),
            other => panic!("a statement's Effect is {other:?}: {statement}"),
        }
    }
    allowed_by.ok_or_else(|| format!("no statement allows {action} on {resource}"))
}

/// Every action an Allow statement of the policies names, as written.
pub fn granted_actions(policies: &[Json]) -> Vec<String> {
    resolved_statements(policies)
        .into_iter()
        .filter(|s| s["Effect"] == "Allow")
        .flat_map(|s| strings(&s["Action"]))
        .collect()
}
