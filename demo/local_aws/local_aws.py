"""The local AWS: moto's backends, served in-process, with CloudFormation made as strict as AWS
where the deployer depends on it.

moto answers every stack operation at once, with two stack events, and forgives what AWS refuses
(see ../../docs/local-aws.md and the design's "The local AWS"). This server runs moto's own
WSGI application and changes only what moto lacks, each rule named after the AWS documentation
it stands for (the `AWS:` lines):

- Stack operations take time: resource by resource in dependency order, at a pace this server is
  given (`--pace`, or per account through the control API); the stack stays `*_IN_PROGRESS`
  meanwhile and DescribeStackEvents lists per-resource events, newest first, paginated; the same
  events go to the stack's NotificationARNs.
- Failures roll back: a resource fails (a template's `Metadata: {LocalAws: {Fail: <reason>}}`
  on it, or a fault set through the control API); a failed create ends ROLLBACK_COMPLETE, a
  failed update UPDATE_ROLLBACK_COMPLETE with the previous template and parameters back; a fault
  `on: rollback` ends UPDATE_ROLLBACK_FAILED, which ContinueUpdateRollback (ResourcesToSkip)
  recovers.
- CancelUpdateStack, ContinueUpdateRollback, ListImports; ListExports current; an export another
  stack imports cannot be removed or changed; one operation per stack; ClientRequestToken makes a
  retry one operation.
- Throttling on demand: a call budget per account (control API), answered as AWS answers it.

IAM stays moto's: start with INITIAL_NO_AUTH_ACTION_COUNT to enforce policies. Some of its checks
are made as AWS makes them (see "IAM" below): signatures over the query and the form body as
sent, and SQS batch calls authorized as their single calls.

The control API (JSON, on the same port, never reached by the AWS SDK):
  POST /_local/pace      {"seconds": 0.5, "account": "111111111111"?, "stack": "DEV-WEB"?}
                         (a stack's pace, else its account's, else everyone's)
  POST /_local/faults    {"stack": "DEV-WEB", "resource": "Web", "on": "create|update|delete|rollback",
                          "reason": "...", "account": "…"?}
  DELETE /_local/faults
  POST /_local/throttle  {"account": "…", "calls": 5, "per_seconds": 1}   ("calls": null lifts it)
  POST /_local/events-page {"size": 100}
  GET  /_local/state     what is set, and the operations running
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from werkzeug.serving import run_simple
from werkzeug.wrappers import Request, Response

from moto.cloudformation import models as cfn_models
from moto.cloudformation import responses as cfn_responses
from moto.cloudformation.exceptions import ValidationError
from moto.core.responses import ActionResult, EmptyResult
from moto.iam.models import get_account_id_from
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

Stack = cfn_models.Stack
Event = cfn_models.Event
Backend = cfn_models.CloudFormationBackend
Response_ = cfn_responses.CloudFormationResponse

# One lock for every change this layer makes to moto's stacks (requests run on threads).
LOCK = threading.RLock()

# What moto would send to SNS itself is sent by this layer instead, event by event, when the
# event happens (moto sends its two stack events at once).
_send_to_sns = Event.sendToSns
Event.sendToSns = lambda self, account_id, region, arns: None  # type: ignore[method-assign]


# ------------------------------------------------------------------------------------------
# Settings: pace, faults, throttling — set by flags and the control API.


@dataclass
class Fault:
    stack: str
    resource: str
    on: str  # create | update | delete | rollback
    reason: str
    account: str | None = None

    def matches(self, account: str, stack: Stack, resource: str, on: str) -> bool:
        return (
            self.on == on
            and self.resource == resource
            and self.stack in (stack.name, stack.stack_id)
            and (self.account is None or self.account == account)
        )


@dataclass
class Budget:
    calls: int
    per_seconds: float
    used: list[float] = field(default_factory=list)

    def take(self) -> bool:
        now = time.monotonic()
        self.used = [t for t in self.used if now - t < self.per_seconds]
        if len(self.used) >= self.calls:
            return False
        self.used.append(now)
        return True


class Settings:
    def __init__(self, pace: float) -> None:
        self.pace = pace
        self.pace_by_account: dict[str, float] = {}
        self.pace_by_stack: dict[str, float] = {}
        self.faults: list[Fault] = []
        self.budgets: dict[str, Budget] = {}
        self.events_page = 100

    def pace_for(self, account: str, stack: str = "") -> float:
        if stack in self.pace_by_stack:
            return self.pace_by_stack[stack]
        return self.pace_by_account.get(account, self.pace)

    def fault(self, account: str, stack: Stack, resource: str, on: str, template: dict) -> str | None:
        for f in self.faults:
            if f.matches(account, stack, resource, on):
                return f.reason
        if on in ("create", "update"):
            # The template's own marker: the demo ships a build whose resource fails this way.
            meta = (template.get("Resources", {}).get(resource) or {}).get("Metadata") or {}
            local = meta.get("LocalAws") if isinstance(meta, dict) else None
            if isinstance(local, dict) and isinstance(local.get("Fail"), str):
                return local["Fail"]
        return None


SETTINGS = Settings(pace=0.0)


# ------------------------------------------------------------------------------------------
# Templates: resources in dependency order, imports, exports.


def _refs(value: Any, names: set[str], found: set[str]) -> None:
    """The resources a value refers to: Ref, Fn::GetAtt, Fn::Sub's ${X} and ${X.Attr}."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str) and inner in names:
                found.add(inner)
            elif key == "Fn::GetAtt":
                target = inner[0] if isinstance(inner, list) and inner else str(inner).split(".")[0]
                if target in names:
                    found.add(target)
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) and inner else inner
                if isinstance(text, str):
                    for m in re.finditer(r"\$\{([A-Za-z0-9]+)(?:\.[^}]*)?\}", text):
                        if m.group(1) in names:
                            found.add(m.group(1))
                if isinstance(inner, list) and len(inner) > 1:
                    _refs(inner[1], names, found)
            else:
                _refs(inner, names, found)
    elif isinstance(value, list):
        for inner in value:
            _refs(inner, names, found)


