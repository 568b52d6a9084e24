#!/usr/bin/env python3
"""Seeds a local AWS emulator (moto) with what the deployer's demo and browser tests show.

Reads the deployer config (environments, artifacts bucket, projects), then in the emulator:
  - writes build folders <prefix><project>/<project>-<branch>-<number>/ with template.yaml and
    parameters files (several branches, some builds incomplete or badly named, like real life);
  - creates some stacks (DEV and STG mostly) tagged with the build they run, as the deployer would;
  - when the config names artifacts.notifications_queue_url: that queue, and the bucket's
    notifications of written and removed objects to it.

Usage: seed.py <config.toml>        (the endpoint comes from the config's environments)
       seed.py <config.toml> --new-project <name>
                                    writes the first build of a project the config does not name
                                    (a new team's service): the deployer lists it by itself
"""
import hashlib
import json
import sys
import time
import tomllib
from pathlib import Path

import boto3

HERE = Path(__file__).resolve().parent
# One template per project, <project>.yaml. deployer.yaml is a link to infra/deployer.yaml: the
# deployer's builds carry its real GBL-DEPLOYER template, as its Jenkinsfile writes it.
TEMPLATES = HERE / "templates"
GBL_PLACE = {}
BUILD_TAG = "deployer:build"

# Builds per project: (branch, numbers). Master crosses 99 -> 100 so numeric order shows.
BRANCHES = {
    "network": [("master", range(41, 47)), ("ipv6-rollout", range(1, 3))],
    "web": [("master", range(97, 104)), ("feature-login", range(1, 4)), ("dead-letters", range(1, 3))],
    "search": [("master", range(210, 216)), ("reindex-v2", range(5, 8))],
    "deployer": [("master", range(153, 159)), ("sse-progress", range(1, 3))],
}

# What is already running when the demo starts: env -> [(project, build)].
DEPLOYED = {
    "DEV": [("network", "network-master-46"), ("web", "web-master-103"), ("search", "search-reindex-v2-7")],
    "STG": [("network", "network-master-45"), ("web", "web-master-101"), ("search", "search-master-214")],
    "PRD": [("network", "network-master-44"), ("web", "web-master-99")],
    "GBL": [("deployer", "deployer-master-157")],
}


# The machine images the emulator's accounts can launch (its public images), read at start: each
# build bakes "its" image, one of them. web-master-97's image was deregistered since, so the
# rollback verdict has something to say about going back that far.
IMAGES = []
DEREGISTERED = {"web-master-97"}


def images(ec2):
    """The image ids the account sees, in a stable order."""
    return sorted(i["ImageId"] for i in ec2.describe_images()["Images"])


def ami(build_id):
    digest = hashlib.sha1(build_id.encode()).hexdigest()
    if IMAGES and build_id not in DEREGISTERED:
        return IMAGES[int(digest, 16) % len(IMAGES)]
    return "ami-0" + digest[:16]


def parameters(project, build_id):
    """The parameters.json a build writes, and its per-environment overrides, in the shapes
    teams really use (plain map, CloudFormation's list, CodePipeline's configuration)."""
    if project == "network":
        return {"AllowedCidr": "10.0.0.0/8"}, {
            env: {"EnvName": env} for env in ("DEV", "STG", "PRD")
        }
    if project == "web":
        common = [
            {"ParameterKey": "ImageId", "ParameterValue": ami(build_id)},
            {"ParameterKey": "InstanceType", "ParameterValue": "t3.small"},
            {"ParameterKey": "SessionSecret", "ParameterValue": "demo-" + build_id},
        ]
        return common, {
            "DEV": {"EnvName": "DEV", "DesiredCapacity": "1"},
            "STG": {"EnvName": "STG", "DesiredCapacity": "2"},
            "PRD": {"EnvName": "PRD", "DesiredCapacity": "6", "InstanceType": "m6i.large"},
        }
    if project == "search":
        return {"Parameters": {"RetentionSeconds": "345600"}, "Tags": {"team": "search"}}, {
            env: {"EnvName": env, "IndexBucketName": f"search-index-{env.lower()}-{ACCOUNTS[env]}"}
            for env in ("DEV", "STG", "PRD")
        }
    if project == "deployer":
        # The real GBL-DEPLOYER template (infra/deployer.yaml): Jenkins writes the image id; what
        # stays the same build after build (network, certificate, names) is in parameters.GBL.json.
        return {"ImageId": ami(build_id)}, {"GBL": GBL_PLACE}
    raise SystemExit(f"seed: no parameters known for project {project!r}")


