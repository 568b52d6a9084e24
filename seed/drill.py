#!/usr/bin/env python3
"""The self-replacement drill's hands in the emulator (end2end/drill/).

  drill.py <config.toml> builds <build>...  deployer builds whose template is the real one plus a
                                            gate: moto holds their create in progress until the
                                            gate is released
  drill.py <config.toml> reset              GBL-DEPLOYER gone (the next deployment creates it)
  drill.py <config.toml> release            answers for the gate: the create completes

The gate is a `Custom::` resource backed by a Lambda of the same template; moto waits for the
Lambda's answer on its cfnresponse endpoint, the way a long CloudFormation operation stays open.
"""
import json
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).parent))
from seed import session  # noqa: E402

STACK = "GBL-DEPLOYER"
TEMPLATE_OF = "deployer-master-158"
GATE = """  DrillGateRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: { Service: lambda.amazonaws.com }
            Action: sts:AssumeRole
  DrillGateHook:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.11
      Handler: index.handler
      Role: !GetAtt DrillGateRole.Arn
      Code:
        ZipFile: "def handler(event, context): pass"
  DrillGate:
    Type: Custom::Wait
    Properties:
      ServiceToken: !GetAtt DrillGateHook.Arn
"""


def clients(config_path):
    config = tomllib.loads(Path(config_path).read_text())
    envs = {e["name"]: e for e in config["environments"]}
    gbl = envs["GBL"]
    art = config["artifacts"]
    art_env = envs[art["environment"]]
    prefix = art.get("prefix", "").strip("/")
    prefix = prefix + "/" if prefix else ""
    cfn = session(gbl["endpoint_url"], gbl["region"], gbl["account_id"]).client(
        "cloudformation", endpoint_url=gbl["endpoint_url"])
    s3 = session(art_env["endpoint_url"], art_env["region"], art_env["account_id"]).client(
        "s3", endpoint_url=art_env["endpoint_url"],
        config=boto3.session.Config(s3={"addressing_style": "path"}))
    return gbl, cfn, s3, art["bucket"], prefix


def reset(config_path):
    _, cfn, _, _, _ = clients(config_path)
    try:
        cfn.delete_stack(StackName=STACK)
        for _ in range(100):
            stacks = cfn.describe_stacks()["Stacks"]
            if not any(s["StackName"] == STACK and s["StackStatus"] != "DELETE_COMPLETE" for s in stacks):
                break
            time.sleep(0.1)
    except cfn.exceptions.ClientError:
        pass


def builds(config_path, build):
    _, _, s3, bucket, prefix = clients(config_path)
    source = f"{prefix}deployer/{TEMPLATE_OF}/"
    template = s3.get_object(Bucket=bucket, Key=source + "template.yaml")["Body"].read().decode()
    head, marker, rest = template.partition("\nResources:\n")
    assert marker, "the deployer's template has a Resources section"
    gated = head + marker + GATE + rest
    folder = f"{prefix}deployer/{build}/"
    for name in ("parameters.GBL.json", "parameters.json"):  # parameters.json last: the build is complete
        body = s3.get_object(Bucket=bucket, Key=source + name)["Body"].read()
        if name == "parameters.json":
            s3.put_object(Bucket=bucket, Key=folder + "template.yaml", Body=gated.encode())
        s3.put_object(Bucket=bucket, Key=folder + name, Body=body)


def release(config_path):
    gbl, cfn, _, _, _ = clients(config_path)
    stack_id = cfn.describe_stacks(StackName=STACK)["Stacks"][0]["StackId"]
    port = gbl["endpoint_url"].rstrip("/").rsplit(":", 1)[1]
    body = json.dumps({"Status": "SUCCESS", "LogicalResourceId": "DrillGate", "StackId": stack_id, "Data": {}})
    request = urllib.request.Request(
        f"http://localhost:{port}/cloudformation_{gbl['region']}/cfnresponse?stack={stack_id}",
        data=body.encode(), method="PUT",
        headers={
            "content-type": "application/json",
            # The Lambda's answer carries no credentials: moto takes the account from this header
            # and the region from the credential scope of an Authorization header.
            "x-moto-account-id": gbl["account_id"],
            "authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261127/"
                             f"{gbl['region']}/cloudformation/aws4_request, SignedHeaders=host, Signature=0",
        })
    with urllib.request.urlopen(request) as response:
        assert response.status < 300, response.status


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[2] == "builds":
        for name in sys.argv[3:]:
            builds(sys.argv[1], name)
    elif len(sys.argv) == 3 and sys.argv[2] == "reset":
        reset(sys.argv[1])
    elif len(sys.argv) == 3 and sys.argv[2] == "release":
        release(sys.argv[1])
    else:
        sys.exit(__doc__)