def resource_order(template: dict) -> list[str]:
    """AWS: "CloudFormation creates resources in dependency order" (DependsOn and references);
    here one at a time, ties in template order. Deletion is the reverse."""
    resources = template.get("Resources") or {}
    names = set(resources)
    deps: dict[str, set[str]] = {}
    for name, body in resources.items():
        found: set[str] = set()
        body = body or {}
        _refs({k: v for k, v in body.items() if k != "DependsOn"}, names, found)
        depends = body.get("DependsOn") or []
        if isinstance(depends, str):
            depends = [depends]
        found.update(d for d in depends if d in names)
        found.discard(name)
        deps[name] = found
    order: list[str] = []
    placed: set[str] = set()
    pending = list(resources)
    while pending:
        ready = [n for n in pending if deps[n] <= placed] or pending[:1]  # a cycle: AWS refuses it; moto did not
        for n in ready:
            order.append(n)
            placed.add(n)
            pending.remove(n)
    return order


def _resolve(value: Any, params: dict[str, str], stack: Stack | None) -> str | None:
    """An import's name where it is literal, a Ref to a parameter, a Sub or Join of those."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        key, inner = next(iter(value.items()))
        if key == "Ref" and isinstance(inner, str):
            if inner in params:
                return str(params[inner])
            if stack is not None and inner == "AWS::StackName":
                return stack.name
            if stack is not None and inner == "AWS::Region":
                return stack.region_name
            if stack is not None and inner == "AWS::AccountId":
                return stack.account_id
            return None
        if key == "Fn::Sub":
            text, extra = (inner[0], inner[1]) if isinstance(inner, list) else (inner, {})
            if not isinstance(text, str):
                return None
            missing = False

            def sub(m: re.Match) -> str:
                nonlocal missing
                name = m.group(1)
                if name in extra:
                    got = _resolve(extra[name], params, stack)
                else:
                    got = _resolve({"Ref": name}, params, stack)
                if got is None:
                    missing = True
                    return ""
                return got

            out = re.sub(r"\$\{([A-Za-z0-9:_]+)\}", sub, text)
            return None if missing else out
        if key == "Fn::Join" and isinstance(inner, list) and len(inner) == 2:
            parts = [_resolve(p, params, stack) for p in inner[1]]
            return None if None in parts else str(inner[0]).join(parts)  # type: ignore[arg-type]
    return None


def imported_names(stack: Stack) -> set[str]:
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                if key == "Fn::ImportValue":
                    name = _resolve(inner, stack.parameters, stack)
                    if name:
                        found.add(name)
                else:
                    walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    walk(stack.template_dict.get("Resources") or {})
    walk(stack.template_dict.get("Outputs") or {})
    return found


# A stack that holds its exports and imports: every stack but one that was rolled back from
# its creation or is gone.
def _live(stack: Stack) -> bool:
    return stack.status not in ("ROLLBACK_COMPLETE", "DELETE_COMPLETE", "REVIEW_IN_PROGRESS")


def exports_of(stack: Stack) -> dict[str, str]:
    try:
        return {e.name: str(e.value) for e in stack.exports}
    except Exception:  # an output moto cannot resolve: no export from it
        return {}


def importers(backend: Backend, name: str, besides: Stack | None = None) -> list[str]:
    return sorted(
        s.name
        for s in backend.stacks.values()
        if _live(s) and s is not besides and name in imported_names(s)
    )


def refresh_exports(backend: Backend) -> None:
    """AWS: ListExports answers the exports of the stacks as they are now."""
    exports = {}
    for stack in backend.stacks.values():
        if _live(stack):
            try:
                for e in stack.exports:
                    exports[e.name] = e
            except Exception:
                pass
    backend.exports.clear()
    backend.exports.update(exports)


# ------------------------------------------------------------------------------------------
# Operations: a stack's operation as a list of steps, each at its time.


BUSY = re.compile(r".*_IN_PROGRESS$")


def _event(stack: Stack, logical: str, physical: str, rtype: str, status: str, reason: str | None,
           token: str | None) -> None:
    e = Event(
        stack_id=stack.stack_id,
        stack_name=stack.name,
        logical_resource_id=logical,
        physical_resource_id=physical,
        resource_type=rtype,
        resource_status=status,
        resource_status_reason=reason,
        resource_properties=None,
    )
    e.client_request_token = token
    stack.events.append(e)
    try:
        _send_to_sns(e, stack.account_id, stack.region_name, stack.notification_arns)
    except Exception as err:  # a topic that does not exist: AWS drops the notification too
        print(f"local-aws: SNS notification not sent: {err}", file=sys.stderr)


def stack_event(stack: Stack, status: str, reason: str | None = None, token: str | None = None) -> None:
    _event(stack, stack.name, stack.stack_id, "AWS::CloudFormation::Stack", status, reason, token)


def _physical(stack: Stack, logical: str) -> str:
    try:
        resource = stack.resource_map[logical]
        return str(getattr(resource, "physical_resource_id", "") or "")
    except Exception:
        return ""


def _created(stack: Stack, logical: str) -> bool:
    try:
        resource = stack.resource_map[logical]
    except Exception:
        return True
    is_created = getattr(resource, "is_created", None)
    return bool(is_created()) if callable(is_created) else True


# moto marks a stack complete when a custom resource's provider answers; while this layer plays
# the stack's operation, the operation says when the stack is complete.
_mark_creation_complete = Stack.mark_creation_complete


def _mark_unless_playing(self: Stack) -> None:
    if self.stack_id not in OPERATIONS:
        _mark_creation_complete(self)


Stack.mark_creation_complete = _mark_unless_playing  # type: ignore[method-assign]


def _type(template: dict, logical: str) -> str:
    return str(((template.get("Resources") or {}).get(logical) or {}).get("Type", "AWS::CloudFormation::CustomResource"))


@dataclass
class Operation:
    """One stack operation in flight: what it changes, and how far it is."""

    backend: Backend
    stack: Stack
    kind: str  # CREATE | UPDATE | DELETE
    token: str | None
    account: str
    old: dict | None = None  # for updates: template, parameters, tags of the stack before
    # The plan: (kind of step, logical id); rollback plans are made when needed.
    steps: list[tuple[str, str]] = field(default_factory=list)
    done: list[tuple[str, str]] = field(default_factory=list)
    due: float = 0.0
    rolling_back: bool = False
    skip: set[str] = field(default_factory=set)
    finished: bool = False
    current: tuple[str, str, str, str] | None = None  # the resource being changed now

    @property
    def pace(self) -> float:
        return SETTINGS.pace_for(self.account, self.stack.name)


OPERATIONS: dict[str, Operation] = {}  # by stack id


def _template_resources(t: dict) -> dict:
    return t.get("Resources") or {}


def plan_update(old_t: dict, new_t: dict, old_params: dict, new_params: dict) -> list[tuple[str, str]]:
    """AWS: an update creates the new resources, updates the changed ones, then (cleanup) deletes
    the removed ones. A changed parameter counts as a change for the resources that use it."""
    old_r, new_r = _template_resources(old_t), _template_resources(new_t)
    changed_params = {k for k in set(old_params) | set(new_params) if old_params.get(k) != new_params.get(k)}
    steps: list[tuple[str, str]] = []
    for name in resource_order(new_t):
        if name not in old_r:
            steps.append(("create", name))
            continue
        refs: set[str] = set()
        _refs(new_r[name], changed_params, refs)
        if new_r[name] != old_r[name] or refs:
            steps.append(("update", name))
    for name in reversed(resource_order(old_t)):
        if name not in new_r:
            steps.append(("delete", name))
    return steps


def start(op: Operation) -> None:
    OPERATIONS[op.stack.stack_id] = op
    op.due = time.monotonic() + op.pace


def _fail_reason(op: Operation, kind: str, logical: str) -> str | None:
    on = {"create": "create", "update": "update", "delete": "delete"}[kind]
    if op.rolling_back:
        on = "rollback"
    template = op.stack.template_dict
    return SETTINGS.fault(op.account, op.stack, logical, on, template if not op.rolling_back else {})


def _verb(kind: str) -> str:
    return {"create": "CREATE", "update": "UPDATE", "delete": "DELETE"}[kind]


def step(op: Operation) -> None:
    """The next half of a resource's change (it begins, then, a pace later, it ends), or the
    end of the operation. AWS: a resource stays *_IN_PROGRESS while its handler works."""
    stack = op.stack
    if op.current is not None:
        kind, logical, rtype, physical = op.current
        if kind == "create" and not op.rolling_back and not _created(stack, logical):
            return  # a custom resource waits for its provider's answer (cfnresponse), as on AWS
        op.current = None
        verb = _verb(kind)
        reason = _fail_reason(op, kind, logical)
        if reason is not None:
            _event(stack, logical, physical, rtype, f"{verb}_FAILED", reason, op.token)
            fail(op, logical, reason, kind)
            return
        _event(stack, logical, physical, rtype, f"{verb}_COMPLETE", None, op.token)
        op.done.append((kind, logical))
        if op.kind == "UPDATE" and not op.rolling_back and op.steps and op.steps[0][0] == "delete" and kind != "delete":
            # AWS: the removed resources go in the cleanup phase, after the new ones are in.
            if not _exports_ok(op):
                return
            stack.status = "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"
            stack_event(stack, stack.status, None, op.token)
        return
    if op.steps:
        kind, logical = op.steps.pop(0)
        if kind == "delete-new":  # rolling back: a resource this operation created goes
            kind = "delete"
        old = op.old["template_dict"] if (op.rolling_back and op.old) else {}
        rtype = _type(old if logical in _template_resources(old) else stack.template_dict, logical)
        verb = _verb(kind)
        physical = "" if kind == "create" else _physical(stack, logical)
        if op.rolling_back and logical in op.skip:
            _event(stack, logical, physical, rtype, "UPDATE_COMPLETE",
                   "Resource skipped during rollback", op.token)
            return
        _event(stack, logical, physical, rtype, f"{verb}_IN_PROGRESS", None, op.token)
        if kind == "create":
            physical = _physical(stack, logical) or f"{stack.name}-{logical}-{int(time.time())}"
            _event(stack, logical, physical, rtype, "CREATE_IN_PROGRESS", "Resource creation Initiated", op.token)
        op.current = (kind, logical, rtype, physical)
        return
    finish(op)


def _exports_ok(op: Operation) -> bool:
    """AWS: "After another stack imports an output value, you can't delete the stack that is
    exporting the output value or modify the exported output value." An update that would fails
    and rolls back with CloudFormation's words."""
    if op.old is None:
        return True
    before, after = op.old["exports"], exports_of(op.stack)
    for name, value in sorted(before.items()):
        users = importers(op.backend, name, besides=op.stack)
        if not users:
            continue
        if name not in after:
            fail(op, None, f"Export {name} cannot be deleted as it is in use by {' and '.join(users)}")
            return False
        if after[name] != value:
            fail(op, None, f"Export {name} cannot be updated as it is in use by {' and '.join(users)}")
            return False
    return True