def variant(project, branch, template):
    """The login feature branch needs a sessions table nobody has exported yet: the deployer's
    pre-flight refuses it, as it would have caught the original deployer's failed rollouts."""
    if project == "web" and branch == "feature-login":
        return template.replace(
            "Outputs:\n",
            "  SessionsTableParameter:\n"
            "    Type: AWS::SSM::Parameter\n"
            "    Properties:\n"
            "      Name: !Sub \"/web/${EnvName}/sessions-table\"\n"
            "      Type: String\n"
            "      Value:\n"
            "        Fn::ImportValue: !Sub \"${EnvName}-sessions-TableName\"\n"
            "\nOutputs:\n",
            1,
        )
    if project == "web" and branch == "dead-letters":
        # A build that fails on AWS, half-way through its update: SQS refuses the retention
        # period. The local AWS fails the resource with AWS's words (its LocalAws marker), and the
        # stack rolls back — what a person sees when a real build goes wrong.
        return template.replace(
            "\nOutputs:\n",
            "\n  JobsDeadLetterQueue:\n"
            "    Type: AWS::SQS::Queue\n"
            "    Metadata:\n"
            "      LocalAws:\n"
            "        Fail: >-\n"
            "          Resource handler returned message: \"Value 1209601 for parameter\n"
            "          MessageRetentionPeriod is invalid. Reason: Must be an integer from 60 to\n"
            "          1209600.\" (HandlerErrorCode: InvalidRequest)\n"
            "    Properties:\n"
            "      QueueName: !Sub \"${EnvName}-web-jobs-dlq\"\n"
            "      MessageRetentionPeriod: 1209601\n"
            "\nOutputs:\n",
            1,
        )
    return template


def build_template(project, branch):
    """The template a build of this project and branch writes (the seed's and the stand-in
    Jenkins' builds alike)."""
    return variant(project, branch, (TEMPLATES / f"{project}.yaml").read_text())


def as_map(params):
    """Flattens any of the shapes above into {key: value}."""
    if isinstance(params, list):
        return {p["ParameterKey"]: p["ParameterValue"] for p in params}
    if "Parameters" in params:
        return dict(params["Parameters"])
    return dict(params)


def session(endpoint, region, account):
    sts = boto3.client(
        "sts", endpoint_url=endpoint, region_name=region,
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )
    creds = sts.assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/deployer", RoleSessionName="seed"
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=region,
    )


DEPLOYER_DOMAIN = "deployer.example.internal"


