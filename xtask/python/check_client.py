"""Drive webops-mcp with the official MCP Python SDK (`mcp`), as `cargo xtask python-client` does.

Over stdio (spawning `webops-mcp stdio --demo`) and over Streamable HTTP (a running
`webops-mcp http --demo`, API keys from the environment), in both connection modes of the SDK:
`legacy` (initialize handshake, sessions) and `auto` (a `server/discover` probe that adopts the
stateless 2026-07-28 revision). Each run lists the tools, calls every read tool, deploys with
`wait: true` and a progress callback, validates every `structuredContent` against the tool's
`outputSchema` with `jsonschema`, and checks the error contract: an unknown tool is a JSON-RPC
error (-32602), bad arguments and missing permissions are `isError` results.

Confirmations: the admin clients have an elicitation callback played by a scripted person. A
production deploy asks them first; a delete they decline, or confirm with a wrong name, is
refused and the deployment is still there; typing its exact name deletes it. In 2025-11-25
sessions the server asks with `elicitation/create`, in 2026-07-28 with an input-required
result the SDK answers and retries. An HTTP admin client without the callback is not offered
the delete, and a delete it sends anyway is refused with the reason.

Usage: check_client.py --server-bin PATH --stdio-config FILE --http-url URL
                       --tools NAME,... --read-tools NAME,... [--verbose]
Environment: WEBOPS_MCP_ADMIN_KEY, WEBOPS_MCP_VIEWER_KEY (never printed).
Exits non-zero, naming every failed check, when anything is wrong.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import sys
import time
import traceback
import uuid
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import anyio
import httpx2
from jsonschema.validators import validator_for
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import ElicitResult
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS

# The registry's tools and those of them that only read: given by `cargo xtask python-client`
# (--tools, --read-tools), which reads them from the tool snapshots, so no list is kept here.
ALL_TOOLS: set[str] = set()
READ_TOOLS: set[str] = set()
INVALID_PARAMS = -32602


class Failed(Exception):
    """One check failed."""


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise Failed(message)


class Person:
    """The person at the client: answers the server's questions (elicitation) from a script."""

    def __init__(self) -> None:
        self.script: list[ElicitResult] = []
        self.shown: list[str] = []

    def will(self, *answers: ElicitResult) -> None:
        self.script = list(answers)

    async def __call__(self, context: Any, params: Any) -> ElicitResult:
        self.shown.append(getattr(params, "message", ""))
        if not self.script:
            return ElicitResult(action="cancel")
        return self.script.pop(0)


def typing(name: str) -> ElicitResult:
    return ElicitResult(action="accept", content={"name": name})


DECLINE = ElicitResult(action="decline")


class Run:
    """The checks of one transport x mode combination."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.passed = 0
        self.failures: list[str] = []
        self.schemas: dict[str, dict[str, Any]] = {}

    def ok(self) -> None:
        self.passed += 1

    def fail(self, what: str, why: str) -> None:
        self.failures.append(f"{self.label}: {what}: {why}")

    def validate(self, tool: str, result: Any) -> dict[str, Any]:
        """A successful result: text content and structured content valid against the output schema."""
        expect(not result.is_error, f"{tool} failed: {text_of(result)}")
        expect(text_of(result).strip() != "", f"{tool} returned no text content")
        structured = result.structured_content
        expect(isinstance(structured, dict), f"{tool} returned no structuredContent object")
        schema = self.schemas.get(tool)
        expect(schema is not None, f"{tool} has no outputSchema")
        validator = validator_for(schema)(schema)
        errors = sorted(validator.iter_errors(structured), key=lambda e: list(e.absolute_path))
        if errors:
            first = errors[0]
            where = "/" + "/".join(str(p) for p in first.absolute_path)
            raise Failed(f"{tool}: structuredContent does not match its outputSchema at {where}: {first.message}")
        return structured


def describe(error: BaseException) -> str:
    """The innermost error of an exception group (what actually went wrong), with its type."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return f"{type(error).__name__}: {error}"


VERBOSE = False


def text_of(result: Any) -> str:
    return "\n".join(block.text for block in result.content if getattr(block, "type", None) == "text")


