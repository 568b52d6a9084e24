"""The stand-in Jenkins ends every build, against a moto of its own: a deployer build uploads the
real GBL-DEPLOYER template (seed/templates/deployer.yaml, a link to infra/deployer.yaml) with
parameters moto deploys, and ends SUCCESS; a build whose upload fails ends FAILURE with the
reason in the stand-in's log, instead of "building" forever.

    .venv/bin/python -m unittest demo/jenkins/test_stand_in_jenkins.py

Needs the moto virtualenv (scripts/lib.sh ensure_moto): its python runs this, its moto_server
(or $MOTO_SERVER) is started on a free port. Standard library and boto3 only.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "seed"))
import seed  # noqa: E402

GBL = "444444444444"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, check, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            value = check()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class StandInJenkins(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="eu-west-1")
        cls.dir = tempfile.TemporaryDirectory()
        tmp = Path(cls.dir.name)
        moto_port, cls.port = free_port(), free_port()
        cls.endpoint = f"http://127.0.0.1:{moto_port}"
        moto = os.environ.get("MOTO_SERVER") or str(Path(sys.executable).with_name("moto_server"))
        cls.moto_log = open(tmp / "moto.log", "w")
        cls.moto = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(moto_port)],
                                    stdout=cls.moto_log, stderr=subprocess.STDOUT)
        wait_for("moto", lambda: urllib.request.urlopen(cls.endpoint + "/moto-api/").status == 200)
        # The demo's config, pointed at this moto and this stand-in (as scripts/lib.sh demo_config).
        config = (ROOT / "config/demo.toml").read_text() \
            .replace("http://127.0.0.1:5055", cls.endpoint) \
            .replace("http://127.0.0.1:5057", f"http://127.0.0.1:{cls.port}")
        cls.config = tmp / "demo.toml"
        cls.config.write_text(config)
        subprocess.run([sys.executable, str(ROOT / "seed/seed.py"), str(cls.config)], check=True,
                       stdout=subprocess.DEVNULL)
        cls.log_path = tmp / "jenkins.log"
        cls.log = open(cls.log_path, "w")
        cls.jenkins = subprocess.Popen(
            [sys.executable, str(ROOT / "demo/jenkins/stand_in_jenkins.py"), str(cls.config),
             "--port", str(cls.port), "--no-schedule"], stdout=cls.log, stderr=subprocess.STDOUT)
        wait_for("the stand-in Jenkins", lambda: cls.get("/stand-in/state") is not None)
        cls.aws = seed.session(cls.endpoint, "eu-west-1", GBL)

    @classmethod
    def tearDownClass(cls):
        for process in (cls.jenkins, cls.moto):
            process.terminate()
            process.wait(10)
        cls.log.close()
        cls.moto_log.close()
        cls.dir.cleanup()

    @classmethod
    def get(cls, path, method="GET"):
        request = urllib.request.Request(f"http://127.0.0.1:{cls.port}{path}", method=method)
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)

    def build(self, job, result, duration_ms=300):
        """Starts a build and waits for its end; its last JSON."""
        started = self.get(f"/stand-in/start?job={job}&branch=master&duration_ms={duration_ms}&result={result}",
                           "POST")

        def ended():
            for b in self.get("/stand-in/state")[started["job"]]["builds"]:
                if b["number"] == started["number"] and not b["building"]:
                    return b
            return None
        return started["build"], wait_for(f"{started['build']} to end", ended, 15)

    def test_a_deployer_build_uploads_the_real_template_and_succeeds(self):
        build_id, build = self.build("deployer", "SUCCESS")
        self.assertEqual(build["result"], "SUCCESS")
        s3 = self.aws.client("s3", endpoint_url=self.endpoint)
        folder = f"builds/deployer/{build_id}/"

        def read(name):
            return s3.get_object(Bucket="deployer-artifacts", Key=folder + name)["Body"].read().decode()
        template = read("template.yaml")
        self.assertEqual(template, (ROOT / "infra/deployer.yaml").read_text())
        values = {**json.loads(read("parameters.json")), **json.loads(read("parameters.GBL.json"))}
        self.assertIn("VpcId", values)
        # What the deployer would do with it: GBL-DEPLOYER (seeded) updated to this build.
        cfn = self.aws.client("cloudformation", endpoint_url=self.endpoint)
        cfn.create_change_set(StackName="GBL-DEPLOYER", ChangeSetName="test", ChangeSetType="UPDATE",
                              TemplateBody=template, Capabilities=["CAPABILITY_IAM"],
                              Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()])
        cfn.execute_change_set(StackName="GBL-DEPLOYER", ChangeSetName="test")

        def settled():
            stack = cfn.describe_stacks(StackName="GBL-DEPLOYER")["Stacks"][0]
            return None if stack["StackStatus"].endswith("_IN_PROGRESS") else stack
        # The local AWS, like AWS, takes its time over the update.
        stack = wait_for("GBL-DEPLOYER to be updated", settled, 30)
        self.assertEqual(stack["StackStatus"], "UPDATE_COMPLETE")
        self.assertIn({"ParameterKey": "ImageId", "ParameterValue": values["ImageId"]}, stack["Parameters"])

    def test_z_a_failed_upload_ends_the_build_as_failure_with_its_reason_logged(self):
        # Last (unittest runs tests by name): the bucket goes away, so the upload fails.
        bucket = self.aws.resource("s3", endpoint_url=self.endpoint).Bucket("deployer-artifacts")
        bucket.objects.all().delete()
        bucket.delete()
        build_id, build = self.build("web", "SUCCESS")
        self.assertEqual(build["result"], "FAILURE")
        self.assertFalse(build["building"])
        log = wait_for("the reason in the log", lambda: (lambda t: t if f"{build_id}: FAILURE" in t else None)(
            self.log_path.read_text()), 5)
        self.assertIn("NoSuchBucket", log)


if __name__ == "__main__":
    unittest.main()
