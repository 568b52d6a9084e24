//! The listing's grouping and order, including a proptest over random mixes of names.
use super::*;
use chrono::TimeZone;

fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 12, minute, 0).unwrap()
}

fn files(list: &[(&str, u32)]) -> Vec<(String, DateTime<Utc>)> {
    list.iter()
        .map(|(k, m)| (format!("builds/web/{k}"), at(*m)))
        .collect()
}

fn ids(folders: &[BuildFolder]) -> Vec<&str> {
    folders.iter().map(|f| f.build.id.as_str()).collect()
}

#[test]
fn a_build_needs_a_template_and_parameters_to_be_deployable() {
    let folders = group_into_builds(
        "web",
        "builds/web/",
        files(&[
            ("web-master-1/template.yaml", 1),
            ("web-master-1/parameters.json", 1),
            ("web-master-2/template.json", 2),
            ("web-master-3/parameters.json", 3),
            ("web-master-4/README.md", 4),
            ("web-master-5/template.yml", 5),
            ("web-master-5/parameters.json", 5),
            ("web-master-5/parameters.PRD.json", 5),
        ]),
    );
    let by_id = |id: &str| folders.iter().find(|f| f.build.id == id).unwrap();
    assert!(by_id("web-master-1").build.deployable);
    assert_eq!(
        by_id("web-master-2").build.problem.as_deref(),
        Some("no parameters.json")
    );
    assert!(
        by_id("web-master-3")
            .build
            .problem
            .as_deref()
            .unwrap()
            .starts_with("no template")
    );
    assert!(
        by_id("web-master-4")
            .build
            .problem
            .as_deref()
            .unwrap()
            .contains("and no parameters.json")
    );
    let five = by_id("web-master-5");
    assert!(five.build.deployable);
    assert_eq!(
        five.template_key.as_deref(),
        Some("builds/web/web-master-5/template.yml")
    );
    assert_eq!(
        five.overrides.get("PRD").map(String::as_str),
        Some("builds/web/web-master-5/parameters.PRD.json")
    );
}

#[test]
fn two_templates_odd_names_and_stray_overrides_are_not_deployable() {
    let mut folders = group_into_builds(
        "web",
        "builds/web/",
        files(&[
            ("web-master-1/template.yaml", 1),
            ("web-master-1/template.json", 1),
            ("web-master-1/parameters.json", 1),
            ("web-fix#2-3/template.yaml", 2),
            ("web-fix#2-3/parameters.json", 2),
            ("web-master-4/template.yaml", 3),
            ("web-master-4/parameters.json", 3),
            ("web-master-4/parameters.prd.json", 3),
            ("web-master-4/parameters.PROD.json", 3),
            ("web-master-5/template.yaml", 4),
            ("web-master-5/parameters.json", 4),
            ("web-master-5/parameters.PRD.json", 4),
        ]),
    );
    check_overrides(&mut folders, &["DEV".into(), "PRD".into()]);
    let problem = |id: &str| {
        folders
            .iter()
            .find(|f| f.build.id == id)
            .unwrap()
            .build
            .problem
            .clone()
    };
    assert!(
        problem("web-master-1")
            .unwrap()
            .contains("2 templates (template.yaml, template.json)")
    );
    assert!(problem("web-fix#2-3").unwrap().contains("tag value"));
    let stray = problem("web-master-4").unwrap();
    assert!(
        stray.contains("parameters.PROD.json, parameters.prd.json match no environment (DEV, PRD"),
        "{stray}"
    );
    assert_eq!(problem("web-master-5"), None);
}

#[test]
fn folders_that_do_not_parse_are_listed_with_the_reason() {
    let folders = group_into_builds(
        "web",
        "builds/web/",
        files(&[
            ("web-latest/template.yaml", 1),
            ("web-latest/parameters.json", 1),
        ]),
    );
    assert_eq!(folders.len(), 1);
    let build = &folders[0].build;
    assert!(!build.deployable);
    assert_eq!(build.branch, None);
    assert!(
        build
            .problem
            .as_deref()
            .unwrap()
            .contains("no build number"),
        "{:?}",
        build.problem
    );
}