def fail(op: Operation, logical: str | None, reason: str, kind: str = "update") -> None:
    """A resource failed (or the operation was cancelled): roll back what was done."""
    stack = op.stack
    if op.rolling_back:
        # AWS: a resource that cannot return to its old state leaves UPDATE_ROLLBACK_FAILED;
        # ContinueUpdateRollback (skipping it) finishes the rollback.
        stack.status = "UPDATE_ROLLBACK_FAILED"
        stack.stack_status_reason = f"The following resource(s) failed to update: [{logical}]."
        stack_event(stack, stack.status, stack.stack_status_reason, op.token)
        op.steps = [("update", logical)] + op.steps if logical else op.steps
        op.finished = True
        OPERATIONS.pop(stack.stack_id, None)
        stack._local_failed_op = op  # type: ignore[attr-defined]  # for ContinueUpdateRollback
        return
    op.rolling_back = True
    if op.kind == "CREATE":
        text = reason if logical is None else f"The following resource(s) failed to create: [{logical}]. Rollback requested by user."
        stack.status = "ROLLBACK_IN_PROGRESS"
        stack.stack_status_reason = text
        stack_event(stack, stack.status, text, op.token)
        op.steps = [("delete-new", name) for kind, name in reversed(op.done)]
        if logical:
            op.steps.insert(0, ("delete-new", logical))  # AWS deletes what failed to create, too
    elif op.kind == "UPDATE":
        text = reason if logical is None else f"The following resource(s) failed to {kind}: [{logical}]."
        stack.status = "UPDATE_ROLLBACK_IN_PROGRESS"
        stack.stack_status_reason = text
        stack_event(stack, stack.status, text, op.token)
        undo: list[tuple[str, str]] = []
        for kind, name in reversed(op.done):
            if kind == "create":
                continue  # removed in the rollback's cleanup
            undo.append(("update" if kind == "update" else "create", name))
        if logical and (("update", logical) not in undo) and logical in _template_resources(op.old["template_dict"]):
            undo.insert(0, ("update", logical))
        created = [("delete-new", name) for kind, name in reversed(op.done) if kind == "create"]
        if logical and kind == "create":
            created.insert(0, ("delete-new", logical))  # AWS deletes what failed to create, too
        op.steps = undo + created
    else:  # DELETE
        stack.status = "DELETE_FAILED"
        stack.stack_status_reason = reason
        stack_event(stack, stack.status, reason, op.token)
        op.finished = True
        OPERATIONS.pop(stack.stack_id, None)
    op.due = time.monotonic() + op.pace