async def check(run: Run, what: str, body) -> None:
    try:
        await body()
        run.ok()
    except Failed as e:
        run.fail(what, str(e))
    except MCPError as e:
        run.fail(what, f"unexpected JSON-RPC error {e.code}: {e.message}")
    except Exception as e:  # noqa: BLE001 - report every kind of breakage as a failed check
        run.fail(what, describe(e))
        if VERBOSE:
            traceback.print_exc(file=sys.stderr)


async def exercise(client: Client, run: Run, mode: str, *, admin: bool, person: Person | None) -> None:
    """Every check of one connected client."""
    version = client.protocol_version
    if mode == "legacy":
        expect(version in HANDSHAKE_PROTOCOL_VERSIONS, f"legacy mode negotiated {version!r}")
    else:
        expect(version in MODERN_PROTOCOL_VERSIONS, f"auto mode negotiated {version!r}, not the stateless revision")
    info = client.server_info
    expect(info is None or info.name == "webops-mcp", f"server identifies as {info.name if info else None!r}")
    if mode == "legacy":
        expect(info is not None, "no serverInfo after initialize")
    print(f"  {run.label}: protocol {version}, server {info.name if info else '(anonymous)'} {info.version if info else ''}")

    listed: dict[str, Any] = {}

    async def list_tools() -> None:
        result = await client.list_tools()
        for tool in result.tools:
            listed[tool.name] = tool
        expected = (ALL_TOOLS if person else ALL_TOOLS - {"webops_delete_deployment"}) if admin else READ_TOOLS
        expect(set(listed) == expected, f"tools/list shows {sorted(listed)}, expected {sorted(expected)}")
        for tool in result.tools:
            expect(bool(tool.description), f"{tool.name} has no description")
            expect(tool.input_schema.get("type") == "object", f"{tool.name}: inputSchema is not an object schema")
            expect(tool.output_schema is not None, f"{tool.name} has no outputSchema")
            validator_for(tool.output_schema).check_schema(tool.output_schema)
            expect(tool.annotations is not None, f"{tool.name} has no annotations")
            read_only = tool.annotations.read_only_hint
            expect(read_only == (tool.name in READ_TOOLS), f"{tool.name}: readOnlyHint is {read_only}")
            run.schemas[tool.name] = tool.output_schema

    await check(run, "tools/list", list_tools)
    if not run.schemas:
        return

    deployments: list[dict[str, Any]] = []

    async def list_deployments() -> None:
        result = await client.call_tool("webops_list_deployments", {"limit": 20})
        out = run.validate("webops_list_deployments", result)
        expect(out["count"] == len(out["deployments"]) > 0, f"count {out['count']} for {len(out['deployments'])} deployments")
        deployments.extend(out["deployments"])

    await check(run, "webops_list_deployments", list_deployments)
    target = deployments[0]["name"] if deployments else "shop-api"

    async def read_tool(name: str, arguments: dict[str, Any]) -> None:
        result = await client.call_tool(name, arguments)
        run.validate(name, result)

    read_calls = [
        ("webops_get_status", {}),
        ("webops_get_status", {"deployment_id": target, "include_metrics": True}),
        ("webops_get_logs", {"deployment_id": target, "lines": 20}),
        ("webops_security_audit", {"deployment_id": target, "audit_type": "comprehensive"}),
        ("webops_system_health", {"time_range": "1h"}),
    ]
    for name, arguments in read_calls:
        await check(run, f"{name} {arguments}", lambda n=name, a=arguments: read_tool(n, a))

    async def unknown_tool() -> None:
        try:
            result = await client.call_tool("webops_no_such_tool", {})
        except MCPError as e:
            expect(e.code == INVALID_PARAMS, f"unknown tool gave JSON-RPC error {e.code}, expected {INVALID_PARAMS}")
            return
        raise Failed(f"unknown tool gave a result (isError={result.is_error}) instead of a JSON-RPC error")

    await check(run, "unknown tool is a JSON-RPC -32602 error", unknown_tool)

    async def bad_argument() -> None:
        result = await client.call_tool("webops_list_deployments", {"limit": 0})
        expect(result.is_error, "limit 0 was accepted")
        expect(result.structured_content is None, "an error result carries structuredContent")
        expect("limit" in text_of(result), f"the error does not name the argument: {text_of(result)!r}")

    await check(run, "bad argument is an isError result", bad_argument)

    async def missing_argument() -> None:
        result = await client.call_tool("webops_get_logs", {})
        expect(result.is_error, "a missing required argument was accepted")
        expect("deployment_id" in text_of(result), f"the error does not name the argument: {text_of(result)!r}")

    await check(run, "missing required argument is an isError result", missing_argument)

    if admin:
        if person:
            await check(run, "deploy with wait and progress", lambda: deploy_and_delete(client, run, person))
        else:
            await check(run, "delete refused without elicitation", lambda: delete_without_elicitation(client))
    else:

        async def forbidden() -> None:
            result = await client.call_tool(
                "webops_deploy_app", {"app_name": "viewer-try", "repository": "https://github.com/acme/x.git"}
            )
            expect(result.is_error, "a viewer could deploy")
            expect("deploy:create" in text_of(result), f"the refusal does not name the permission: {text_of(result)!r}")

        await check(run, "missing permission is an isError result", forbidden)


