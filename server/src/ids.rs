//! Ids parsed once, where a request comes in: a project, an environment, a stack, a build and a
//! deployment, each with its length and its characters checked. A value that cannot be such an id
//! is a 400 that says why; a well-formed id that names nothing is a 404, decided further in.

use std::fmt;

use crate::error::AppError;

/// Why a text is not an id of its kind, in words for the person who sent it.
fn check(
    kind: &str,
    text: &str,
    max: usize,
    allowed: impl Fn(char) -> bool,
    rule: &str,
) -> Result<(), AppError> {
    let shown: String = text.chars().take(80).collect();
    let shown = if text.chars().count() > 80 {
        format!("{shown:?}…")
    } else {
        format!("{shown:?}")
    };
    if text.is_empty() {
        return Err(AppError::BadRequest(format!("{kind} is missing")));
    }
    let length = text.chars().count();
    if length > max {
        return Err(AppError::BadRequest(format!(
            "{shown} is not a valid {kind}: at most {max} characters, this has {length}"
        )));
    }
    if !text.chars().all(allowed) {
        return Err(AppError::BadRequest(format!(
            "{shown} is not a valid {kind}: {rule}"
        )));
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }
    };
}

id_type!(
    /// A project's name, as the build server spells it in its folders (`web`, `web-api`).
    ProjectName
);
id_type!(
    /// An environment's name (`DEV`, `PRD`); each is one AWS account.
    EnvName
);
id_type!(
    /// A CloudFormation stack name (`DEV-WEB`).
    StackName
);
id_type!(
    /// A build, by its folder name in the bucket (`web-feature-login-42`).
    BuildName
);
id_type!(
    /// A deployment, as the deployer numbers them (`d-<hex>`).
    DeploymentId
);

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

const NAME_RULE: &str = "use letters, digits, '-', '_' and '.'";

impl ProjectName {
    pub const MAX: usize = crate::config::MAX_PROJECT_NAME;

    pub fn parse(text: &str) -> Result<Self, AppError> {
        check("project name", text, Self::MAX, name_char, NAME_RULE)?;
        Ok(ProjectName(text.to_owned()))
    }
}

impl EnvName {
    pub const MAX: usize = 32;

    pub fn parse(text: &str) -> Result<Self, AppError> {
        check("environment name", text, Self::MAX, name_char, NAME_RULE)?;
        Ok(EnvName(text.to_owned()))
    }
}

impl StackName {
    /// CloudFormation's own limit.
    pub const MAX: usize = 128;

    pub fn parse(text: &str) -> Result<Self, AppError> {
        check(
            "stack name",
            text,
            Self::MAX,
            |c| c.is_ascii_alphanumeric() || c == '-',
            "use letters, digits and '-', starting with a letter",
        )?;
        if !text.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Err(AppError::BadRequest(format!(
                "{text:?} is not a valid stack name: it must start with a letter"
            )));
        }
        Ok(StackName(text.to_owned()))
    }
}

impl BuildName {
    /// An S3 key is at most 1,024 bytes; a build folder's name is far shorter.
    pub const MAX: usize = 255;

    pub fn parse(text: &str) -> Result<Self, AppError> {
        check(
            "build",
            text,
            Self::MAX,
            // A folder name: no separators, no spaces or control characters.
            |c| !c.is_control() && !c.is_whitespace() && c != '/' && c != '\\',
            "a build is one folder name, without '/', spaces or control characters",
        )?;
        Ok(BuildName(text.to_owned()))
    }
}

impl DeploymentId {
    pub const MAX: usize = 66;

    /// A new id: `d-` and 32 hexadecimal digits. It is also the prefix of the deployment's
    /// CloudFormation request tokens, whose pattern it fits.
    pub fn new() -> Self {
        DeploymentId(format!("d-{}", uuid::Uuid::new_v4().simple()))
    }