def _restore_old(op: Operation) -> None:
    """Puts the stack's previous template and parameters back (moto applied the new ones)."""
    stack, old = op.stack, op.old
    assert old is not None
    n = len(stack.events)
    try:
        stack.update(old["template"], role_arn=stack.role_arn, parameters=old["parameters"], tags=old["tags"])
    except Exception as err:
        # moto could not put every resource back (one it never really made, say): the stack's
        # own record goes back all the same, as AWS's does.
        print(f"local-aws: restoring {stack.name}'s previous resources: {err}", file=sys.stderr)
        stack.template = old["template"]
        stack._parse_template()
    stack.parameters = old["parameters"]
    stack.tags = old["tags"]
    try:
        stack.output_map = stack._create_output_map()
    except Exception:
        pass
    del stack.events[n:]


def finish(op: Operation) -> None:
    stack, backend = op.stack, op.backend
    if op.kind == "UPDATE" and not op.rolling_back and not _exports_ok(op):
        return  # rolling back now
    OPERATIONS.pop(stack.stack_id, None)
    op.finished = True
    stack.stack_status_reason = None
    if op.kind == "CREATE":
        if op.rolling_back:
            try:
                stack.resource_map.delete()
            except Exception:
                pass
            stack.status = "ROLLBACK_COMPLETE"
        else:
            stack.status = "CREATE_COMPLETE"
    elif op.kind == "UPDATE":
        if op.rolling_back:
            stack.status = "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"
            stack_event(stack, stack.status, None, op.token)
            _restore_old(op)
            stack.status = "UPDATE_ROLLBACK_COMPLETE"
        else:
            if stack.status != "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS":
                stack.status = "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"
                stack_event(stack, stack.status, None, op.token)
            stack.status = "UPDATE_COMPLETE"
    else:  # DELETE: moto removes the stack now
        n = len(stack.events)
        backend.delete_stack(stack.stack_id)
        del stack.events[n:]
        stack.status = "DELETE_COMPLETE"
    stack_event(stack, stack.status, None, op.token)
    refresh_exports(backend)


def ticker() -> None:
    while True:
        time.sleep(0.02)
        now = time.monotonic()
        with LOCK:
            for op in list(OPERATIONS.values()):
                if op.finished or now < op.due:
                    continue
                try:
                    step(op)
                except Exception as err:  # never let one stack stop the others
                    print(f"local-aws: {op.stack.name}: {err!r}", file=sys.stderr)
                    OPERATIONS.pop(op.stack.stack_id, None)
                op.due = now + op.pace


# ------------------------------------------------------------------------------------------
# The CloudFormation API, where moto lacks or forgives.

TOKENS: dict[tuple[str, str, str, str], str] = {}  # (account, region, action, token) -> stack id


def _account(resp: Response_) -> str:
    return resp.current_account


def _busy(stack: Stack, doing: str = "updated") -> None:
    # AWS: one operation at a time per stack.
    if BUSY.match(stack.status or "") or stack.status == "UPDATE_ROLLBACK_FAILED" and doing == "updated":
        raise ValidationError(stack.stack_id, message=f"Stack:{stack.stack_id} is in {stack.status} state and can not be {doing}.")


def _same_token(resp: Response_, action: str) -> str | None:
    """AWS ClientRequestToken: "Specify this token if you plan to retry requests so that AWS
    CloudFormation knows that you're not attempting to [repeat the operation]"."""
    token = resp._get_param("ClientRequestToken")
    if not token:
        return None
    return TOKENS.get((_account(resp), resp.region, action, token))


