"""The local AWS's CloudFormation against what AWS does, through boto3 (the AWS SDK for Python).

Each test names the AWS behaviour it stands for. Run: .venv/bin/python -m unittest demo/local_aws/test_local_aws.py
"""

import json
import os
import socket
import subprocess
import sys
import time
import unittest
import urllib.request
import uuid

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def template(resources: dict, outputs: dict | None = None, parameters: dict | None = None) -> str:
    t: dict = {"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources}
    if outputs:
        t["Outputs"] = outputs
    if parameters:
        t["Parameters"] = parameters
    return json.dumps(t)


def topic(name: str = "Topic", **extra) -> dict:
    return {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": name}, **extra}


THREE = template(
    {
        "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Fn::Sub": "${AWS::StackName}-q"}}},
        "Topic": topic("t", DependsOn="Queue"),
        "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": {"Fn::Sub": "${AWS::StackName}-b"}, "Tags": [{"Key": "q", "Value": {"Fn::GetAtt": ["Queue", "Arn"]}}]}},
    },
    parameters={"Size": {"Type": "String", "Default": "1"}},
)


class LocalAws(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.port = free_port()
        cls.url = f"http://127.0.0.1:{cls.port}"
        cls.log = open(os.path.join(os.environ.get("TMPDIR", "/tmp"), f"local-aws-{cls.port}.log"), "w")
        cls.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "local_aws.py"), "-p", str(cls.port), "--pace", "0.05"],
            stdout=cls.log, stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(cls.url + "/_local/state", timeout=1)
                break
            except Exception:
                if time.time() > deadline or cls.proc.poll() is not None:
                    raise RuntimeError("the local AWS did not start")
                time.sleep(0.2)

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        cls.proc.wait(10)
        cls.log.close()

    def setUp(self):
        self.control("POST", "/moto-api/reset", {})
        self.control("POST", "/_local/pace", {"seconds": 0.05})
        self.control("POST", "/_local/events-page", {"size": 100})
        kw = dict(endpoint_url=self.url, region_name="eu-west-1", aws_access_key_id="testing",
                  aws_secret_access_key="testing", config=Config(retries={"max_attempts": 1}))
        self.cfn = boto3.client("cloudformation", **kw)
        self.sqs = boto3.client("sqs", **kw)
        self.sns = boto3.client("sns", **kw)

    def control(self, method: str, path: str, body) -> dict:
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), method=method,
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            text = r.read()
        return json.loads(text) if text.strip().startswith(b"{") else {}

    def status(self, name: str) -> str:
        return self.cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]

    def wait(self, name: str, timeout: float = 30) -> str:
        deadline = time.time() + timeout
        while True:
            status = self.status(name)
            if not status.endswith("_IN_PROGRESS"):
                return status
            if time.time() > deadline:
                self.fail(f"{name} still {status}")
            time.sleep(0.05)

    def events(self, name: str) -> list:
        return self.cfn.describe_stack_events(StackName=name)["StackEvents"]

    # -- time and events ----------------------------------------------------------------------

    def test_create_takes_time_resource_by_resource_in_dependency_order(self):
        """AWS: CREATE_IN_PROGRESS while resources are made, in dependency order; events newest first."""
        self.control("POST", "/_local/pace", {"seconds": 0.3})
        self.cfn.create_stack(StackName="s", TemplateBody=THREE)
        self.assertEqual(self.status("s"), "CREATE_IN_PROGRESS")
        self.assertEqual(self.wait("s"), "CREATE_COMPLETE")
        events = self.events("s")
        self.assertEqual(events[0]["ResourceStatus"], "CREATE_COMPLETE")
        self.assertEqual(events[0]["LogicalResourceId"], "s")
        oldest_first = events[::-1]
        done = [e["LogicalResourceId"] for e in oldest_first if e["ResourceStatus"] == "CREATE_COMPLETE" and e["LogicalResourceId"] != "s"]
        self.assertEqual(done[0], "Queue")  # Topic (DependsOn) and Bucket (GetAtt) wait for it
        self.assertEqual(sorted(done), ["Bucket", "Queue", "Topic"])
        queue = [e for e in oldest_first if e["LogicalResourceId"] == "Queue"]
        self.assertEqual([e["ResourceStatus"] for e in queue], ["CREATE_IN_PROGRESS", "CREATE_IN_PROGRESS", "CREATE_COMPLETE"])
        self.assertEqual(queue[0].get("PhysicalResourceId", ""), "")
        self.assertTrue(queue[2]["PhysicalResourceId"])
        self.assertEqual(queue[2]["ResourceType"], "AWS::SQS::Queue")
        stamps = [e["Timestamp"] for e in oldest_first]
        self.assertEqual(stamps, sorted(stamps))
        self.assertGreater((stamps[-1] - stamps[0]).total_seconds(), 0.6)

    def test_events_come_in_pages(self):
        """AWS DescribeStackEvents: pages joined by NextToken."""
        self.control("POST", "/_local/events-page", {"size": 4})
        self.cfn.create_stack(StackName="s", TemplateBody=THREE)
        self.wait("s")
        first = self.cfn.describe_stack_events(StackName="s")
        self.assertEqual(len(first["StackEvents"]), 4)
        self.assertIn("NextToken", first)
        pages = self.cfn.get_paginator("describe_stack_events").paginate(StackName="s")
        ids = [e["EventId"] for p in pages for e in p["StackEvents"]]
        self.assertEqual(len(ids), len(set(ids)))
        self.assertEqual(len(ids), 11)  # stack in progress + 3 x 3 + stack complete

    def test_events_reach_the_notification_topics(self):
        """AWS NotificationARNs: every stack event is published to the topics."""
        arn = self.sns.create_topic(Name="events")["TopicArn"]
        q = self.sqs.create_queue(QueueName="events")["QueueUrl"]
        qarn = self.sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=qarn)
        self.cfn.create_stack(StackName="s", TemplateBody=THREE, NotificationARNs=[arn])
        self.wait("s")
        got = []
        for _ in range(10):
            msgs = self.sqs.receive_message(QueueUrl=q, MaxNumberOfMessages=10).get("Messages", [])
            got += msgs
            if not msgs:
                break
        bodies = [json.loads(m["Body"])["Message"] for m in got]
        self.assertEqual(len(bodies), 11)
        self.assertTrue(any("LogicalResourceId='Queue'" in b and "ResourceStatus='CREATE_COMPLETE'" in b for b in bodies))

    # -- failures and rollbacks ---------------------------------------------------------------

    def test_a_failed_create_rolls_back_to_rollback_complete(self):
        """AWS: a resource that fails to create rolls the stack back: ROLLBACK_COMPLETE."""
        body = template({"Queue": {"Type": "AWS::SQS::Queue"},
                         "Topic": topic(Metadata={"LocalAws": {"Fail": "Resource handler returned message: \"bad\""}}, DependsOn="Queue")})
        self.cfn.create_stack(StackName="s", TemplateBody=body)
        self.assertEqual(self.wait("s"), "ROLLBACK_COMPLETE")
        events = self.events("s")
        failed = [e for e in events if e["ResourceStatus"] == "CREATE_FAILED"]
        self.assertEqual(failed[0]["LogicalResourceId"], "Topic")
        self.assertIn("bad", failed[0]["ResourceStatusReason"])
        self.assertTrue(any(e["LogicalResourceId"] == "Queue" and e["ResourceStatus"] == "DELETE_COMPLETE" for e in events))
        with self.assertRaises(ClientError) as e:
            self.cfn.update_stack(StackName="s", TemplateBody=THREE)
        self.assertIn("ROLLBACK_COMPLETE state and can not be updated", str(e.exception))

    def test_a_failed_update_puts_the_previous_template_and_parameters_back(self):
        """AWS: UPDATE_ROLLBACK_COMPLETE, with the stack as it was before the update."""
        self.cfn.create_stack(StackName="s", TemplateBody=THREE, Parameters=[{"ParameterKey": "Size", "ParameterValue": "1"}])
        self.wait("s")
        new = json.loads(THREE)
        new["Resources"]["Topic"]["Metadata"] = {"LocalAws": {"Fail": "Received 0 SUCCESS signal(s) out of 1."}}
        new["Resources"]["Extra"] = {"Type": "AWS::SQS::Queue"}
        self.cfn.update_stack(StackName="s", TemplateBody=json.dumps(new), Parameters=[{"ParameterKey": "Size", "ParameterValue": "2"}])
        self.assertEqual(self.wait("s"), "UPDATE_ROLLBACK_COMPLETE")
        stack = self.cfn.describe_stacks(StackName="s")["Stacks"][0]
        self.assertEqual(stack["Parameters"][0]["ParameterValue"], "1")
        self.assertNotIn("Extra", json.dumps(self.cfn.get_template(StackName="s")["TemplateBody"]))
        reasons = [e.get("ResourceStatusReason", "") for e in self.events("s")]
        self.assertIn("Received 0 SUCCESS signal(s) out of 1.", reasons)

    def test_a_failed_update_puts_the_previous_tags_back_even_where_moto_cannot_undo_a_resource(self):
        """AWS: after UPDATE_ROLLBACK_COMPLETE the stack has its previous tags (and parameters)."""
        self.cfn.create_stack(StackName="s", TemplateBody=THREE, Tags=[{"Key": "deployer:build", "Value": "b-1"}])
        self.wait("s")
        new = json.loads(THREE)
        new["Resources"]["Dlq"] = {"Type": "AWS::SQS::Queue", "Metadata": {"LocalAws": {"Fail": "no"}},
                                   "Properties": {"QueueName": "dlq", "MessageRetentionPeriod": 1209601}}
        for _ in range(2):  # the second time, moto cannot delete the queue it made again
            self.cfn.update_stack(StackName="s", TemplateBody=json.dumps(new), Tags=[{"Key": "deployer:build", "Value": "b-2"}])
            self.assertEqual(self.cfn.describe_stacks(StackName="s")["Stacks"][0]["Tags"][0]["Value"], "b-2")
            self.assertEqual(self.wait("s"), "UPDATE_ROLLBACK_COMPLETE")
            self.assertEqual(self.cfn.describe_stacks(StackName="s")["Stacks"][0]["Tags"], [{"Key": "deployer:build", "Value": "b-1"}])
        self.assertNotIn("Dlq", json.dumps(self.cfn.get_template(StackName="s")["TemplateBody"]))

    def test_a_rollback_that_fails_is_continued_skipping_the_resource(self):
        """AWS: UPDATE_ROLLBACK_FAILED; ContinueUpdateRollback with ResourcesToSkip completes it."""
        self.cfn.create_stack(StackName="s", TemplateBody=THREE)
        self.wait("s")
        new = json.loads(THREE)
        new["Resources"]["Topic"]["Properties"]["TopicName"] = "t2"
        new["Resources"]["Bucket"]["Metadata"] = {"LocalAws": {"Fail": "boom"}}
        self.control("POST", "/_local/faults", {"stack": "s", "resource": "Topic", "on": "rollback", "reason": "cannot go back"})
        self.cfn.update_stack(StackName="s", TemplateBody=json.dumps(new))
        self.assertEqual(self.wait("s"), "UPDATE_ROLLBACK_FAILED")
        failed = [r for r in self.cfn.describe_stack_resources(StackName="s")["StackResources"]
                  if r["ResourceStatus"].endswith("_FAILED")]
        self.assertEqual([(r["LogicalResourceId"], r.get("ResourceStatusReason")) for r in failed], [("Topic", "cannot go back")])
        summaries = self.cfn.list_stack_resources(StackName="s")["StackResourceSummaries"]
        self.assertEqual([r["LogicalResourceId"] for r in summaries if r["ResourceStatus"] == "UPDATE_FAILED"], ["Topic"])
        with self.assertRaises(ClientError):
            self.cfn.update_stack(StackName="s", TemplateBody=THREE)
        self.cfn.continue_update_rollback(StackName="s", ResourcesToSkip=["Topic"])
        self.assertEqual(self.wait("s"), "UPDATE_ROLLBACK_COMPLETE")
        with self.assertRaises(ClientError):
            self.cfn.continue_update_rollback(StackName="s")

    def test_an_executed_change_set_gives_the_stack_its_template_parameters_and_tags(self):
        """AWS ExecuteChangeSet: the stack takes the change set's template, parameters and tags."""
        self.cfn.create_stack(StackName="s", TemplateBody=THREE, Parameters=[{"ParameterKey": "Size", "ParameterValue": "1"}])
        self.wait("s")
        new = json.loads(THREE)
        new["Resources"]["Extra"] = {"Type": "AWS::SQS::Queue", "Metadata": {"LocalAws": {"Fail": "no"}}}
        self.cfn.create_change_set(StackName="s", ChangeSetName="c", ChangeSetType="UPDATE", TemplateBody=json.dumps(new),
                                   Parameters=[{"ParameterKey": "Size", "ParameterValue": "2"}], Tags=[{"Key": "k", "Value": "v"}])
        self.cfn.execute_change_set(StackName="s", ChangeSetName="c")
        self.assertEqual(self.wait("s"), "UPDATE_ROLLBACK_COMPLETE")  # the marker on Extra
        new["Resources"]["Extra"].pop("Metadata")
        self.cfn.create_change_set(StackName="s", ChangeSetName="d", ChangeSetType="UPDATE", TemplateBody=json.dumps(new),
                                   Parameters=[{"ParameterKey": "Size", "ParameterValue": "2"}], Tags=[{"Key": "k", "Value": "v"}])
        changes = self.cfn.describe_change_set(StackName="s", ChangeSetName="d")["Changes"]
        got = sorted((c["ResourceChange"]["Action"], c["ResourceChange"]["LogicalResourceId"]) for c in changes)
        # AWS: the new queue is added; a changed parameter modifies the resources that use it.
        self.assertIn(("Add", "Extra"), got)
        self.cfn.execute_change_set(StackName="s", ChangeSetName="d")
        self.assertEqual(self.wait("s"), "UPDATE_COMPLETE")
        stack = self.cfn.describe_stacks(StackName="s")["Stacks"][0]
        self.assertEqual(stack["Parameters"][0]["ParameterValue"], "2")
        self.assertEqual(stack["Tags"], [{"Key": "k", "Value": "v"}])
        self.assertIn("Extra", json.dumps(self.cfn.get_template(StackName="s")["TemplateBody"]))

    def test_a_change_set_lists_what_a_parameter_change_modifies_and_what_it_replaces(self):
        """AWS DescribeChangeSet: Modify for resources whose properties (or parameters) change."""
        body = template({"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Ref": "Q"}}},
                         "Topic": topic("t"),
                         "Param": {"Type": "AWS::SSM::Parameter", "Properties": {"Name": "p", "Type": "String", "Value": {"Ref": "V"}}}},
                        parameters={"Q": {"Type": "String"}, "V": {"Type": "String"}})
        self.cfn.create_stack(StackName="s", TemplateBody=body, Parameters=[
            {"ParameterKey": "Q", "ParameterValue": "q1"}, {"ParameterKey": "V", "ParameterValue": "v1"}])
        self.wait("s")
        self.cfn.create_change_set(StackName="s", ChangeSetName="c", ChangeSetType="UPDATE", UsePreviousTemplate=True,
                                   Parameters=[{"ParameterKey": "Q", "ParameterValue": "q2"},
                                               {"ParameterKey": "V", "ParameterValue": "v2"}])
        changes = {c["ResourceChange"]["LogicalResourceId"]: c["ResourceChange"]
                   for c in self.cfn.describe_change_set(StackName="s", ChangeSetName="c")["Changes"]}
        self.assertEqual(sorted(changes), ["Param", "Queue"])
        self.assertEqual(changes["Param"]["Action"], "Modify")
        self.assertEqual(changes["Param"]["Replacement"], "False")
        self.assertEqual(changes["Queue"]["Replacement"], "True")  # a new QueueName is a new queue
        self.assertTrue(changes["Queue"]["PhysicalResourceId"])

    # -- cancel and busy stacks ---------------------------------------------------------------

    def test_cancel_rolls_the_update_back_and_is_refused_in_other_states(self):
        """AWS CancelUpdateStack: only in UPDATE_IN_PROGRESS; the update rolls back."""
        self.cfn.create_stack(StackName="s", TemplateBody=THREE)
        with self.assertRaises(ClientError) as e:
            self.cfn.cancel_update_stack(StackName="s")
        self.assertIn("CancelUpdateStack cannot be called from current stack status", str(e.exception))
        self.wait("s")
        self.control("POST", "/_local/pace", {"seconds": 0.5})
        new = json.loads(THREE)
        for r in new["Resources"].values():
            r.setdefault("Metadata", {})["v"] = 2
        self.cfn.update_stack(StackName="s", TemplateBody=json.dumps(new))
        time.sleep(0.6)
        self.cfn.cancel_update_stack(StackName="s")
        self.assertEqual(self.wait("s"), "UPDATE_ROLLBACK_COMPLETE")
        self.assertIn("Resource update cancelled", [e.get("ResourceStatusReason") for e in self.events("s")])
        self.assertNotIn('"v"', json.dumps(self.cfn.get_template(StackName="s")["TemplateBody"]))

    def test_one_operation_at_a_time(self):
        """AWS: an update while the stack is in progress is a ValidationError."""
        self.control("POST", "/_local/pace", {"seconds": 0.5})
        self.cfn.create_stack(StackName="s", TemplateBody=THREE)
        with self.assertRaises(ClientError) as e:
            self.cfn.update_stack(StackName="s", TemplateBody=THREE.replace('"t"', '"t3"'))
        self.assertEqual(e.exception.response["Error"]["Code"], "ValidationError")
        self.assertIn("is in CREATE_IN_PROGRESS state and can not be updated", str(e.exception))

    def test_the_same_token_twice_is_one_operation(self):
        """AWS ClientRequestToken: a retried request is not a second operation."""
        token = str(uuid.uuid4())
        a = self.cfn.create_stack(StackName="s", TemplateBody=THREE, ClientRequestToken=token)["StackId"]
        b = self.cfn.create_stack(StackName="s", TemplateBody=THREE, ClientRequestToken=token)["StackId"]
        self.assertEqual(a, b)
        with self.assertRaises(ClientError):
            self.cfn.create_stack(StackName="s", TemplateBody=THREE, ClientRequestToken=str(uuid.uuid4()))
        self.wait("s")
        events = self.events("s")
        self.assertEqual(sum(1 for e in events if e["ResourceStatus"] == "CREATE_IN_PROGRESS" and e["LogicalResourceId"] == "s"), 1)
        self.assertTrue(all(e.get("ClientRequestToken") == token for e in events))

    def test_delete_takes_time_then_the_stack_is_gone(self):
        self.cfn.create_stack(StackName="s", TemplateBody=THREE)
        stack_id = self.cfn.describe_stacks(StackName="s")["Stacks"][0]["StackId"]
        self.wait("s")
        self.control("POST", "/_local/pace", {"seconds": 0.3})
        self.cfn.delete_stack(StackName="s")
        self.assertEqual(self.status("s"), "DELETE_IN_PROGRESS")
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                self.status("s")
                time.sleep(0.1)
            except ClientError:
                break
        self.assertEqual(self.cfn.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"], "DELETE_COMPLETE")

    def test_deleting_a_stack_being_created_cancels_the_create(self):
        """AWS: DeleteStack in CREATE_IN_PROGRESS cancels the create and deletes what it made."""
        self.control("POST", "/_local/pace", {"seconds": 0.3})
        stack_id = self.cfn.create_stack(StackName="s", TemplateBody=THREE)["StackId"]
        time.sleep(0.5)
        self.cfn.delete_stack(StackName="s")
        self.wait_gone("s")
        events = self.cfn.describe_stack_events(StackName=stack_id)["StackEvents"]
        self.assertEqual(events[0]["ResourceStatus"], "DELETE_COMPLETE")
        self.assertIn("Resource creation cancelled", [e.get("ResourceStatusReason") for e in events])

    # -- exports and imports ------------------------------------------------------------------

    def exporter_and_importer(self):
        net = template({"Queue": {"Type": "AWS::SQS::Queue"}},
                       outputs={"Vpc": {"Value": "vpc-1", "Export": {"Name": {"Fn::Sub": "${Env}-vpc"}}}},
                       parameters={"Env": {"Type": "String"}})
        web = template({"Topic": topic(Properties={"TopicName": {"Fn::ImportValue": {"Fn::Sub": "${Env}-vpc"}}})},
                       parameters={"Env": {"Type": "String"}})
        env = [{"ParameterKey": "Env", "ParameterValue": "dev"}]
        self.cfn.create_stack(StackName="net", TemplateBody=net, Parameters=env)
        self.wait("net")
        self.cfn.create_stack(StackName="web", TemplateBody=web, Parameters=env)
        self.wait("web")
        return net, web

    def test_list_imports_and_current_exports(self):
        """AWS ListImports: the importing stacks; an export nobody imports is an error."""
        self.exporter_and_importer()
        self.assertEqual(self.cfn.list_imports(ExportName="dev-vpc")["Imports"], ["web"])
        self.assertEqual([e["Name"] for e in self.cfn.list_exports()["Exports"]], ["dev-vpc"])
        self.cfn.delete_stack(StackName="web")
        self.wait_gone("web")
        with self.assertRaises(ClientError) as e:
            self.cfn.list_imports(ExportName="dev-vpc")
        self.assertIn("is not imported by any stack", str(e.exception))

    def wait_gone(self, name):
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                self.status(name)
            except ClientError:
                return
            time.sleep(0.05)
        self.fail(f"{name} not deleted")

    def test_an_export_in_use_cannot_be_deleted_or_changed(self):
        """AWS: "Export X cannot be deleted as it is in use by Y" (update rolls back; delete keeps the stack)."""
        net, _ = self.exporter_and_importer()
        env = [{"ParameterKey": "Env", "ParameterValue": "dev"}]
        dropped = json.loads(net)
        del dropped["Outputs"]
        self.cfn.update_stack(StackName="net", TemplateBody=json.dumps(dropped), Parameters=env)
        self.assertEqual(self.wait("net"), "UPDATE_ROLLBACK_COMPLETE")
        reasons = [e.get("ResourceStatusReason") or "" for e in self.events("net")]
        self.assertIn("Export dev-vpc cannot be deleted as it is in use by web", reasons)
        self.assertEqual([e["Name"] for e in self.cfn.list_exports()["Exports"]], ["dev-vpc"])
        changed = json.loads(net)
        changed["Outputs"]["Vpc"]["Value"] = "vpc-2"
        self.cfn.update_stack(StackName="net", TemplateBody=json.dumps(changed), Parameters=env)
        self.assertEqual(self.wait("net"), "UPDATE_ROLLBACK_COMPLETE")
        self.assertIn("Export dev-vpc cannot be updated as it is in use by web",
                      [e.get("ResourceStatusReason") or "" for e in self.events("net")])
        self.cfn.delete_stack(StackName="net")
        time.sleep(0.3)
        stack = self.cfn.describe_stacks(StackName="net")["Stacks"][0]
        self.assertEqual(stack["StackStatus"], "UPDATE_ROLLBACK_COMPLETE")
        self.assertIn("in use by web", stack["StackStatusReason"])

    # -- throttling ---------------------------------------------------------------------------

    def test_a_call_budget_throttles_like_aws(self):
        """AWS: beyond an account's rate, "Throttling: Rate exceeded" (which the SDK retries)."""
        self.control("POST", "/_local/throttle", {"account": "123456789012", "calls": 2, "per_seconds": 60})
        self.cfn.list_stacks()
        self.cfn.list_stacks()
        with self.assertRaises(ClientError) as e:
            self.cfn.list_stacks()
        self.assertEqual(e.exception.response["Error"]["Code"], "Throttling")
        # Each protocol in its own words: SQS (JSON), S3 (SlowDown).
        with self.assertRaises(ClientError) as e:
            self.sqs.list_queues()
        self.assertIn(e.exception.response["Error"]["Code"], ("ThrottlingException", "Throttling"))
        s3 = boto3.client("s3", endpoint_url=self.url, region_name="eu-west-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing", config=Config(retries={"max_attempts": 1}))
        with self.assertRaises(ClientError) as e:
            s3.list_buckets()
        self.assertEqual(e.exception.response["Error"]["Code"], "SlowDown")
        self.control("POST", "/_local/throttle", {"account": "123456789012", "calls": None})
        self.cfn.list_stacks()


if __name__ == "__main__":
    unittest.main()
