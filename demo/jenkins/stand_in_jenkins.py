#!/usr/bin/env python3
"""A stand-in Jenkins for the deployer's demo and tests: demo and test infrastructure only.

Answers the parts of Jenkins' JSON API the deployer reads, shaped after Jenkins 2.440 LTS output
(`_class` names, `builds[number,url,building,timestamp,estimatedDuration,duration,result]`,
multibranch folders as `jobs[...]` with URL-encoded branch names, `inQueue` / `queueItem`, the
`X-Jenkins` header, HTTP basic auth with a user and an API token, 401 with `WWW-Authenticate`),
runs a build every `--period` seconds for the seeded projects (each with an estimated duration
from its last runs, sometimes over it, now and then a failure), and when a build succeeds uploads
its artifacts (template and parameters, as the seed writes them) into the emulated S3 — so a
build is seen progressing, finishing, and becoming a deployable deploy config.

    stand_in_jenkins.py <deployer config.toml> --port 5057 [--period 60] [--duration 45]
                        [--user deployer] [--token-env JENKINS_TOKEN] [--no-schedule]

Test control (not Jenkins): POST /stand-in/start?job=<job>&branch=<b>&duration_ms=<n>&result=<R>
starts a build now; GET /stand-in/state shows everything. It is also the demo's team chat: the
deployer's webhook posts to POST /stand-in/chat (Slack's {"text": …}), GET /stand-in/chat lists
what arrived.
"""
import argparse
import base64
import json
import os
import random
import sys
import threading
import time
import tomllib
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlparse

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "seed"))
import seed  # noqa: E402  (the seed's build writer: the same artifacts a real build uploads)

JENKINS_VERSION = "2.440.3"
LOCK = threading.Lock()
# The demo's chat: what the deployer's webhook posted, in arrival order.
CHAT = []


