"""Drive webops-mcp's panel backend against the REAL WebOps control panel with the official MCP
Python SDK, as `cargo xtask panel` does (xtask/src/panel_check.rs).

One run per transport: `--transport stdio` spawns `webops-mcp stdio` (WebOps environment: the
panel's URL, user and password, flavour auto); `--transport http` connects to a running
`webops-mcp http` with the API key in WEBOPS_MCP_KEY. Each run checks what the tools say
against the panel (and, where the API cannot show it, against the panel's own SQLite database):
listing, status and logs (newest rows, trimmed), deploys that end pending or failed, what the
panel cannot do (environments, application logs, stop/restart, scaling) as honest errors, the
security audit, system health, delete, a re-login after the panel ended the session, 50 calls in
a row within the request budget (a refusal by our own budget is waited out; a 429 from the panel
never surfaces), and how many panel requests each call cost (from the panel's access log). The
stdio run also checks the login failures against a third panel (`--auth-panel-url`): a wrong
password and a user with two-factor login; and that the binary with its defaults (no
configuration file) refuses a deploy of file:///etc/passwd with zero panel requests. The deploys
clone from --deploy-repo, an http:// URL on 127.0.0.1, which the servers under test accept
because their configuration allows it ([webops] repository_schemes, allowed_repository_hosts).
The client has an elicitation callback played by a person who types the deployment's name: the
panel has no environments, so its deployments count as production and the deploys, stop,
restart and delete ask them first (the start does not).

Every tool output (text, structuredContent, progress messages) goes to outputs-<label>.jsonl and
the stdio servers' stderr to stdio-server*.log in --out-dir, for the secret scan of xtask. The
checks go to summary-<label>.json. Exits non-zero when a check failed.

Environment: WEBOPS_CHECK_PASSWORD (the panel user's password), WEBOPS_CHECK_BOB_PASSWORD,
WEBOPS_MCP_KEY (http only). Never printed.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.metadata
import json
import os
import re
import secrets
import sqlite3
import sys
import threading
import time
import traceback
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

import anyio
import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import ElicitResult

# An access line of runserver: `INFO "GET /api/deployments/ HTTP/1.1" 200 371`. Only HTTP/1.1:
# the readiness probes of cargo xtask speak HTTP/1.0 (and claim their own client address).
ACCESS = re.compile(r'"(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) (\S+) HTTP/1\.1" (\d{3})')
BUDGET_REFUSAL = re.compile(r"WebOps rate budget exhausted, retry in (\d+) s")
# What a 429 of the panel would look like in a tool error (common.rs: upstream_error).
PANEL_429 = re.compile(r"rate limiting this server's requests|HTTP 429|\b429\b")
# The panel's limit: 20 requests per 60 s per client address; the window is taken a little
# longer here, so a wait computed from the log is never too short.
PANEL_LIMIT = 20
PANEL_WINDOW = 63.0
# How long a tool may wait for the panel's system/health (the panel client's time limit).
HEALTH_LIMIT_SECONDS = 15.0
# The panel client's cache of the deployment list.
CACHE_TTL_SECONDS = 10.0
BURST_CALLS = 50


class Failed(Exception):
    """One check failed."""


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise Failed(message)


def short(text: str, limit: int = 400) -> str:
    text = text.replace("\n", " | ")
    return text if len(text) <= limit else text[:limit] + "…"


class PanelLog:
    """The panel's access lines, each stamped with when this script saw it (read every 50 ms)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.offset = 0
        self.partial = ""
        self.lines: list[tuple[float, str, str, int]] = []
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self._read()
        # Lines from before this script started (the server's own start-up requests, if any).
        self.at_start = len(self.lines)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return
        self.offset += len(data)
        *complete, self.partial = (self.partial + data.decode("utf-8", "replace")).split("\n")
        now = time.monotonic()
        with self.lock:
            for line in complete:
                m = ACCESS.search(line)
                if m:
                    self.lines.append((now, m.group(1), m.group(2), int(m.group(3))))

    def _run(self) -> None:
        while not self.stopped.is_set():
            self._read()
            time.sleep(0.05)

    def stop(self) -> None:
        self.stopped.set()

    def count(self) -> int:
        with self.lock:
            return len(self.lines)

    def since(self, mark: int) -> list[tuple[float, str, str, int]]:
        with self.lock:
            return list(self.lines[mark:])

    def recent(self) -> int:
        horizon = time.monotonic() - PANEL_WINDOW
        with self.lock:
            return sum(1 for line in self.lines if line[0] > horizon)

    async def settle(self) -> None:
        """Lets the access line of a request just answered reach the log (runserver writes it
        after the response)."""
        await anyio.sleep(0.3)

    async def room(self, needed: int) -> float:
        """Waits until the panel saw at most LIMIT - needed requests in its window, so a call
        that needs `needed` requests in one go is not cut short by the budget; returns the wait."""
        started = time.monotonic()
        while self.recent() > PANEL_LIMIT - needed:
            await anyio.sleep(0.5)
        return time.monotonic() - started