async def delete_without_elicitation(client: Client) -> None:
    result = await client.call_tool("webops_delete_deployment", {"deployment_id": "shop-api", "confirm_name": "shop-api"})
    text = text_of(result)
    expect(result.is_error and text.startswith("Refused"), f"delete without elicitation answered: {text[:300]}")
    expect("elicitation" in text, f"the refusal does not say how to enable it: {text[:300]}")
    status = await client.call_tool("webops_get_status", {"deployment_id": "shop-api"})
    expect(not status.is_error, "shop-api is gone after a refused delete")


async def deploy_and_delete(client: Client, run: Run, person: Person) -> None:
    name = f"py-{uuid.uuid4().hex[:10]}"
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    started = time.monotonic()
    # A production deploy (the default environment) asks the person first.
    person.will(typing(name))
    result = await client.call_tool(
        "webops_deploy_app",
        {"app_name": name, "repository": "https://github.com/acme/python-check.git", "wait": True},
        read_timeout_seconds=120,
        progress_callback=on_progress,
    )
    out = run.validate("webops_deploy_app", result)
    expect(out["name"] == name and out["waited"] is True, f"deploy answered {out}")
    expect(out["status"] == "running", f"deploy with wait ended {out['status']!r}, expected 'running'")
    expect(len(progress) >= 2, f"{len(progress)} progress notifications, expected at least 2")
    values = [p[0] for p in progress]
    expect(values == sorted(values), f"progress is not monotonic: {values}")
    expect(all(m for _, _, m in progress), "a progress notification has no message")
    print(
        f"  {run.label}: deployed {name} in {time.monotonic() - started:.1f} s "
        f"with {len(progress)} progress notifications"
    )

    status = await client.call_tool("webops_get_status", {"deployment_id": name})
    expect(run.validate("webops_get_status", status)["deployment"]["status"] == "running", "status is not running")

    expect(len(person.shown) == 1 and name in person.shown[0], f"the production deploy asked {person.shown}")

    delete = {"deployment_id": name, "confirm_name": name}
    person.will(DECLINE, typing(name + "-x"))
    for how in ("declined", "a wrong name"):
        refused = await client.call_tool("webops_delete_deployment", delete)
        text = text_of(refused)
        expect(refused.is_error and text.startswith("Refused"), f"delete {how}: {text[:300]}")
        still = await client.call_tool("webops_get_status", {"deployment_id": name})
        expect(not still.is_error, f"{name} is gone after a delete {how}")
    expect(len(person.shown) == 3, f"the person was asked {len(person.shown) - 1} times, expected 2")
    expect("production" in person.shown[1] and name in person.shown[1], f"the question lacks the blast radius: {person.shown[1][:300]}")
    wrong = await client.call_tool("webops_delete_deployment", {"deployment_id": name, "confirm_name": "not-it"})
    expect(wrong.is_error, "delete with a wrong confirm_name was accepted")
    person.will(typing(name))
    deleted = await client.call_tool("webops_delete_deployment", delete)
    expect(run.validate("webops_delete_deployment", deleted)["deleted"] is True, "delete did not delete")
    gone = await client.call_tool("webops_get_status", {"deployment_id": name})
    expect(gone.is_error, f"{name} still answers after its delete")