def _remember(resp: Response_, action: str, stack_id: str) -> None:
    token = resp._get_param("ClientRequestToken")
    if token:
        TOKENS[(_account(resp), resp.region, action, token)] = stack_id


def _snapshot(stack: Stack) -> dict:
    return {
        "template": stack.template,
        "template_dict": copy.deepcopy(stack.template_dict),
        "parameters": dict(stack.parameters),
        "tags": dict(stack.tags),
        "exports": exports_of(stack),
    }


_orig = {
    name: getattr(Response_, name)
    for name in ("create_stack", "update_stack", "execute_change_set", "delete_stack",
                 "create_change_set", "describe_stack_events", "list_exports", "describe_stacks")
}


def create_stack(self: Response_) -> Any:
    with LOCK:
        known = _same_token(self, "CreateStack")
        if known:
            return ActionResult({"StackId": known})
        result = _orig["create_stack"](self)
        stack = self.cloudformation_backend.get_stack(self._get_param("StackName"))
        _begin_create(self, stack)
        _remember(self, "CreateStack", stack.stack_id)
        return result


def _begin_create(self: Response_, stack: Stack) -> None:
    token = self._get_param("ClientRequestToken")
    del stack.events[:]
    stack.status = "CREATE_IN_PROGRESS"
    stack_event(stack, "CREATE_IN_PROGRESS", "User Initiated", token)
    op = Operation(self.cloudformation_backend, stack, "CREATE", token, _account(self))
    op.steps = [("create", name) for name in resource_order(stack.template_dict)]
    start(op)


def _begin_update(self: Response_, stack: Stack, old: dict) -> None:
    token = self._get_param("ClientRequestToken")
    n = len(old.get("events", []))
    del stack.events[n:]
    stack.status = "UPDATE_IN_PROGRESS"
    stack_event(stack, "UPDATE_IN_PROGRESS", "User Initiated", token)
    op = Operation(self.cloudformation_backend, stack, "UPDATE", token, _account(self), old=old)
    op.steps = plan_update(old["template_dict"], stack.template_dict, old["parameters"], stack.parameters)
    start(op)


def update_stack(self: Response_) -> Any:
    with LOCK:
        known = _same_token(self, "UpdateStack")
        if known:
            return ActionResult({"StackId": known})
        stack = self.cloudformation_backend.get_stack(self._get_param("StackName"))
        _busy(stack)
        old = _snapshot(stack)
        old["events"] = list(stack.events)
        result = _orig["update_stack"](self)
        _begin_update(self, stack, old)
        _remember(self, "UpdateStack", stack.stack_id)
        return result


def execute_change_set(self: Response_) -> Any:
    with LOCK:
        backend = self.cloudformation_backend
        name = self._get_param("ChangeSetName")
        change_set = backend.describe_change_set(name)
        if change_set is None:
            return _orig["execute_change_set"](self)
        known = _same_token(self, "ExecuteChangeSet")
        if known:
            return EmptyResult()
        stack = backend.get_stack(change_set.stack_id)
        if stack.status != "REVIEW_IN_PROGRESS":
            _busy(stack)
        creating = change_set.change_set_type == "CREATE"
        old = _snapshot(stack)
        old["events"] = list(stack.events)
        result = _orig["execute_change_set"](self)
        # AWS: executing a change set gives the stack its template, parameters and tags (moto
        # applies the resources only).
        stack._parse_template()
        if change_set.parameters:
            stack.parameters = dict(change_set.parameters)
        if change_set.tags:
            stack.tags = dict(change_set.tags)
        stack.output_map = stack._create_output_map()
        if creating:
            stack.status = "CREATE_IN_PROGRESS"
            events = list(stack.events)
            _begin_create(self, stack)
            # A stack made by a change set keeps its REVIEW_IN_PROGRESS event first.
            stack.events[:0] = [e for e in events if e.resource_status == "REVIEW_IN_PROGRESS"]
        else:
            _begin_update(self, stack, old)
        _remember(self, "ExecuteChangeSet", stack.stack_id)
        return result


def create_change_set(self: Response_) -> Any:
    with LOCK:
        if self._get_param("ChangeSetType", "CREATE") == "UPDATE":
            stack = self.cloudformation_backend.get_stack(self._get_param("StackName"))
            _busy(stack)
        return _orig["create_change_set"](self)


def delete_stack(self: Response_) -> Any:
    """AWS: DeleteStack on a stack already being deleted, or gone, succeeds; on a stack whose
    export another stack imports, the stack is not deleted and says why."""
    with LOCK:
        backend = self.cloudformation_backend
        name = self._get_param("StackName")
        try:
            stack = backend.get_stack(name)
        except ValidationError:
            return EmptyResult()  # AWS: deleting a stack that does not exist succeeds
        if stack.status in ("DELETE_COMPLETE", "DELETE_IN_PROGRESS"):
            return EmptyResult()
        token = self._get_param("ClientRequestToken")
        creating = OPERATIONS.get(stack.stack_id)
        if creating is not None and creating.kind == "CREATE" and not creating.rolling_back:
            # AWS: deleting a stack being created cancels the create and deletes what it made.
            OPERATIONS.pop(stack.stack_id, None)
            creating.finished = True
            made = [name for _, name in creating.done]
            if creating.current is not None:
                kind, logical, rtype, physical = creating.current
                _event(stack, logical, physical, rtype, "CREATE_FAILED", "Resource creation cancelled", token)
                made.append(logical)
            stack.status = "DELETE_IN_PROGRESS"
            stack_event(stack, "DELETE_IN_PROGRESS", "User Initiated", token)
            op = Operation(backend, stack, "DELETE", token, _account(self))
            op.steps = [("delete", name) for name in reversed(made)]
            start(op)
            return EmptyResult()
        if BUSY.match(stack.status or ""):
            raise ValidationError(stack.stack_id, message=f"Stack [{stack.name}] cannot be deleted while in status {stack.status}")
        before = stack.status
        stack_event(stack, "DELETE_IN_PROGRESS", "User Initiated", token)
        for export, _ in sorted(exports_of(stack).items()):
            users = importers(backend, export, besides=stack)
            if users:
                reason = f"Export {export} cannot be deleted as it is in use by {' and '.join(users)}"
                stack.stack_status_reason = reason
                stack_event(stack, before, reason, token)
                return EmptyResult()
        stack.status = "DELETE_IN_PROGRESS"
        op = Operation(backend, stack, "DELETE", token, _account(self))
        order = [] if before == "ROLLBACK_COMPLETE" else list(reversed(resource_order(stack.template_dict)))
        op.steps = [("delete", name) for name in order]
        start(op)
        return EmptyResult()