    pub fn parse(text: &str) -> Result<Self, AppError> {
        check(
            "deployment id",
            text,
            Self::MAX,
            |c| c.is_ascii_alphanumeric() || c == '-',
            "a deployment id is \"d-\" followed by letters and digits",
        )?;
        if !text.starts_with("d-") || text.len() == 2 {
            return Err(AppError::BadRequest(format!(
                "{text:?} is not a valid deployment id: deployment ids look like \"d-3f2a…\""
            )));
        }
        Ok(DeploymentId(text.to_owned()))
    }
}

impl Default for DeploymentId {
    fn default() -> Self {
        DeploymentId::new()
    }
}

/// How many entries a list answers: 1 to [`Limit::MAX`], 50 when not given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit(u32);

impl Limit {
    pub const MAX: u32 = 1000;
    pub const DEFAULT: Limit = Limit(50);

    pub fn get(self) -> u32 {
        self.0
    }

    /// From a query string's text; empty means the default.
    pub fn parse(name: &str, text: Option<&str>) -> Result<Self, AppError> {
        match text.map(str::trim) {
            None | Some("") => Ok(Limit::DEFAULT),
            Some(raw) => match raw.parse::<u64>() {
                Ok(n) => Limit::from_number(name, n),
                Err(_) => Err(limit_error(name, raw)),
            },
        }
    }

    /// From a number a page sent.
    pub fn from_number(name: &str, n: u64) -> Result<Self, AppError> {
        if (1..=u64::from(Self::MAX)).contains(&n) {
            Ok(Limit(n as u32))
        } else {
            Err(limit_error(name, &n.to_string()))
        }
    }
}

fn limit_error(name: &str, raw: &str) -> AppError {
    AppError::BadRequest(format!(
        "{name} must be a whole number from 1 to {}, got {raw:?}",
        Limit::MAX
    ))
}

/// An optional filter from a query string: empty or absent means "any".
pub fn optional<T>(
    text: Option<&str>,
    parse: impl FnOnce(&str) -> Result<T, AppError>,
) -> Result<Option<T>, AppError> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => parse(t).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(result: Result<impl fmt::Debug, AppError>) -> String {
        match result {
            Err(AppError::BadRequest(m)) => m,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn an_unknown_but_well_formed_name_parses() {
        assert_eq!(ProjectName::parse("nope").unwrap().as_str(), "nope");
        assert_eq!(EnvName::parse("QA").unwrap().as_str(), "QA");
        assert_eq!(DeploymentId::parse("d-nope").unwrap().as_str(), "d-nope");
        assert!(BuildName::parse("web-feature+x-12").is_ok());
    }

    #[test]
    fn a_name_with_a_slash_or_a_space_is_refused_with_the_rule() {
        assert!(rejected(ProjectName::parse("web/../etc")).contains("letters, digits"));
        assert!(rejected(EnvName::parse("D EV")).contains("not a valid environment name"));
        assert!(rejected(BuildName::parse("web/master-1")).contains("without '/'"));
        assert!(rejected(StackName::parse("1-WEB")).contains("start with a letter"));
    }

    #[test]
    fn an_overlong_id_is_refused_with_its_length() {
        let long = "a".repeat(5000);
        let message = rejected(ProjectName::parse(&long));
        assert!(
            message.contains("at most 64 characters, this has 5000"),
            "{message}"
        );
        assert!(
            message.len() < 200,
            "the answer does not echo the whole input"
        );
    }

    #[test]
    fn a_deployment_id_starts_with_d() {
        assert!(rejected(DeploymentId::parse("x-1")).contains("look like"));
        assert!(rejected(DeploymentId::parse("d-")).contains("look like"));
        let id = DeploymentId::new();
        assert_eq!(DeploymentId::parse(id.as_str()).unwrap(), id);
    }

    #[test]
    fn a_limit_is_between_one_and_a_thousand() {
        assert_eq!(Limit::parse("limit", None).unwrap(), Limit::DEFAULT);
        assert_eq!(Limit::parse("limit", Some("1000")).unwrap().get(), 1000);
        for bad in ["0", "1001", "4294967295", "-1", "ten"] {
            assert!(rejected(Limit::parse("limit", Some(bad))).contains("from 1 to 1000"));
        }
        assert!(Limit::from_number("limit", u64::from(u32::MAX)).is_err());
    }
}