@asynccontextmanager
async def http_client(url: str, key: str, mode: str, person: Person | None) -> AsyncIterator[Client]:
    # The SDK's own defaults: 30 s to connect and write, 300 s to read (streams stay open).
    timeout = httpx2.Timeout(30.0, read=300.0)
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=timeout) as http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(transport, mode=mode, elicitation_callback=person) as client:
            yield client


@asynccontextmanager
async def stdio_client(server_bin: str, config: str, mode: str, person: Person) -> AsyncIterator[Client]:
    params = StdioServerParameters(
        command=server_bin,
        args=["--log-level", "warn", "--config", config, "stdio", "--demo"],
    )
    async with Client(params, mode=mode, elicitation_callback=person) as client:
        yield client


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server-bin", required=True)
    parser.add_argument("--stdio-config", required=True)
    parser.add_argument("--http-url", required=True)
    parser.add_argument("--tools", required=True, help="every tool of the registry, comma-separated")
    parser.add_argument("--read-tools", required=True, help="the registry's read tools, comma-separated")
    parser.add_argument("--verbose", action="store_true", help="print the traceback of every failure")
    args = parser.parse_args()
    global VERBOSE
    VERBOSE = args.verbose
    ALL_TOOLS.update(name for name in args.tools.split(",") if name)
    READ_TOOLS.update(name for name in args.read_tools.split(",") if name)
    if not ALL_TOOLS or not READ_TOOLS <= ALL_TOOLS:
        print(f"--tools {args.tools!r} must name the tools and include --read-tools {args.read_tools!r}", file=sys.stderr)
        return 2
    admin_key = os.environ.get("WEBOPS_MCP_ADMIN_KEY", "")
    viewer_key = os.environ.get("WEBOPS_MCP_VIEWER_KEY", "")
    if not admin_key or not viewer_key:
        print("WEBOPS_MCP_ADMIN_KEY and WEBOPS_MCP_VIEWER_KEY must be set", file=sys.stderr)
        return 2

    runs: list[Run] = []
    for mode in ("legacy", "auto"):
        person = Person()
        combos = [
            (f"stdio/{mode}", lambda m=mode, p=person: stdio_client(args.server_bin, args.stdio_config, m, p), True, person),
            (f"http/{mode}/admin", lambda m=mode, p=person: http_client(args.http_url, admin_key, m, p), True, person),
            (f"http/{mode}/admin-no-elicitation", lambda m=mode: http_client(args.http_url, admin_key, m, None), True, None),
            (f"http/{mode}/viewer", lambda m=mode: http_client(args.http_url, viewer_key, m, None), False, None),
        ]
        for label, connect, admin, asker in combos:
            run = Run(label)
            runs.append(run)
            if asker:
                asker.shown.clear()
            try:
                with anyio.fail_after(300):
                    async with connect() as client:
                        await exercise(client, run, mode, admin=admin, person=asker)
            except Failed as e:
                run.fail("connection", str(e))
            except Exception as e:  # noqa: BLE001
                run.fail("connection", describe(e))
                if VERBOSE:
                    traceback.print_exc(file=sys.stderr)

    print()
    for run in runs:
        state = "ok" if not run.failures else f"{len(run.failures)} FAILED"
        print(f"  {run.label:<34} {run.passed:>3} checks passed, {state}")
    failures = [f for run in runs for f in run.failures]
    if failures:
        print(f"\npython-client: {len(failures)} check(s) failed:", file=sys.stderr)
        for failure in failures:
            print(f"  - {failure}", file=sys.stderr)
        return 1
    total = sum(run.passed for run in runs)
    versions = f"mcp {importlib.metadata.version('mcp')}, jsonschema {importlib.metadata.version('jsonschema')}"
    print(f"\npython-client: all {total} checks passed in {len(runs)} runs ({versions})")
    return 0


if __name__ == "__main__":
    sys.exit(anyio.run(main))
