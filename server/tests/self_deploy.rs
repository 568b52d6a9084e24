//! The deployer deploys itself: the demo's `deployer` builds carry the real GBL-DEPLOYER
//! template (`infra/deployer.yaml`: load balancer, Auto Scaling group, RDS, queue, roles), seeded
//! by `seed/seed.py` with the emulated GBL account's network, and deploying a new build of it to
//! GBL against moto goes through like any other project's — with CloudFormation's own role.

mod common;

use common::Harness;
use deployer::config::Project;

#[tokio::test]
async fn the_deployer_deploys_its_own_real_template_to_gbl() {
    let h = Harness::start_configured(|config, _| {
        config.projects.push(Project {
            name: "deployer".into(),
            title: "Deployer".into(),
            stacks: vec![("GBL".into(), "GBL-DEPLOYER".into())],
            configured: true,
        });
        for env in &mut config.environments {
            env.cloudformation_role_arn = Some(format!(
                "arn:aws:iam::{}:role/deployer-cloudformation",
                env.account_id
            ));
        }
    })
    .await;
    let seed_config = h.dir.path().join("seed.toml");
    // The seed reads the same world from a config file: the bucket, the accounts — and of the
    // projects only the deployer.
    let toml = common::config_toml(&h.moto, &h.dir.path().join("unused.sqlite"));
    let mut toml = toml.split("[[projects]]").next().unwrap().to_owned();
    toml.push_str("[[projects]]\nname = \"deployer\"\nenvironments = [\"GBL\"]\n");
    std::fs::write(&seed_config, toml).unwrap();
    let python = common::python();
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/../seed/seed.py");
    let out = std::process::Command::new(python)
        .arg(seed)
        .arg(&seed_config)
        .output()
        .expect("the seed runs (python from the moto virtualenv)");
    assert!(
        out.status.success(),
        "seed failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let before = h.card("deployer", "GBL").await;
    assert_eq!(before["status"], "CREATE_COMPLETE", "{before}");
    assert_eq!(before["build"], "deployer-master-157");

    let done = h.deploy("deployer", "GBL", "deployer-master-158").await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let after = h.card("deployer", "GBL").await;
    assert_eq!(after["build"], "deployer-master-158");
    let image = after["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["key"] == "ImageId")
        .unwrap()["value"]
        .clone();
    let old_image = before["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["key"] == "ImageId")
        .unwrap()["value"]
        .clone();
    assert_ne!(image, old_image, "the new build's image is what runs now");
    assert!(
        after["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["key"] == "LoadBalancerDnsName"),
        "{after}"
    );
}