def gbl_place(env, bucket, role_arns):
    """Where GBL-DEPLOYER lives in the emulated GBL account: its default VPC and subnets, and a
    certificate for the load balancer (as an operator would have made with ACM)."""
    sess = session(env["endpoint_url"], env["region"], env["account_id"])
    ec2 = sess.client("ec2", endpoint_url=env["endpoint_url"])
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    subnets = sorted(s["SubnetId"] for s in ec2.describe_subnets(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"])[:2]
    acm = sess.client("acm", endpoint_url=env["endpoint_url"])
    # One certificate, whoever asks first (the seed, or the stand-in Jenkins for its builds).
    certificate = next((c["CertificateArn"] for c in acm.list_certificates()["CertificateSummaryList"]
                        if c["DomainName"] == DEPLOYER_DOMAIN), None) or acm.request_certificate(
        DomainName=DEPLOYER_DOMAIN)["CertificateArn"]
    return {
        "VpcId": vpc,
        "PublicSubnetIds": ",".join(subnets),
        "PrivateSubnetIds": ",".join(subnets),
        "CertificateArn": certificate,
        "ArtifactsBucketName": bucket,
        "EnvironmentRoleArns": ",".join(role_arns),
    }


def notify(sess, endpoint, bucket, queue_url, region, account, s3):
    """The bucket tells a queue about every object written or removed, as the deployer's
    artifacts bucket is set up in AWS: the deployer re-lists a project as its build lands."""
    name = queue_url.rstrip("/").rsplit("/", 1)[-1]
    sqs = sess.client("sqs", endpoint_url=endpoint)
    try:
        sqs.get_queue_url(QueueName=name)
    except sqs.exceptions.QueueDoesNotExist:
        sqs.create_queue(QueueName=name)
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={"QueueConfigurations": [{
            "Id": "deployer-builds",
            "QueueArn": f"arn:aws:sqs:{region}:{account}:{name}",
            "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
        }]},
    )


def stack_events(sess, endpoint, env):
    """The topic an environment's stacks announce their events to and the queue subscribed to it,
    as infra/deployer-access.yaml makes them in each account: the deployer hears a stack change
    as it happens."""
    topic_arn, queue_url = env["stack_events_topic_arn"], env["stack_events_queue_url"]
    sns = sess.client("sns", endpoint_url=endpoint)
    sqs = sess.client("sqs", endpoint_url=endpoint)
    topic = sns.create_topic(Name=topic_arn.rsplit(":", 1)[-1])["TopicArn"]
    name = queue_url.rstrip("/").rsplit("/", 1)[-1]
    sqs.create_queue(QueueName=name)
    sns.subscribe(TopicArn=topic, Protocol="sqs",
                  Endpoint=f"arn:aws:sqs:{env['region']}:{env['account_id']}:{name}")


def settle(made, timeout=120):
    """Waits until every stack made is done (the local AWS, like AWS, takes its time)."""
    deadline = time.time() + timeout
    for cfn, name in made:
        while True:
            status = cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
            if not status.endswith("_IN_PROGRESS"):
                if status != "CREATE_COMPLETE":
                    raise SystemExit(f"seed: stack {name} ended {status}")
                break
            if time.time() > deadline:
                raise SystemExit(f"seed: stack {name} still {status} after {timeout} s")
            time.sleep(0.2)


def main(config_path):
    config = tomllib.loads(Path(config_path).read_text())
    envs = {e["name"]: e for e in config["environments"]}
    global ACCOUNTS
    ACCOUNTS = {name: e["account_id"] for name, e in envs.items()}
    art = config["artifacts"]
    prefix = art.get("prefix", "").strip("/")
    prefix = prefix + "/" if prefix else ""
    art_env = envs[art["environment"]]
    endpoint = art_env["endpoint_url"]
    projects = {p["name"]: p for p in config.get("projects", [])}

    s3 = session(endpoint, art_env["region"], art_env["account_id"]).client(
        "s3", endpoint_url=endpoint,
        config=boto3.session.Config(s3={"addressing_style": "path"}),
    )
    IMAGES[:] = images(session(endpoint, art_env["region"], art_env["account_id"]).client(
        "ec2", endpoint_url=endpoint))
    region = art_env["region"]
    kwargs = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    try:
        s3.create_bucket(Bucket=art["bucket"], **kwargs)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    if "deployer" in projects and "GBL" in envs:
        global GBL_PLACE
        GBL_PLACE = gbl_place(envs["GBL"], art["bucket"], [e["role_arn"] for e in envs.values() if e.get("role_arn")])

    written = {}
    for project, branches in BRANCHES.items():
        if project not in projects:
            continue
        base_template = (TEMPLATES / f"{project}.yaml").read_text()
        for branch, numbers in branches:
            template = build_template(project, branch)
            for number in numbers:
                build_id = f"{project}-{branch}-{number}"
                folder = f"{prefix}{project}/{build_id}/"
                common, overrides = parameters(project, build_id)
                s3.put_object(Bucket=art["bucket"], Key=folder + "template.yaml", Body=template.encode())
                s3.put_object(Bucket=art["bucket"], Key=folder + "parameters.json",
                              Body=json.dumps(common, indent=2).encode())
                for env, values in overrides.items():
                    s3.put_object(Bucket=art["bucket"], Key=f"{folder}parameters.{env}.json",
                                  Body=json.dumps(values, indent=2).encode())
                written[build_id] = (template, {**as_map(common)}, overrides)
        # Real buckets hold mistakes too: a build whose upload stopped half-way, a hand-made folder.
        template = base_template
        unfinished = max(branches[0][1]) + 1
        s3.put_object(Bucket=art["bucket"], Key=f"{prefix}{project}/{project}-master-{unfinished}/template.yaml",
                      Body=template.encode())
        s3.put_object(Bucket=art["bucket"], Key=f"{prefix}{project}/{project}-latest/template.yaml",
                      Body=template.encode())

    stacks = 0
    made = []
    for env_name, items in DEPLOYED.items():
        env = envs.get(env_name)
        if env is None:
            continue
        cfn = session(env["endpoint_url"], env["region"], env["account_id"]).client(
            "cloudformation", endpoint_url=env["endpoint_url"])
        for project, build_id in items:
            if project not in projects or build_id not in written:
                continue
            stack_name = projects[project].get("stacks", {}).get(env_name, f"{env_name}-{project}".upper())
            template, common, overrides = written[build_id]
            values = {**common, **overrides.get(env_name, {})}
            cfn.create_stack(
                StackName=stack_name,
                TemplateBody=template,
                Parameters=[{"ParameterKey": k, "ParameterValue": str(v)} for k, v in values.items()],
                Tags=[{"Key": BUILD_TAG, "Value": build_id}, {"Key": "deployer:deployment", "Value": "seed"}],
                Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
            )
            stacks += 1
            made.append((cfn, stack_name))
    settle(made)
    for env in envs.values():
        if env.get("stack_events_queue_url"):
            stack_events(session(env["endpoint_url"], env["region"], env["account_id"]), env["endpoint_url"], env)
    # After the stacks: GBL-DEPLOYER makes the queue itself (infra/deployer.yaml).
    queue_url = art.get("notifications_queue_url")
    if queue_url:
        notify(session(endpoint, region, art_env["account_id"]), endpoint, art["bucket"], queue_url, region,
               art_env["account_id"], s3)
    print(f"seeded {len(written)} builds in s3://{art['bucket']}/{prefix} and {stacks} stacks")


def new_project(config_path, name):
    """The first build of a new project, as its build server writes it: the deployer shows it in
    every open page within seconds, with no change to its config."""
    config = tomllib.loads(Path(config_path).read_text())
    envs = {e["name"]: e for e in config["environments"]}
    art = config["artifacts"]
    prefix = art.get("prefix", "").strip("/")
    prefix = prefix + "/" if prefix else ""
    art_env = envs[art["environment"]]
    endpoint = art_env["endpoint_url"]
    s3 = session(endpoint, art_env["region"], art_env["account_id"]).client(
        "s3", endpoint_url=endpoint,
        config=boto3.session.Config(s3={"addressing_style": "path"}),
    )
    folder = f"{prefix}{name}/{name}-master-1/"
    s3.put_object(Bucket=art["bucket"], Key=folder + "template.yaml",
                  Body=(TEMPLATES / "network.yaml").read_text()
                  .replace("AllowedValues: [DEV, STG, PRD]", "AllowedValues: [" + ", ".join(envs) + "]")
                  .replace("${EnvName}-alerts", name + "-${EnvName}-alerts")
                  .replace("${EnvName}-services", name + "-${EnvName}-services")
                  .replace("-network-", f"-{name}-").encode())
    s3.put_object(Bucket=art["bucket"], Key=folder + "parameters.json",
                  Body=json.dumps({"AllowedCidr": "10.0.0.0/8"}, indent=2).encode())
    for env in envs:
        s3.put_object(Bucket=art["bucket"], Key=f"{folder}parameters.{env}.json",
                      Body=json.dumps({"EnvName": env}, indent=2).encode())
    print(f"wrote s3://{art['bucket']}/{folder} — watch {name} appear in the page")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[2] == "--new-project":
        new_project(sys.argv[1], sys.argv[3])
    elif len(sys.argv) == 2:
        main(sys.argv[1])
    else:
        raise SystemExit(__doc__)