def cancel_update_stack(self: Response_) -> Any:
    """AWS CancelUpdateStack: "Cancels an update on the specified stack. … the stack rolls back
    the update and reverts to the previous stack configuration. You can cancel only stacks that
    are in the UPDATE_IN_PROGRESS state." """
    with LOCK:
        stack = self.cloudformation_backend.get_stack(self._get_param("StackName"))
        op = OPERATIONS.get(stack.stack_id)
        if stack.status != "UPDATE_IN_PROGRESS" or op is None or op.rolling_back:
            raise ValidationError(stack.stack_id, message="CancelUpdateStack cannot be called from current stack status")
        op.token = self._get_param("ClientRequestToken") or op.token
        if op.current is not None:
            kind, logical, rtype, physical = op.current
            op.current = None
            _event(stack, logical, physical, rtype, f"{_verb(kind)}_FAILED", "Resource update cancelled", op.token)
            op.done.append((kind, logical))
        fail(op, None, "Resource update cancelled")
        return EmptyResult()


def continue_update_rollback(self: Response_) -> Any:
    """AWS ContinueUpdateRollback: "For a specified stack that's in the UPDATE_ROLLBACK_FAILED
    state, continues rolling it back to the UPDATE_ROLLBACK_COMPLETE state." ResourcesToSkip are
    marked UPDATE_COMPLETE without being rolled back."""
    with LOCK:
        backend = self.cloudformation_backend
        stack = backend.get_stack(self._get_param("StackName"))
        if stack.status != "UPDATE_ROLLBACK_FAILED":
            raise ValidationError(
                stack.stack_id,
                message=f"Stack {stack.stack_id} is in {stack.status} state and can not continue update rollback",
            )
        op = getattr(stack, "_local_failed_op", None)
        if op is None:
            raise ValidationError(stack.stack_id, message="The stack has no update to roll back")
        op.skip = set(self._get_param("ResourcesToSkip", []) or [])
        op.token = self._get_param("ClientRequestToken") or op.token
        op.finished = False
        op.rolling_back = True
        stack.status = "UPDATE_ROLLBACK_IN_PROGRESS"
        stack.stack_status_reason = None
        stack_event(stack, stack.status, "Continue rollback requested by user", op.token)
        start(op)
        return EmptyResult()


def list_imports(self: Response_) -> Any:
    """AWS ListImports: the stacks that import an export; an export nobody imports is an error."""
    backend = self.cloudformation_backend
    name = self._get_param("ExportName")
    with LOCK:
        users = importers(backend, name)
    if not users:
        raise ValidationError(name, message=f"Export '{name}' is not imported by any stack.")
    return ActionResult({"Imports": users})


def list_exports(self: Response_) -> Any:
    with LOCK:
        refresh_exports(self.cloudformation_backend)
        return _orig["list_exports"](self)


def describe_stack_events(self: Response_) -> Any:
    """AWS DescribeStackEvents: newest first, in pages (NextToken)."""
    stack_name = self._get_param("StackName")
    with LOCK:
        events = list(self.cloudformation_backend.describe_stack_events(stack_name))[::-1]
    size = SETTINGS.events_page
    start_at = int(self._get_param("NextToken") or 0)
    page = events[start_at : start_at + size]
    result: dict[str, Any] = {"StackEvents": page}
    if start_at + size < len(events):
        result["NextToken"] = str(start_at + size)
    return ActionResult(result)


def describe_stacks(self: Response_) -> Any:
    """AWS: a stack being created has no outputs yet."""
    with LOCK:
        return _orig["describe_stacks"](self)


for _name, _fn in {
    "create_stack": create_stack,
    "update_stack": update_stack,
    "execute_change_set": execute_change_set,
    "create_change_set": create_change_set,
    "delete_stack": delete_stack,
    "cancel_update_stack": cancel_update_stack,
    "continue_update_rollback": continue_update_rollback,
    "list_imports": list_imports,
    "list_exports": list_exports,
    "describe_stack_events": describe_stack_events,
    "describe_stacks": describe_stacks,
}.items():
    setattr(Response_, _name, _fn)


# AWS DescribeChangeSet: for an update, each resource the change set would add, modify or remove,
# with its physical id and whether a modification replaces it. moto compares the resources'
# declarations only (a changed parameter shows as no change at all). Replacement here is a rule
# of thumb — a changed *Name property replaces the resource (as it does for SQS queues, S3
# buckets, SSM parameters, SNS topics); anything else modifies it in place — not AWS's per-type
# table.
_moto_diff = cfn_models.ChangeSet.diff


def _replacement(old: dict, new: dict, changed_params: set[str]) -> str:
    before, after = old.get("Properties") or {}, new.get("Properties") or {}

    def uses_changed(value: Any) -> bool:
        found: set[str] = set()
        _refs(value, changed_params, found)
        return bool(found)

    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k) or uses_changed(after.get(k))}
    return "True" if any(k.endswith("Name") for k in changed) else "False"