#[test]
fn within_a_branch_builds_are_newest_number_first_even_when_written_out_of_order() {
    let folders = group_into_builds(
        "web",
        "builds/web/",
        files(&[
            ("web-master-100/template.yaml", 1),
            ("web-master-9/template.yaml", 30),
            ("web-master-99/template.yaml", 2),
            ("web-feature-x-7/template.yaml", 20),
        ]),
    );
    assert_eq!(
        ids(&folders),
        [
            "web-feature-x-7",
            "web-master-100",
            "web-master-99",
            "web-master-9"
        ]
    );
}

/// The case: twenty-odd builds on a few branches beside an unparsable folder made
/// the standard sort panic ("does not correctly implement a total order").
#[test]
fn many_branches_beside_an_unparsable_folder_do_not_panic() {
    let mut list = vec![
        ("web-latest/template.yaml".to_owned(), 0),
        ("web-latest/parameters.json".to_owned(), 59),
    ];
    for n in 1..=24u32 {
        let branch = ["master", "feature-a", "release-2", "hotfix"][n as usize % 4];
        list.push((format!("web-{branch}-{n}/template.yaml"), (n * 37) % 60));
    }
    let files: Vec<(String, DateTime<Utc>)> = list
        .into_iter()
        .map(|(k, m)| (format!("builds/web/{k}"), at(m)))
        .collect();
    let folders = group_into_builds("web", "builds/web/", files);
    assert_eq!(folders.len(), 25);
}

mod ordering {
    use super::*;
    use proptest::prelude::*;

    fn folder_name() -> impl Strategy<Value = String> {
        prop_oneof![
            // Parsable: a few branches (some with dashes), small numbers that repeat.
            (
                prop::sample::select(vec!["master", "dev", "feature-x", "release-1-2"]),
                0u64..40
            )
                .prop_map(|(b, n)| format!("web-{b}-{n}")),
            // Unparsable: no number, no branch, another project, odd characters.
            prop::sample::select(vec![
                "web-latest",
                "web-42",
                "web-master-",
                "search-master-1",
                "web--3",
                "web-x-99999999999999999999999",
            ])
            .prop_map(str::to_owned),
            "[a-z0-9-]{1,12}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// Any mix of branches, numbers, times and unparsable names is listed without a panic,
        /// once each, newest first within every branch.
        #[test]
        fn any_mix_of_folders_is_ordered(
            entries in prop::collection::vec((folder_name(), 0u32..60), 0..60)
        ) {
            let files: Vec<(String, DateTime<Utc>)> = entries
                .iter()
                .map(|(name, minute)| (format!("builds/web/{name}/template.yaml"), at(*minute)))
                .collect();
            let folders = group_into_builds("web", "builds/web/", files);
            let mut names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            let mut listed = ids(&folders);
            listed.sort_unstable();
            prop_assert_eq!(listed, names, "every folder is listed once");
            let mut last: BTreeMap<String, u64> = BTreeMap::new();
            for f in &folders {
                if let (Some(branch), Some(number)) = (&f.build.branch, f.build.number)
                    && let Some(previous) = last.insert(branch.clone(), number)
                {
                    prop_assert!(previous > number, "{branch}: {previous} before {number}");
                }
            }
        }
    }
}

#[test]
fn branches_interleave_by_time() {
    let folders = group_into_builds(
        "web",
        "builds/web/",
        files(&[
            ("web-master-1/template.yaml", 1),
            ("web-dev-1/template.yaml", 2),
            ("web-master-2/template.yaml", 3),
            ("web-dev-2/template.yaml", 4),
        ]),
    );
    assert_eq!(
        ids(&folders),
        ["web-dev-2", "web-master-2", "web-dev-1", "web-master-1"]
    );
}
