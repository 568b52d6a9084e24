//! Build ids: the folder names the build server writes, `<project>-<branch>-<number>`.
//! Branches may contain dashes; the number is the last dash-separated part.

use std::cmp::Ordering;
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildId {
    pub project: String,
    pub branch: String,
    pub number: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BuildIdError {
    #[error("does not start with {expected}")]
    UnknownProject { expected: String },
    #[error("has no build number at the end")]
    NoNumber,
    #[error("has no branch between the project and the build number")]
    NoBranch,
}

impl BuildId {
    /// Parses `id` against the known project names. Longer names are tried first, so with
    /// projects `web` and `web-api`, `web-api-main-3` belongs to `web-api`; a shorter name is
    /// tried when the longer one leaves nothing that parses (`web-api-3` is `web`, branch `api`).
    pub fn parse<'a>(
        id: &str,
        projects: impl IntoIterator<Item = &'a str>,
    ) -> Result<BuildId, BuildIdError> {
        let projects: Vec<&str> = projects.into_iter().collect();
        let mut candidates: Vec<&str> = projects
            .iter()
            .copied()
            .filter(|p| !p.is_empty() && id.len() > p.len() + 1)
            .filter(|p| id.starts_with(*p) && id.as_bytes()[p.len()] == b'-')
            .collect();
        if candidates.is_empty() {
            let expected = projects
                .iter()
                .map(|p| format!("'{p}-'"))
                .collect::<Vec<_>>()
                .join(" or ");
            return Err(BuildIdError::UnknownProject { expected });
        }
        candidates.sort_by_key(|p| std::cmp::Reverse(p.len()));
        let mut first_error = None;
        for project in candidates {
            match Self::parse_rest(project, &id[project.len() + 1..]) {
                Ok(build) => return Ok(build),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error.unwrap_or(BuildIdError::NoNumber))
    }

    fn parse_rest(project: &str, rest: &str) -> Result<BuildId, BuildIdError> {
        let is_number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let Some((branch, number)) = rest.rsplit_once('-') else {
            return Err(if is_number(rest) {
                BuildIdError::NoBranch
            } else {
                BuildIdError::NoNumber
            });
        };
        if !is_number(number) {
            return Err(BuildIdError::NoNumber);
        }
        if branch.is_empty() {
            return Err(BuildIdError::NoBranch);
        }
        let number = number.parse().map_err(|_| BuildIdError::NoNumber)?;
        Ok(BuildId {
            project: project.to_owned(),
            branch: branch.to_owned(),
            number,
        })
    }

    /// Newer first: within a branch, by number — numerically.
    pub fn newer_first(a: &BuildId, b: &BuildId) -> Ordering {
        b.number.cmp(&a.number)
    }
}

impl fmt::Display for BuildId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.project, self.branch, self.number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_branch_may_contain_dashes() {
        let id = BuildId::parse("web-feature-login-42", ["web"]).unwrap();
        assert_eq!(
            id,
            BuildId {
                project: "web".into(),
                branch: "feature-login".into(),
                number: 42
            }
        );
        assert_eq!(id.to_string(), "web-feature-login-42");
    }

    #[test]
    fn a_build_id_without_number_is_rejected() {
        assert_eq!(
            BuildId::parse("web-master", ["web"]),
            Err(BuildIdError::NoNumber)
        );
        assert_eq!(
            BuildId::parse("web-feature-x", ["web"]),
            Err(BuildIdError::NoNumber)
        );
        assert_eq!(
            BuildId::parse("web-master-", ["web"]),
            Err(BuildIdError::NoNumber)
        );
    }

    #[test]
    fn a_build_id_without_branch_is_rejected() {
        assert_eq!(
            BuildId::parse("web-42", ["web"]),
            Err(BuildIdError::NoBranch)
        );
        assert_eq!(
            BuildId::parse("web--42", ["web"]),
            Err(BuildIdError::NoBranch)
        );
    }

    #[test]
    fn an_unknown_project_prefix_is_rejected() {
        assert!(matches!(
            BuildId::parse("search-master-1", ["web", "deployer"]),
            Err(BuildIdError::UnknownProject { .. })
        ));
        // A project name must be followed by a dash, not just be a prefix of a word.
        assert!(matches!(
            BuildId::parse("webapp-master-1", ["web"]),
            Err(BuildIdError::UnknownProject { .. })
        ));
    }

    #[test]
    fn the_longest_project_name_that_parses_wins() {
        let id = BuildId::parse("web-api-main-3", ["web", "web-api"]).unwrap();
        assert_eq!(
            (id.project.as_str(), id.branch.as_str()),
            ("web-api", "main")
        );
        let id = BuildId::parse("web-api-3", ["web", "web-api"]).unwrap();
        assert_eq!((id.project.as_str(), id.branch.as_str()), ("web", "api"));
    }

    #[test]
    fn numbers_order_numerically_not_as_text() {
        let mut ids: Vec<BuildId> = [
            "web-master-9",
            "web-master-100",
            "web-master-99",
            "web-master-10",
        ]
        .into_iter()
        .map(|s| BuildId::parse(s, ["web"]).unwrap())
        .collect();
        ids.sort_by(BuildId::newer_first);
        let numbers: Vec<u64> = ids.iter().map(|b| b.number).collect();
        assert_eq!(numbers, [100, 99, 10, 9]);
    }

    #[test]
    fn a_huge_number_is_not_a_crash() {
        assert_eq!(
            BuildId::parse("web-master-99999999999999999999999", ["web"]),
            Err(BuildIdError::NoNumber)
        );
    }
}