def _change_set_diff(self: Any) -> list:
    if self.change_set_type != "UPDATE":
        return _moto_diff(self)
    stack = self.stack
    old_t, new_t = stack.template_dict, self.template_dict
    new_params = {**stack.parameters, **(self.parameters or {})}
    changed_params = {k for k in set(stack.parameters) | set(new_params) if stack.parameters.get(k) != new_params.get(k)}
    changes = []
    for kind, name in plan_update(old_t, new_t, stack.parameters, new_params):
        action = {"create": "Add", "update": "Modify", "delete": "Remove"}[kind]
        change = cfn_models.Change(action, name, _type(old_t if kind == "delete" else new_t, name))
        if kind != "create":
            change.physical_resource_id = _physical(stack, name)
        if kind == "update":
            change.replacement = _replacement(_template_resources(old_t)[name], _template_resources(new_t)[name], changed_params)
            change.scope = ["Properties"]
        changes.append(change)
    return changes


cfn_models.ChangeSet.diff = _change_set_diff  # type: ignore[method-assign]


def _last_events(stack: Stack) -> dict[str, Event]:
    last: dict[str, Event] = {}
    for e in stack.events:
        if e.logical_resource_id != stack.name or e.resource_type != "AWS::CloudFormation::Stack":
            last[e.logical_resource_id] = e
    return last


_dto_init = cfn_responses.StackResourceDTO.__init__


def _dto_with_resource_status(self: Any, stack: Stack, resource: Any) -> None:
    """AWS DescribeStackResources: each resource's own status and reason (moto: the stack's)."""
    _dto_init(self, stack, resource)
    event = _last_events(stack).get(self.logical_resource_id or "")
    if event is not None:
        self.resource_status = event.resource_status
        self.resource_status_reason = event.resource_status_reason
        self.timestamp = event.timestamp
    else:
        self.resource_status = "CREATE_COMPLETE"


cfn_responses.StackResourceDTO.__init__ = _dto_with_resource_status  # type: ignore[method-assign]


def list_stack_resources(self: Response_) -> Any:
    """AWS ListStackResources: each resource's own status (moto: always CREATE_COMPLETE)."""
    with LOCK:
        stack = self.cloudformation_backend.get_stack(self._get_param("StackName"))
        resources = self.cloudformation_backend.list_stack_resources(self._get_param("StackName"))
        last = _last_events(stack)
        summaries = []
        for resource in resources:
            logical = getattr(resource, "logical_resource_id", "")
            event = last.get(logical)
            summary = {
                "LogicalResourceId": logical,
                "PhysicalResourceId": getattr(resource, "physical_resource_id", ""),
                "ResourceType": getattr(resource, "cf_resource_type", ""),
                "ResourceStatus": event.resource_status if event else "CREATE_COMPLETE",
                "LastUpdatedTimestamp": event.timestamp if event else stack.creation_time,
            }
            if event is not None and event.resource_status_reason:
                summary["ResourceStatusReason"] = event.resource_status_reason
            summaries.append(summary)
    return ActionResult({"StackResourceSummaries": summaries})


Response_.list_stack_resources = list_stack_resources  # type: ignore[method-assign]


# ------------------------------------------------------------------------------------------
# IAM (with INITIAL_NO_AUTH_ACTION_COUNT), where moto's check differs from AWS's.

from urllib.parse import urlparse  # noqa: E402

from moto.core.responses import BaseResponse  # noqa: E402
from moto.iam import access_control as iam_access  # noqa: E402
from moto.s3.responses import S3Response  # noqa: E402

_s3_authorize = S3Response._authenticate_and_authorize_s3_action


def _s3_authorize_as_sent(self: S3Response, *args: Any, **kwargs: Any) -> Any:
    """AWS (SigV4): the signature covers the query string as sent. moto recomputes it over the
    URL werkzeug decoded, so a query holding an encoded "/" (ListObjectsV2's prefix "builds/",
    its delimiter) never matched: SignatureDoesNotMatch."""
    raw = (getattr(self.request, "environ", None) or {}).get("QUERY_STRING")
    if not raw:
        return _s3_authorize(self, *args, **kwargs)
    decoded = self.uri
    self.uri = urlparse(decoded)._replace(query=raw).geturl()
    try:
        return _s3_authorize(self, *args, **kwargs)
    finally:
        self.uri = decoded


S3Response._authenticate_and_authorize_s3_action = _s3_authorize_as_sent  # type: ignore[method-assign]

_setup_class = BaseResponse.setup_class


def _setup_class_keeping_the_body(self: BaseResponse, request: Any, *args: Any, **kwargs: Any) -> Any:
    """AWS (SigV4): the signature covers the body as sent. Of a form-encoded request (the query
    protocol: CloudFormation, IAM, STS) werkzeug hands moto the parsed form only, and moto signed
    that form re-encoded its own way: a value with a space or a newline (a TemplateBody) never
    matched. The bytes are kept for the check."""
    raw = None
    if getattr(request, "mimetype", None) == "application/x-www-form-urlencoded":
        raw = request.get_data(cache=True, parse_form_data=False)
    result = _setup_class(self, request, *args, **kwargs)
    if raw and not self.raw_body:
        self.raw_body = raw
    return result


BaseResponse.setup_class = _setup_class_keeping_the_body  # type: ignore[method-assign]

# AWS (Amazon SQS Developer Guide, API permissions: actions and resource reference): a batch
# call is authorized as its single call (DeleteMessageBatch needs sqs:DeleteMessage); there is no
# IAM action named after the batch call, which is what moto asked a policy for.
_AUTHORIZED_AS = {
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
}
_iam_request_init = iam_access.IAMRequest.__init__


