"""`journey check`: each configured vendor's credentials tried with a few cheap calls (one page of one
record, or the vendor's own scope listing), reporting what they could verify and what is missing.

Each source module has a `check` function with the same settings as its dlt source (the same config
sections, so whatever configures a run configures its check); this module runs them and reports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from pipelines.http import VendorClient, VendorError

CHECK_RETRY_SECONDS = 15.0  # a check gives up sooner than a run: it is asked while someone waits


def quick(client: VendorClient) -> VendorClient:
    """The client with retries bounded for a check rather than a run."""
    client.max_retry_seconds = min(client.max_retry_seconds, CHECK_RETRY_SECONDS)
    return client


@dataclass
class Check:
    vendor: str
    verified: list[str] = field(default_factory=list)  # permissions or scopes a call proved
    missing: list[str] = field(default_factory=list)  # needed ones the vendor refused, with why each is needed
    problem: str | None = None  # why nothing could be checked (not configured, wrong credential, unreachable)
    configured: bool = True

    @property
    def ok(self) -> bool:
        return self.configured and not self.missing and not self.problem


def try_reads(vendor: str, client: VendorClient, reads: dict[str, tuple[str, dict]]) -> Check:
    """Each read (`name -> (path, params)`) once: answered means verified, 403 means that permission is
    missing; any other refusal (a wrong credential's 401, a wrong URL's 404) is raised."""
    check, client = Check(vendor), quick(client)
    for name, (path, params) in reads.items():
        try:
            client.get(path, params)
        except VendorError as error:
            if error.status != 403:
                raise
            check.missing.append(f"{name}: {error}")
        else:
            check.verified.append(name)
    return check


def run_checks(sources: dict[str, Callable[[], Check]], missing_settings: dict[str, list[str]]) -> list[Check]:
    """Every vendor account's check; an unconfigured one is reported with the settings it lacks."""
    checks = []
    for vendor, check in sources.items():
        if missing_settings.get(vendor):
            checks.append(Check(vendor, configured=False,
                                problem=f"not configured: set {', '.join(missing_settings[vendor])}"))
            continue
        try:
            checks.append(replace(check(), vendor=vendor))  # named as configured: `shopify.eu`
        except VendorError as error:
            checks.append(Check(vendor, problem=str(error)))
    return checks


def report(checks: list[Check]) -> tuple[str, int]:
    """The report as the user reads it, and the exit code: 1 if a configured vendor misses anything or
    none is configured, else 0."""
    lines = []
    for check in checks:
        state = "ok" if check.ok else ("not configured" if not check.configured else "FAILED")
        lines.append(f"{check.vendor}: {state}")
        lines += [f"  verified: {name}" for name in check.verified]
        lines += [f"  missing:  {name}" for name in check.missing]
        if check.problem:
            lines.append(f"  {check.problem}")
    configured = [c for c in checks if c.configured]
    if not configured:
        lines.append("No vendor is configured: set the settings named above (README, Configuration).")
    failed = not configured or any(not c.ok for c in configured)
    return "\n".join(lines), 1 if failed else 0