class Build:
    def __init__(self, job, number, duration_ms, estimate_ms, result):
        self.job = job
        self.number = number
        self.started = int(time.time() * 1000)
        self.duration_ms = duration_ms
        self.estimate_ms = estimate_ms
        self.final_result = result
        self.result = None
        # Why a build meant to succeed failed (its upload), as its console log would say.
        self.failure = None
        self.finished_at = None

    @property
    def building(self):
        return self.result is None

    def json(self, base):
        elapsed = int(time.time() * 1000) - self.started
        return {
            "_class": self.job.build_class,
            "building": self.building,
            "duration": 0 if self.building else self.duration_ms,
            "estimatedDuration": self.estimate_ms,
            "number": self.number,
            "result": self.result,
            "timestamp": self.started,
            "url": f"{base}{self.job.path}{self.number}/",
            **({"executor": {"_class": "hudson.model.OneOffExecutor", "progress": min(99, elapsed * 100 // max(1, self.estimate_ms))}} if self.building else {}),
        }


class Job:
    """A freestyle job, or one branch of a multibranch pipeline."""

    def __init__(self, project, branch, folder=None):
        self.project = project
        self.branch = branch
        self.folder = folder
        self.name = quote(branch, safe="") if folder else project
        self.path = f"job/{folder}/job/{self.name}/" if folder else f"job/{project}/"
        self.build_class = "org.jenkinsci.plugins.workflow.job.WorkflowRun" if folder else "hudson.model.FreeStyleBuild"
        self.job_class = "org.jenkinsci.plugins.workflow.job.WorkflowJob" if folder else "hudson.model.FreeStyleProject"
        self.builds = []
        self.next_number = 1
        self.queued_since = None

    def estimate(self, default_ms):
        done = [b.duration_ms for b in self.builds if not b.building][-3:]
        return sum(done) // len(done) if done else default_ms

    def json(self, base):
        color = "blue"
        if self.builds:
            last = self.builds[-1]
            color = {"SUCCESS": "blue", "FAILURE": "red", "ABORTED": "aborted"}.get(last.result or "", "blue")
            if last.building:
                color += "_anime"
        out = {
            "_class": self.job_class,
            "name": self.name,
            "url": f"{base}{self.path}",
            "color": color,
            "inQueue": self.queued_since is not None,
            "queueItem": None,
            "builds": [b.json(base) for b in reversed(self.builds[-10:])],
        }
        if self.queued_since is not None:
            out["queueItem"] = {"_class": "hudson.model.Queue$WaitingItem", "blocked": False, "id": 1000 + self.next_number,
                                "inQueueSince": self.queued_since, "why": "Waiting for next available executor"}
        return out


class Jenkins:
    def __init__(self, config_path, duration_s):
        self.config_path = config_path
        self.config = tomllib.loads(Path(config_path).read_text())
        self.default_ms = int(duration_s * 1000)
        self.jobs = {}      # path ("job/network/", "job/web/job/master/") -> Job
        self.folders = {}   # folder name -> [Job]
        art = self.config["artifacts"]
        prefix = art.get("prefix", "").strip("/")
        self.prefix = prefix + "/" if prefix else ""
        envs = {e["name"]: e for e in self.config["environments"]}
        env = envs[art["environment"]]
        seed.ACCOUNTS = {name: e["account_id"] for name, e in envs.items()}
        self.bucket = art["bucket"]
        self.s3 = seed.session(env["endpoint_url"], env["region"], env["account_id"]).client(
            "s3", endpoint_url=env["endpoint_url"], config=seed.boto3.session.Config(s3={"addressing_style": "path"}))
        # The images new builds bake, as the seed's builds do.
        seed.IMAGES[:] = seed.images(seed.session(env["endpoint_url"], env["region"], env["account_id"]).client(
            "ec2", endpoint_url=env["endpoint_url"]))
        projects = {p["name"] for p in self.config["projects"]}
        # The deployer's builds write parameters.GBL.json with GBL-DEPLOYER's place (network,
        # certificate, names), as the seed's do: found in the emulated GBL account the same way.
        if "deployer" in projects and "GBL" in envs:
            seed.GBL_PLACE = seed.gbl_place(envs["GBL"], self.bucket,
                                            [e["role_arn"] for e in envs.values() if e.get("role_arn")])
        # network: a freestyle job; the others: multibranch pipelines (a folder of branch jobs).
        for project, branches in seed.BRANCHES.items():
            if project not in projects:
                continue
            for branch, numbers in branches:
                if project == "network":
                    if branch != "master":
                        continue
                    job = Job(project, branch)
                else:
                    job = Job(project, branch, folder=project)
                    self.folders.setdefault(project, []).append(job)
                job.next_number = self.next_free(project, branch, max(numbers) + 1)
                self.jobs[job.path] = job

    def next_free(self, project, branch, start):
        """The first build number with no folder in the bucket (the seed leaves some half-written)."""
        listing = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=f"{self.prefix}{project}/", Delimiter="/")
        taken = {p["Prefix"].rstrip("/").rsplit("/", 1)[-1] for p in listing.get("CommonPrefixes", [])}
        number = start
        while f"{project}-{branch}-{number}" in taken:
            number += 1
        return number

    def start(self, job, duration_ms=None, result=None):
        with LOCK:
            estimate = job.estimate(self.default_ms)
            if duration_ms is None:
                duration_ms = int(estimate * random.uniform(0.8, 1.3))  # sometimes over the estimate
            if result is None:
                result = "FAILURE" if random.random() < 0.15 else "SUCCESS"
            build = Build(job, job.next_number, duration_ms, estimate, result)
            job.next_number += 1
            job.builds.append(build)
            job.queued_since = None
        threading.Timer(duration_ms / 1000, self.finish, args=(build,)).start()
        return build

    def finish(self, build):
        """The build's end (in its timer's thread). Whatever happens here, the build ends: a
        failed upload is the build's last step failing, so it ends FAILURE, with the reason in
        this stand-in's log (a real build's console) — never "building" forever."""
        result, failure = build.final_result, None
        try:
            if result == "SUCCESS":
                self.upload(build.job, build.number)
        except Exception as e:  # noqa: BLE001  (any failure of the step fails the build)
            result, failure = "FAILURE", f"{type(e).__name__}: {e}"
            log(f"{build.job.project}-{build.job.branch}-{build.number}: FAILURE: uploading its deploy config "
                f"failed: {failure}\n{traceback.format_exc().rstrip()}")
        finally:
            with LOCK:
                build.result = result
                build.failure = failure
                build.finished_at = int(time.time() * 1000)
        if failure is None:
            log(f"{build.job.project}-{build.job.branch}-{build.number}: {result}")

    def upload(self, job, number):
        """The build's last step: its deploy config lands in S3."""
        project, branch = job.project, job.branch
        build_id = f"{project}-{branch}-{number}"
        folder = f"{self.prefix}{project}/{build_id}/"
        template = seed.build_template(project, branch)
        common, overrides = seed.parameters(project, build_id)
        for env, values in overrides.items():
            self.s3.put_object(Bucket=self.bucket, Key=f"{folder}parameters.{env}.json", Body=json.dumps(values).encode())
        self.s3.put_object(Bucket=self.bucket, Key=folder + "parameters.json", Body=json.dumps(common, indent=2).encode())
        self.s3.put_object(Bucket=self.bucket, Key=folder + "template.yaml", Body=template.encode())

    def schedule(self, period_s):
        jobs = list(self.jobs.values())
        i = 0
        while True:
            job = jobs[i % len(jobs)]
            i += 1
            with LOCK:
                job.queued_since = int(time.time() * 1000)
            time.sleep(min(3, period_s / 4))  # a few seconds in the queue, as on a busy controller
            self.start(job)
            time.sleep(period_s)


def log(message):
    """One line (or a traceback) in the stand-in's log: its stderr, which scripts/lib.sh's
    start_jenkins writes to the log file it names."""
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def handler_for(jenkins, user, token):
    class Handler(BaseHTTPRequestHandler):
        server_version = "Jetty(10.0.20)"

        def log_message(self, fmt, *args):  # quiet: the deployer polls every few seconds
            pass

        def send(self, status, body, content_type="application/json;charset=utf-8", headers=()):
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-Jenkins", JENKINS_VERSION)
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def authorized(self):
            if not token:
                return True
            header = self.headers.get("Authorization", "")
            if header.startswith("Basic "):
                try:
                    got = base64.b64decode(header[6:]).decode()
                except ValueError:
                    return False
                return got == f"{user}:{token}"
            return False

        def base(self):
            return f"http://{self.headers.get('Host', '127.0.0.1')}/"

        def do_POST(self):
            url = urlparse(self.path)
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/stand-in/start":
                job = next((j for j in jenkins.jobs.values() if j.project == q.get("job") and j.branch == q.get("branch", j.branch)), None)
                if job is None:
                    return self.send(404, {"error": "no such job"})
                build = jenkins.start(job, int(q["duration_ms"]) if "duration_ms" in q else None, q.get("result"))
                return self.send(200, {"job": job.path, "number": build.number, "build": f"{job.project}-{job.branch}-{build.number}"})
            if url.path == "/stand-in/chat":
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    message = json.loads(self.rfile.read(length) or b"null")
                except ValueError:
                    return self.send(400, {"error": "not JSON"})
                with LOCK:
                    CHAT.append(message)
                return self.send(200, {"ok": True})
            self.send(404, b"Not Found", "text/plain")

        def do_GET(self):
            url = urlparse(self.path)
            if url.path == "/stand-in/state":
                with LOCK:
                    return self.send(200, {p: j.json(self.base()) for p, j in jenkins.jobs.items()})
            if url.path == "/stand-in/chat":
                with LOCK:
                    return self.send(200, list(CHAT))
            if not self.authorized():
                return self.send(401, b"<html><body>Authentication required</body></html>", "text/html;charset=utf-8",
                                 [("WWW-Authenticate", 'Basic realm="Jenkins"')])
            path = url.path.lstrip("/")
            if not path.endswith("api/json"):
                return self.send(404, b"Not Found", "text/plain")
            path = path[: -len("api/json")]
            base = self.base()
            with LOCK:
                if path == "":
                    jobs = [{"_class": j.job_class, "name": j.name, "url": base + j.path} for j in jenkins.jobs.values() if not j.folder]
                    jobs += [{"_class": "org.jenkinsci.plugins.workflow.multibranch.WorkflowMultiBranchProject", "name": f,
                              "url": f"{base}job/{f}/"} for f in jenkins.folders]
                    return self.send(200, {"_class": "hudson.model.Hudson", "mode": "NORMAL", "nodeName": "", "jobs": jobs})
                if path in jenkins.jobs:
                    return self.send(200, jenkins.jobs[path].json(base))
                parts = path.strip("/").split("/")
                if len(parts) == 2 and parts[0] == "job" and unquote(parts[1]) in jenkins.folders:
                    folder = unquote(parts[1])
                    return self.send(200, {
                        "_class": "org.jenkinsci.plugins.workflow.multibranch.WorkflowMultiBranchProject",
                        "name": folder, "url": f"{base}job/{folder}/",
                        "jobs": [j.json(base) for j in jenkins.folders[folder]],
                    })
            self.send(404, b"Not Found", "text/plain")

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config")
    parser.add_argument("--port", type=int, default=5057)
    parser.add_argument("--period", type=float, default=60)
    parser.add_argument("--duration", type=float, default=45)
    parser.add_argument("--user", default="deployer")
    parser.add_argument("--token-env", default="JENKINS_TOKEN")
    parser.add_argument("--no-schedule", action="store_true")
    args = parser.parse_args()
    token = os.environ.get(args.token_env, "")
    jenkins = Jenkins(args.config, args.duration)
    if not args.no_schedule:
        threading.Thread(target=jenkins.schedule, args=(args.period,), daemon=True).start()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler_for(jenkins, args.user, token))
    every = "no schedule" if args.no_schedule else f"a build every {args.period:g} s"
    print(f"stand-in Jenkins {JENKINS_VERSION} on http://127.0.0.1:{args.port} "
          f"({len(jenkins.jobs)} jobs; {every})", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