def _iam_request_as_aws(self: Any, *args: Any, **kwargs: Any) -> None:
    _iam_request_init(self, *args, **kwargs)
    self._action = _AUTHORIZED_AS.get(self._action, self._action)


iam_access.IAMRequest.__init__ = _iam_request_as_aws  # type: ignore[method-assign]


# ------------------------------------------------------------------------------------------
# The server: control API, throttling, then moto.

_ACCESS_KEY = re.compile(r"Credential=([^/]+)/")


def _service(environ: dict) -> str:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    m = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", auth)
    return m.group(1) if m else ""


def _throttled(environ: dict) -> Response | None:
    """AWS: "Rate exceeded" — the error the SDK's retry classifies as throttling."""
    if not SETTINGS.budgets:
        return None
    m = _ACCESS_KEY.search(environ.get("HTTP_AUTHORIZATION", ""))
    if not m:
        return None
    try:
        account = get_account_id_from(m.group(1))
    except Exception:
        return None
    budget = SETTINGS.budgets.get(account)
    if budget is None or budget.take():
        return None
    service = _service(environ)
    if service == "s3":
        body = "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
        return Response(body, status=503, content_type="application/xml")
    if service == "ec2":
        body = ("<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded."
                "</Message></Error></Errors><RequestID>local-aws-throttle</RequestID></Response>")
        return Response(body, status=503, content_type="text/xml")
    if environ.get("HTTP_X_AMZ_TARGET") or "amz-json" in environ.get("CONTENT_TYPE", ""):
        # The JSON protocols (SQS, for one): the error's type in __type.
        body = json.dumps({"__type": "com.amazonaws.sqs#ThrottlingException" if service == "sqs" else "ThrottlingException",
                           "message": "Rate exceeded"})
        return Response(body, status=400, content_type="application/x-amz-json-1.0",
                        headers={"x-amzn-query-error": "ThrottlingException;Sender"})
    body = (
        '<ErrorResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><Error>'
        "<Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error>"
        "<RequestId>local-aws-throttle</RequestId></ErrorResponse>"
    )
    return Response(body, status=400, content_type="text/xml")


def control(request: Request) -> Response:
    path = request.path.removeprefix("/_local/")
    body = request.get_json(silent=True) or {}
    with LOCK:
        if path == "pace" and request.method == "POST":
            seconds = float(body["seconds"])
            if body.get("stack"):
                SETTINGS.pace_by_stack[str(body["stack"])] = seconds
            elif body.get("account"):
                SETTINGS.pace_by_account[str(body["account"])] = seconds
            else:
                SETTINGS.pace = seconds
        elif path == "faults" and request.method == "POST":
            on = body.get("on", "update")
            if on not in ("create", "update", "delete", "rollback"):
                return Response(json.dumps({"error": f"on: {on!r} is not create, update, delete or rollback"}), 400)
            SETTINGS.faults.append(Fault(str(body["stack"]), str(body["resource"]), on,
                                         str(body.get("reason") or "Resource handler returned message: injected failure"),
                                         body.get("account")))
        elif path == "faults" and request.method == "DELETE":
            SETTINGS.faults.clear()
        elif path == "throttle" and request.method == "POST":
            account = str(body["account"])
            if body.get("calls") is None:
                SETTINGS.budgets.pop(account, None)
            else:
                SETTINGS.budgets[account] = Budget(int(body["calls"]), float(body.get("per_seconds", 1)))
        elif path == "events-page" and request.method == "POST":
            SETTINGS.events_page = max(1, int(body["size"]))
        elif path == "state" and request.method == "GET":
            pass
        else:
            return Response(json.dumps({"error": f"no {request.method} /_local/{path}"}), 404,
                            content_type="application/json")
        state = {
            "pace": SETTINGS.pace,
            "pace_by_account": SETTINGS.pace_by_account,
            "pace_by_stack": SETTINGS.pace_by_stack,
            "faults": [f.__dict__ for f in SETTINGS.faults],
            "throttle": {a: {"calls": b.calls, "per_seconds": b.per_seconds} for a, b in SETTINGS.budgets.items()},
            "events_page": SETTINGS.events_page,
            "operations": [
                {"stack": op.stack.name, "kind": op.kind, "status": op.stack.status, "steps_left": len(op.steps)}
                for op in OPERATIONS.values()
            ],
        }
    return Response(json.dumps(state), 200, content_type="application/json")


def reset() -> None:
    """moto's own reset (POST /moto-api/reset) forgets the stacks: so do the operations."""
    with LOCK:
        OPERATIONS.clear()
        TOKENS.clear()
        SETTINGS.faults.clear()
        SETTINGS.budgets.clear()
        SETTINGS.pace_by_account.clear()
        SETTINGS.pace_by_stack.clear()


def make_app(moto_app: Callable) -> Callable:
    def app(environ: dict, start_response: Callable) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_local/"):
            return control(Request(environ))(environ, start_response)
        if path == "/moto-api/reset" and environ.get("REQUEST_METHOD") == "POST":
            reset()
        refused = _throttled(environ)
        if refused is not None:
            return refused(environ, start_response)
        return moto_app(environ, start_response)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5055)
    parser.add_argument("--pace", type=float, default=float(os.environ.get("LOCAL_AWS_PACE", "0")),
                        help="seconds per resource step of a stack operation (default 0: as fast as the ticker)")
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    SETTINGS.pace = args.pace
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    threading.Thread(target=ticker, daemon=True, name="local-aws-ticker").start()
    moto_app = DomainDispatcherApplication(create_backend_app)
    print(f"local AWS (moto, CloudFormation as strict as AWS), pace {args.pace}s a step", file=sys.stderr)
    run_simple(args.host, args.port, make_app(moto_app), threaded=True)


if __name__ == "__main__":
    main()