@dataclass
class Call:
    tool: str
    arguments: dict[str, Any]
    is_error: bool
    text: str
    structured: Any
    requests: list[tuple[float, str, str, int]]
    seconds: float
    budget_waits: list[int] = field(default_factory=list)
    progress: list[str] = field(default_factory=list)

    def paths(self) -> list[str]:
        return [f"{m} {p.split('?')[0]} {s}" for _, m, p, s in self.requests]


class Person:
    """The person at the client: reads each confirmation question (elicitation) and types the
    name of the deployment it shows, as someone who wants the change would."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def __call__(self, context: Any, params: Any) -> ElicitResult:
        shown = re.search(r"^Deployment: (\S+)", getattr(params, "message", ""), re.M)
        name = shown.group(1) if shown else ""
        self.asked.append(name)
        return ElicitResult(action="accept", content={"name": name})


PERSON = Person()


class Run:
    def __init__(self, label: str, client: Client, log: PanelLog, out_dir: str) -> None:
        self.label = label
        self.client = client
        self.log = log
        self.outputs = open(os.path.join(out_dir, f"outputs-{label}.jsonl"), "a", encoding="utf-8")
        self.passed: list[str] = []
        self.failed: list[dict[str, str]] = []
        self.costs: list[tuple[str, int, float, str]] = []
        self.calls = 0
        self.budget_refusals: list[int] = []
        self.surfaced_429: list[str] = []

    def record(self, tool: str, arguments: dict[str, Any], result: Any, text: str, progress: list[str]) -> None:
        self.outputs.write(
            json.dumps(
                {
                    "run": self.label,
                    "tool": tool,
                    "arguments": arguments,
                    "is_error": bool(result.is_error),
                    "text": text,
                    "structured": result.structured_content,
                    "progress": progress,
                }
            )
            + "\n"
        )
        self.outputs.flush()

    async def call(
        self,
        tool: str,
        arguments: dict[str, Any],
        *,
        cost: str | None = None,
        timeout: float = 120.0,
        client: Client | None = None,
    ) -> Call:
        """Calls `tool`; a refusal by the server's own request budget is waited out and the call
        repeated. `cost` names the call in the request table (and waits for its log lines)."""
        mark = self.log.count()
        started = time.monotonic()
        waits: list[int] = []
        progress: list[str] = []

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append(f"{value}/{total}: {message}")

        while True:
            result = await (client or self.client).call_tool(
                tool, arguments, read_timeout_seconds=timeout, progress_callback=on_progress
            )
            self.calls += 1
            text = "\n".join(b.text for b in result.content if getattr(b, "type", None) == "text")
            self.record(tool, arguments, result, text, progress)
            if result.is_error and PANEL_429.search(text):
                self.surfaced_429.append(f"{tool}: {short(text, 200)}")
            refusal = BUDGET_REFUSAL.search(text) if result.is_error else None
            if refusal is None or len(waits) >= 8:
                break
            wait = int(refusal.group(1))
            waits.append(wait)
            self.budget_refusals.append(wait)
            await anyio.sleep(wait + 0.5)
        if cost is not None:
            await self.log.settle()
        call = Call(
            tool=tool,
            arguments=arguments,
            is_error=bool(result.is_error),
            text=text,
            structured=result.structured_content,
            requests=self.log.since(mark),
            seconds=time.monotonic() - started,
            budget_waits=waits,
            progress=progress,
        )
        if cost is not None:
            self.costs.append((cost, len(call.requests), call.seconds, ", ".join(call.paths())))
        return call

    async def check(self, name: str, body) -> None:
        try:
            await body()
        except Failed as e:
            self.fail(name, str(e))
            return
        except MCPError as e:
            self.fail(name, f"unexpected JSON-RPC error {e.code}: {e.message}")
            return
        except Exception as e:  # noqa: BLE001 - every kind of breakage is a failed check
            self.fail(name, f"{type(e).__name__}: {e}")
            traceback.print_exc(file=sys.stdout)
            return
        self.passed.append(name)
        print(f"  ok    {self.label}: {name}", flush=True)

    def fail(self, name: str, why: str) -> None:
        self.failed.append({"check": name, "why": why})
        print(f"  FAIL  {self.label}: {name}: {why}", flush=True)


# ---------------------------------------------------------------------------------------------
# The panel's database: the ground truth the API does not show


def db(path: str) -> sqlite3.Connection:
    return sqlite3.connect(path, timeout=10)


def db_status(path: str, name: str) -> str | None:
    with db(path) as conn:
        row = conn.execute("SELECT status FROM base_deployments WHERE name = ?", (name,)).fetchone()
    return row[0] if row else None


def db_log_messages(path: str, name: str) -> list[str]:
    with db(path) as conn:
        rows = conn.execute(
            "SELECT l.message FROM deployment_logs l JOIN base_deployments d ON d.id = l.deployment_id "
            "WHERE d.name = ? ORDER BY l.created_at, l.id",
            (name,),
        ).fetchall()
    return [r[0] for r in rows]


def end_sessions(path: str, user: str, password: str) -> int:
    """Ends every panel session of `user` as an administrator would: deletes the stored
    sessions AND re-hashes the same password with a new salt. Deleting the rows alone ends
    nothing: the panel's sessions are `cached_db`, so its process keeps serving them from its
    cache; Django drops a session whose stored password hash no longer matches."""
    with db(path) as conn:
        deleted = conn.execute("DELETE FROM django_session").rowcount
        (stored,) = conn.execute("SELECT password FROM auth_user WHERE username = ?", (user,)).fetchone()
        algorithm, iterations, _, _ = stored.split("$")
        expect(algorithm == "pbkdf2_sha256", f"{user}'s password uses {algorithm}, not pbkdf2_sha256")
        salt = secrets.token_hex(11)
        digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), int(iterations))
        rehashed = "$".join([algorithm, iterations, salt, base64.b64encode(digest).decode()])
        conn.execute("UPDATE auth_user SET password = ? WHERE username = ?", (rehashed, user))
    return deleted


# ---------------------------------------------------------------------------------------------
# The checks


async def exercise(run: Run, args: argparse.Namespace, fixture_logs: list[list[str]]) -> None:
    fixture = args.fixture
    log = run.log
    state: dict[str, Any] = {}

    # -- listing, and what the first call costs
    async def cold_list() -> None:
        startup = log.count()
        call = await run.call("webops_list_deployments", {}, cost="webops_list_deployments (cold: first call)")
        state["first_list_at"] = time.monotonic()
        if startup:
            run.costs.insert(0, ("(requests before the first call)", startup, 0.0, ""))
        expect(not call.is_error, f"list failed: {short(call.text)}")
        names = [d["name"] for d in call.structured["deployments"]]
        expect(fixture in names, f"{fixture} is not listed: {names}")
        total = startup + len(call.requests)
        expect(
            total <= 5,
            f"the first call cost {total} panel requests (expected at most 5: 2 flavour probes, 2 login, "
            f"1 list): {call.paths()}",
        )

    await run.check(f"list finds {fixture}; the cold first call costs at most 5 panel requests", cold_list)

    async def warm_list() -> None:
        call = await run.call("webops_list_deployments", {"limit": 10}, cost="webops_list_deployments (warm)")
        age = time.monotonic() - state.get("first_list_at", 0)
        expect(not call.is_error, f"list failed: {short(call.text)}")
        expect(age < CACHE_TTL_SECONDS, f"the warm list came {age:.1f} s after the first (cache TTL 10 s)")
        expect(not call.requests, f"a warm list cost {len(call.requests)} panel requests: {call.paths()}")

    await run.check("a warm list within the cache TTL costs 0 panel requests", warm_list)

    async def list_environment() -> None:
        call = await run.call(
            "webops_list_deployments", {"environment": "production"}, cost="webops_list_deployments environment=production"
        )
        expect(call.is_error, f"list with an environment answered: {short(call.text)}")
        expect("environment" in call.text, f"the error does not name the environment: {short(call.text)}")
        expect(not call.requests, f"the refusal cost {len(call.requests)} panel requests")

    await run.check("list with environment production is an error naming environment", list_environment)

    async def deploy_environment() -> None:
        name = f"mcp-{run.label}-env-{uuid.uuid4().hex[:6]}"
        call = await run.call(
            "webops_deploy_app",
            {"app_name": name, "repository": args.deploy_repo, "environment": "staging"},
            cost="webops_deploy_app environment=staging",
        )
        expect(call.is_error, f"a deploy with environment staging answered: {short(call.text)}")
        expect("environment" in call.text, f"the error does not name environment: {short(call.text)}")
        creates = [p for p in call.paths() if "/create/" in p]
        expect(not creates, f"the refused deploy sent {creates}")
        expect(db_status(args.panel_db, name) is None, f"the panel has a deployment {name} anyway")

    await run.check(
        "deploy with environment staging is an error naming environment, with zero create requests",
        deploy_environment,
    )

    # -- status and logs of the fixture
    want = [m for _, m in fixture_logs]

    async def status_with_logs() -> None:
        call = await run.call(
            "webops_get_status",
            {"deployment_id": fixture, "include_logs": True},
            cost="webops_get_status include_logs",
        )
        expect(not call.is_error, f"get_status failed: {short(call.text)}")
        d = call.structured["deployment"]
        expect(d["name"] == fixture and d["status"] == "running", f"status says {d['name']} {d['status']}")
        got = [line["message"] for line in d.get("logs") or []]
        expect(got == want, f"status logs {got}, expected the fixture rows oldest first {want}")
        expect("3/3" in got[-1], f"the newest row is not last: {got}")
        expect(
            len(call.requests) <= 2,
            f"get_status with logs (list cached) cost {len(call.requests)} requests: {call.paths()}",
        )

    await run.check("get_status include_logs shows the 3 fixture rows, newest (3/3) last", status_with_logs)

    async def logs_deployment() -> None:
        call = await run.call(
            "webops_get_logs",
            {"deployment_id": fixture, "log_type": "deployment", "lines": 10},
            cost="webops_get_logs deployment lines=10",
        )
        expect(not call.is_error, f"get_logs failed: {short(call.text)}")
        got = [e["message"] for e in call.structured["entries"]]
        expect(got == want, f"entries {got}, expected {want}")
        expect(call.structured["total_lines"] == 3, f"total_lines {call.structured['total_lines']}")

    await run.check("get_logs deployment lines 10: the 3 fixture rows, oldest first", logs_deployment)

    async def logs_error() -> None:
        call = await run.call(
            "webops_get_logs",
            {"deployment_id": fixture, "log_type": "error", "lines": 10},
            cost="webops_get_logs error",
        )
        expect(not call.is_error, f"get_logs failed: {short(call.text)}")
        got = [(e["level"], e["message"]) for e in call.structured["entries"]]
        errors = [(lvl, m) for lvl, m in fixture_logs if lvl == "error"]
        expect(got == errors, f"error entries {got}, expected {errors}")

    await run.check("get_logs error returns only the error row", logs_error)

    async def logs_application() -> None:
        call = await run.call(
            "webops_get_logs",
            {"deployment_id": fixture, "log_type": "application"},
            cost="webops_get_logs application",
        )
        expect(call.is_error, f"application logs answered: {short(call.text)}")
        for word in ("application", "deployment", "error"):
            expect(word in call.text, f"the error does not name {word}: {short(call.text)}")

    await run.check("get_logs application is an unsupported error naming deployment and error", logs_application)

    # -- two deploys, followed until they settle, side by side
    good = f"mcp-{run.label}-{uuid.uuid4().hex[:8]}"
    bad = f"mcp-{run.label}-bad-{uuid.uuid4().hex[:6]}"
    state["good"] = good
    results: dict[str, Call] = {}

    async def deploy(name: str, repo: str) -> None:
        results[name] = await run.call(
            "webops_deploy_app", {"app_name": name, "repository": repo, "wait": True}, timeout=300.0
        )

    mark = log.count()
    started = time.monotonic()
    async with anyio.create_task_group() as tg:
        tg.start_soon(deploy, good, args.deploy_repo)
        tg.start_soon(deploy, bad, args.unclonable_repo)
    await log.settle()
    run.costs.append(
        (
            "webops_deploy_app wait=true, two side by side (pending + failed)",
            len(log.since(mark)),
            time.monotonic() - started,
            "",
        )
    )

    async def deploy_pending() -> None:
        call = results[good]
        truth = db_status(args.panel_db, good)
        if call.is_error:
            expect(truth == "failed", f"the deploy is an error but the panel says {truth}: {short(call.text)}")
            expect("failed" in call.text, f"the error does not say failed: {short(call.text)}")
            return
        out = call.structured
        expect(out["waited"] is True, f"waited is {out['waited']}")
        # pending without nginx on the machine (the panel cannot install the site), running
        # with it.
        expect(out["status"] in ("pending", "running", "failed"), f"status {out['status']!r}")
        expect(out["status"] == truth, f"the tool says {out['status']}, the panel's database {truth}")
        expect(out["status"] in out["next_steps"], f"next_steps do not explain it: {short(out['next_steps'])}")
        values = [float(p.split("/")[0]) for p in call.progress]
        expect(values and values == sorted(values), f"progress {call.progress}")
        for message in call.progress:
            if ": " in message.split(": ", 1)[1]:
                expect("(app output, not instructions)" in message, f"an unlabelled log line in progress: {message}")
        print(f"        {good}: {out['status']} after {call.seconds:.0f} s, {len(call.progress)} progress messages")

    await run.check(
        "deploy (wait) of the static repo reports its real status (pending) with next steps and labelled progress",
        deploy_pending,
    )

    async def deploy_failed() -> None:
        call = results[bad]
        truth = db_status(args.panel_db, bad)
        expect(truth == "failed", f"the panel says {truth} for the unclonable repository")
        if call.is_error:
            expect("failed" in call.text, f"the error does not say failed: {short(call.text)}")
            expect("<<<UNTRUSTED" in call.text, f"the error carries no fenced log tail: {short(call.text)}")
        else:
            expect(call.structured["status"] == "failed", f"the deploy says {call.structured['status']}")
        print(f"        {bad}: failed after {call.seconds:.0f} s")

    await run.check("deploy (wait) of an unclonable repo reports failed with the log tail", deploy_failed)

    async def new_logs_trimmed() -> None:
        rows = db_log_messages(args.panel_db, good)
        call = await run.call(
            "webops_get_logs", {"deployment_id": good, "log_type": "deployment", "lines": 10}, cost="webops_get_logs new deployment"
        )
        expect(not call.is_error, f"get_logs failed: {short(call.text)}")
        got = [e["message"] for e in call.structured["entries"]]
        expect(len(rows) > 10, f"the deploy wrote {len(rows)} log rows, too few to show trimming")
        # The tool cleans log text (control characters, surrounding blanks) and masks
        # secret-looking values; a static site's build log has none of the latter.
        newest = [m.strip() for m in rows[-10:]]
        expect(got == newest, f"entries {got}\n  expected the newest 10 of {len(rows)}: {newest}")
        expect(call.structured["total_lines"] == len(rows), f"total_lines {call.structured['total_lines']} of {len(rows)}")
        print(f"        {good}: {len(rows)} log rows, the newest {len(got)} returned")

    await run.check("get_logs of the new deployment: exactly the newest rows (trimmed to lines)", new_logs_trimmed)

    # -- lifecycle
    async def start() -> None:
        asked = len(PERSON.asked)
        call = await run.call(
            "webops_manage_service", {"deployment_id": good, "action": "start"}, cost="webops_manage_service start"
        )
        expect(not call.is_error, f"start failed: {short(call.text)}")
        expect(call.structured["status"] == "running", f"start says {call.structured['status']}")
        expect(db_status(args.panel_db, good) == "running", "the panel's database does not say running")
        expect(len(PERSON.asked) == asked, "a start asked the person")

    await run.check("manage_service start: running, nobody asked", start)

    for action in ("stop", "restart"):

        async def not_done(action: str = action) -> None:
            # The plan, its databases, the person's answer checked against a fresh read, the
            # tool's own read, the refused action and a read-back (and maybe the list).
            waited = await log.room(8)
            call = await run.call(
                "webops_manage_service", {"deployment_id": good, "action": action}, cost=f"webops_manage_service {action}"
            )
            expect(call.is_error, f"{action} answered: {short(call.text)}")
            expect(
                f"failed to {action}" in call.text and "did not happen" in call.text,
                f"the error does not say the {action} did not happen: {short(call.text)}",
            )
            expect("<<<UNTRUSTED WEBOPS TEXT" in call.text, f"the panel's words are not fenced: {short(call.text)}")
            expect(db_status(args.panel_db, good) == "running", "the panel's database changed")
            if waited > 1:
                print(f"        (waited {waited:.0f} s for budget room first)")

        await run.check(f"manage_service {action}: an error saying the {action} did not happen, panel text fenced", not_done)

    async def scale_up() -> None:
        call = await run.call(
            "webops_manage_service", {"deployment_id": good, "action": "scale_up"}, cost="webops_manage_service scale_up"
        )
        expect(call.is_error, f"scale_up answered: {short(call.text)}")
        expect("does not support" in call.text or "cannot" in call.text, f"not an unsupported error: {short(call.text)}")
        expect("scale" in call.text, f"the error does not mention scaling: {short(call.text)}")

    await run.check("manage_service scale_up: unsupported", scale_up)

    # -- audit and health
    async def audit() -> None:
        await log.room(7)
        call = await run.call(
            "webops_security_audit",
            {"deployment_id": fixture, "audit_type": "comprehensive"},
            cost="webops_security_audit comprehensive",
        )
        expect(not call.is_error, f"audit failed: {short(call.text)}")
        rules = {f["rule_id"] for f in call.structured["findings"]}
        for rule in ("WEBOPS-SEC-018", "WEBOPS-SEC-019"):
            expect(rule in rules, f"no {rule} finding among {sorted(rules)}")
        not_checked = call.structured.get("not_checked") or []
        expect(len(not_checked) > 0, "not_checked is empty")
        print(f"        findings {sorted(rules)}; not_checked {[n.get('rule_id') for n in not_checked]}")

    await run.check("security_audit fixture-app: WEBOPS-SEC-018 and -019, non-empty not_checked", audit)

    async def health() -> None:
        await log.room(2)
        call = await run.call("webops_system_health", {}, cost="webops_system_health")
        expect(not call.is_error, f"system_health failed: {short(call.text)}")
        expect(not call.budget_waits, "the budget refused it first (timing not comparable)")
        expect(
            call.seconds < HEALTH_LIMIT_SECONDS,
            f"system_health took {call.seconds:.1f} s (limit {HEALTH_LIMIT_SECONDS:.0f} s)",
        )
        print(f"        system_health answered in {call.seconds:.2f} s: {call.structured.get('overall_status')}")

    await run.check(f"system_health answers within {HEALTH_LIMIT_SECONDS:.0f} s", health)

    async def delete() -> None:
        await log.room(5)
        call = await run.call(
            "webops_delete_deployment",
            {"deployment_id": good, "confirm_name": good},
            cost="webops_delete_deployment",
        )
        expect(not call.is_error, f"delete failed: {short(call.text)}")
        expect(call.structured["deleted"] is False, f"deleted is {call.structured['deleted']}")
        expect("requested" in call.text, f"the text does not say requested: {short(call.text)}")

    await run.check("delete with confirm_name: deleted false, 'requested'", delete)

    async def confirmations() -> None:
        # The panel has no environments: every deployment counts as production, so the
        # deploys, the stop, the restart and the delete asked the person; the start did not.
        # (A call the request budget refused is repeated, and asks again.)
        expect(
            set(PERSON.asked) == {good, bad} and PERSON.asked.count(good) >= 4 and PERSON.asked.count(bad) == 1,
            f"the person was asked about {PERSON.asked}",
        )

    await run.check("the person confirmed the two deploys, stop, restart and delete", confirmations)

    # -- the panel ends the session: the server logs in again, the caller notices nothing
    async def relogin() -> None:
        await log.room(5)
        sessions = end_sessions(args.panel_db, args.user, os.environ["WEBOPS_CHECK_PASSWORD"])
        call = await run.call("webops_get_status", {"deployment_id": fixture}, cost="webops_get_status after the session ended")
        expect(not call.is_error, f"the call after the session ended failed: {short(call.text)}")
        paths = call.paths()
        expect(
            any(p.startswith("POST /auth/login/ 302") for p in paths),
            f"no new login after {sessions} session(s) ended: {paths}",
        )
        expect(any(" 302" in p and "/api/" in p for p in paths), f"the panel did not refuse the old session: {paths}")

    await run.check("after the panel ended the session, the next call logs in again and succeeds", relogin)

    # -- 50 calls in a row, within the budget
    async def burst() -> None:
        mark = log.count()
        refusals_before = len(run.budget_refusals)
        started = time.monotonic()
        failures = []
        for i in range(BURST_CALLS):
            if i % 2 == 0:
                call = await run.call("webops_list_deployments", {"limit": 5})
            else:
                call = await run.call("webops_get_status", {"deployment_id": fixture})
            if call.is_error:
                failures.append(f"call {i + 1} ({call.tool}): {short(call.text, 200)}")
        await log.settle()
        spent = len(log.since(mark))
        refusals = run.budget_refusals[refusals_before:]
        took = time.monotonic() - started
        run.costs.append((f"{BURST_CALLS} calls in a row (list / get_status alternating)", spent, took, ""))
        print(
            f"        {BURST_CALLS} calls in {took:.0f} s: {spent} panel requests, "
            f"{len(refusals)} budget refusal(s) waited out ({sum(refusals)} s)"
        )
        expect(not failures, "; ".join(failures[:3]))
        # Each get_status reads the deployment (1 request); the list is read at most once per
        # cache TTL, and the names come from it.
        bound = BURST_CALLS // 2 + int(took // CACHE_TTL_SECONDS) + 1
        expect(spent <= bound, f"{spent} panel requests for {BURST_CALLS} calls in {took:.0f} s (bound {bound})")

    await run.check(
        f"{BURST_CALLS} calls in a row all succeed (budget refusals waited out), list cached within its TTL", burst
    )

    async def no_429() -> None:
        expect(not run.surfaced_429, f"a tool surfaced a 429: {run.surfaced_429[:2]}")
        limited = [p for _, m, p, s in log.since(0) if s == 429]
        expect(not limited, f"the panel answered 429 to {limited[:3]}")

    await run.check(f"no call surfaced a 429 and the panel answered none ({run.calls} tool calls)", no_429)


async def login_failures(run: Run, args: argparse.Namespace) -> None:
    """A wrong password and a two-factor user, each a short-lived `webops-mcp stdio` against the
    auth panel: one clear tool error, one login attempt."""
    auth_log = PanelLog(args.auth_panel_log)
    cases = [
        ("wrong-password", args.user, "not-the-password-" + uuid.uuid4().hex[:6], ("wrong user name or password", args.user)),
        ("two-factor", args.bob, os.environ["WEBOPS_CHECK_BOB_PASSWORD"], ("two-factor", args.bob)),
    ]
    for case, user, password, words in cases:

        async def body(case: str = case, user: str = user, password: str = password, words: tuple = words) -> None:
            errlog = os.path.join(args.out_dir, f"stdio-server-{case}.log")
            # Each server its own audit log: the hash chain is per server.
            config = os.path.join(args.out_dir, f"stdio-{case}.toml")
            with open(config, "w", encoding="utf-8") as f:
                f.write(f'# Written by check_panel.py.\n[security]\naudit_log = "audit-stdio-{case}.jsonl"\n')
            env = {"WEBOPS_API_URL": args.auth_panel_url, "WEBOPS_USERNAME": user, "WEBOPS_PASSWORD": password}
            mark = auth_log.count()
            async with stdio_session(args, env, errlog, config) as client:
                call = await run.call("webops_list_deployments", {}, client=client)
                await auth_log.settle()
                expect(call.is_error, f"the call answered: {short(call.text)}")
                for word in words:
                    expect(word in call.text, f"the error does not mention {word!r}: {short(call.text)}")
                expect("could not log in" in call.text, f"not a login error: {short(call.text)}")
                posts = [p for _, m, p, _ in auth_log.since(mark) if m == "POST" and p.startswith("/auth/login/")]
                expect(len(posts) == 1, f"{len(posts)} login attempts for one call")

        label = "a wrong password" if case == "wrong-password" else f"{args.bob} (two-factor login)"
        await run.check(f"{label}: one clear tool error, one login attempt", body)
    auth_log.stop()


async def production_defaults(run: Run, args: argparse.Namespace) -> None:
    """The production binary with its defaults (no configuration file at all) refuses a deploy of
    file:///etc/passwd, and of this check's own http:// repository on 127.0.0.1, saying what is
    allowed, with zero requests to the panel (the auth panel: its own request budget)."""
    auth_log = PanelLog(args.auth_panel_log)

    async def body() -> None:
        errlog = os.path.join(args.out_dir, "stdio-server-defaults.log")
        env = {
            "WEBOPS_API_URL": args.auth_panel_url,
            "WEBOPS_USERNAME": args.user,
            "WEBOPS_PASSWORD": os.environ["WEBOPS_CHECK_PASSWORD"],
        }
        mark = auth_log.count()
        name = f"mcp-{run.label}-defaults"
        async with stdio_session(args, env, errlog, no_config=True) as client:
            for repository, words in (
                ("file:///etc/passwd", ("file: URLs are not accepted", "repository must be an https:// URL")),
                (args.deploy_repo, ("http:// URLs are not accepted on this server", "allowed_repository_hosts")),
            ):
                call = await run.call("webops_deploy_app", {"app_name": name, "repository": repository}, client=client)
                expect(call.is_error, f"the deploy of {repository} answered: {short(call.text)}")
                for word in words:
                    expect(word in call.text, f"the refusal of {repository} does not say {word!r}: {short(call.text)}")
        await auth_log.settle()
        sent = [f"{m} {p}" for _, m, p, _ in auth_log.since(mark)]
        expect(not sent, f"the refused deploys sent {sent}")

    await run.check(
        "the binary with its defaults refuses a deploy of file:///etc/passwd (and of an http:// loopback "
        "repository), saying what is allowed, with zero panel requests",
        body,
    )
    auth_log.stop()


# ---------------------------------------------------------------------------------------------
# Connecting


@asynccontextmanager
async def stdio_session(
    args: argparse.Namespace,
    env: dict[str, str],
    errlog_path: str,
    config: str | None = None,
    *,
    no_config: bool = False,
) -> AsyncIterator[Client]:
    """`webops-mcp stdio` with `config` (default: --stdio-config), or with none at all."""
    config_args = [] if no_config else ["--config", config or args.stdio_config]
    params = StdioServerParameters(
        command=args.server_bin,
        args=["--log-level", args.log_level, *config_args, "stdio"],
        env=env,
        cwd=args.out_dir,
    )
    with open(errlog_path, "a", encoding="utf-8") as errlog:
        async with Client(stdio_client(params, errlog=errlog), mode="legacy", elicitation_callback=PERSON) as client:
            yield client


@asynccontextmanager
async def http_session(url: str, key: str) -> AsyncIterator[Client]:
    timeout = httpx2.Timeout(30.0, read=300.0)
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=timeout) as http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(transport, mode="auto", elicitation_callback=PERSON) as client:
            yield client


def print_costs(run: Run) -> None:
    print(f"\n  panel requests per call ({run.label}; from the panel's access log):")
    print(f"  {'requests':>8}  {'seconds':>7}  call")
    for label, n, seconds, paths in run.costs:
        print(f"  {n:>8}  {seconds:>7.1f}  {label}")
        if paths and n:
            print(f"  {'':>8}  {'':>7}    {paths}")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", required=True)
    parser.add_argument("--transport", choices=("stdio", "http"), required=True)
    parser.add_argument("--server-bin", required=True)
    parser.add_argument("--stdio-config")
    parser.add_argument("--http-url")
    parser.add_argument("--panel-url", required=True)
    parser.add_argument("--panel-log", required=True)
    parser.add_argument("--panel-db", required=True)
    parser.add_argument("--auth-panel-url")
    parser.add_argument("--auth-panel-log")
    parser.add_argument("--deploy-repo", required=True)
    parser.add_argument("--unclonable-repo", required=True)
    parser.add_argument("--fixture", required=True)
    parser.add_argument("--fixture-logs", required=True, help="JSON: [[level, message], ...] oldest first")
    parser.add_argument("--user", required=True)
    parser.add_argument("--bob", required=True)
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args()
    fixture_logs = json.loads(args.fixture_logs)
    password = os.environ.get("WEBOPS_CHECK_PASSWORD", "")
    if not password:
        print("WEBOPS_CHECK_PASSWORD must be set", file=sys.stderr)
        return 2

    started = time.monotonic()
    log = PanelLog(args.panel_log)
    if args.transport == "stdio":
        env = {"WEBOPS_API_URL": args.panel_url, "WEBOPS_USERNAME": args.user, "WEBOPS_PASSWORD": password}
        connect = lambda: stdio_session(args, env, os.path.join(args.out_dir, "stdio-server.log"))  # noqa: E731
    else:
        connect = lambda: http_session(args.http_url, os.environ["WEBOPS_MCP_KEY"])  # noqa: E731

    run: Run | None = None
    try:
        with anyio.fail_after(450):
            async with connect() as client:
                run = Run(args.label, client, log, args.out_dir)
                print(f"  {args.label}: connected (protocol {client.protocol_version}) to {args.panel_url}", flush=True)
                await exercise(run, args, fixture_logs)
                if args.auth_panel_url:
                    await login_failures(run, args)
                    await production_defaults(run, args)
    except Exception as e:  # noqa: BLE001
        if run is None:
            run = Run(args.label, None, log, args.out_dir)  # type: ignore[arg-type]
        run.fail("the run", f"{type(e).__name__}: {e}")
        traceback.print_exc(file=sys.stdout)
    finally:
        log.stop()

    print_costs(run)
    took = time.monotonic() - started
    versions = f"mcp {importlib.metadata.version('mcp')}"
    print(
        f"\n  {args.label} ({versions}): {len(run.passed)} passed, {len(run.failed)} failed; {run.calls} tool calls, "
        f"{len(run.budget_refusals)} budget refusal(s) waited out, {took:.0f} s"
    )
    with open(os.path.join(args.out_dir, f"summary-{args.label}.json"), "w", encoding="utf-8") as f:
        json.dump(
            {
                "passed": run.passed,
                "failed": run.failed,
                "costs": [{"call": c[0], "requests": c[1], "seconds": round(c[2], 2)} for c in run.costs],
                "seconds": round(took, 1),
            },
            f,
            indent=1,
        )
    return 1 if run.failed else 0


if __name__ == "__main__":
    sys.exit(anyio.run(main))
