"""The sticky review comment on a pull request, and the composite action's outputs.

``pgolf-audit comment --repo owner/name --pr N --body-file review.md`` keeps ONE comment of
the tool on the PR up to date: it finds the comment carrying the hidden marker
``<!-- pgolf-audit:review -->`` written by the token's own login, edits it when the review
changed, leaves it alone when it did not ("unchanged"), and creates it otherwise.

- API: ``GITHUB_API_URL`` (default https://api.github.com, GitHub Enterprise works too) and
  the token in ``GITHUB_TOKEN`` (never a command-line argument, so it stays out of process
  listings). Endpoints: ``GET /user``, ``GET /repos/{o}/{r}/issues/{n}/comments`` (100 per
  page, following ``Link: rel="next"``), ``POST`` to the same path, ``PATCH
  /repos/{o}/{r}/issues/comments/{id}``, and with ``--expect-head-sha`` ``GET
  /repos/{o}/{r}/pulls/{n}``.
- Whose comment: ``GET /user`` names the token's login. The Actions ``GITHUB_TOKEN`` (an
  app installation token) cannot read ``/user``; then ``--author`` names the login (the
  example workflow passes ``github-actions[bot]``). ``GITHUB_ACTOR`` is *not* used: it is the
  person who triggered the run, not the bot that writes the comment. With neither, only
  comments by bot accounts that carry the marker are considered, so a person who pastes the
  marker into their own comment cannot have it taken over.
- Size: GitHub rejects comments over 65,536 characters. Bodies over the budget (60,000 by
  default) lose, in this fixed order and only as far as needed: the lists of all checks and
  changed paths, the evidence excerpts, the info findings, then the tail. The body itself
  says what was cut.
- Failures: 5xx, 429 and secondary rate limits are retried with a bounded backoff; 401, 403,
  404 and 422 end with a message saying what to fix. Every failure exits with code 2.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import click

from . import __version__
from .render import render
from .render.github import action_outputs
from .render.validate import ReportInvalid, trusted_document

MARKER = "<!-- pgolf-audit:review -->"
DEFAULT_API_URL = "https://api.github.com"
GITHUB_COMMENT_LIMIT = 65_536
COMMENT_BUDGET = 60_000           # safety margin under GitHub's limit
SUMMARY_BUDGET_BYTES = 1_000_000  # a step summary must stay under 1 MiB
MAX_PAGES = 200                   # 20,000 comments: far beyond any PR
MAX_RESPONSE_BYTES = 20 * 1024 * 1024
TOTAL_DEADLINE_S = 120.0          # one request, retries and waits included: a trickled body cannot outlive it
MAX_BODY_FILE_BYTES = 16 * 1024 * 1024
REPO_RE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
SHA_RE = re.compile(r"^[0-9a-fA-F]{40}([0-9a-fA-F]{24})?$")


class CommentFailure(click.ClickException):
    """The comment could not be posted: exit code 2 (never 1, which means 'findings')."""

    exit_code = 2


class GitHubError(Exception):
    def __init__(self, status: int | None, message: str):
        super().__init__(message)
        self.status = status


# ---- trimming a review to a size budget ------------------------------------------------------

# Each stage removes blocks the review templates emit at column 0 (submitter text inside
# excerpts is indented and the rest is escaped, so it cannot pose as one of these blocks).
_LISTS = re.compile(r"^<details><summary>(?:All checks|Changed paths)\b.*?^</details>[ \t]*\n?", re.M | re.S)
_EXCERPTS = re.compile(r"^( {2})(`{3,})text\n.*?^\1\2[ \t]*\n?", re.M | re.S)
_INFOS = re.compile(r"^<details><summary>Info \(\d+\)</summary>.*?^</details>[ \t]*\n?", re.M | re.S)
STAGES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("lists of all checks and changed paths", _LISTS, "<sub>(list omitted to fit the size limit)</sub>\n"),
    ("evidence excerpts", _EXCERPTS, "  (excerpt omitted to fit the size limit)\n"),
    ("info findings", _INFOS, "<sub>(info findings omitted to fit the size limit)</sub>\n"),
)
NOTICE_RESERVE = 400


def _notice(cut: list[str], limit_name: str) -> str:
    return (f"> ✂️ Trimmed to fit {limit_name}: removed the {', the '.join(cut)}. "
            "The complete review is in the workflow's report artifact (report.json).\n\n")


def _close_open_blocks(text: str) -> str:
    """After a hard cut: close a fenced block and any <details> left open."""
    fence: str | None = None
    depth = 0
    for line in text.splitlines():
        stripped = line.strip()
        match = re.match(r"^(`{3,})", stripped)
        if match:
            if fence is None:
                fence = match.group(1)
            elif stripped == fence:
                fence = None
            continue
        if fence is None:
            if line.startswith("<details>"):
                depth += 1
            elif line.startswith("</details>"):
                depth = max(0, depth - 1)
    tail = ""
    if fence is not None:
        tail += f"\n{fence}"
    tail += "\n</details>" * depth
    return text + tail + "\n"


def fit_body(body: str, limit: int = COMMENT_BUDGET, measure: Callable[[str], int] = len,
             limit_name: str = "GitHub's comment size limit") -> tuple[str, list[str]]:
    """Trim ``body`` to ``limit`` (as counted by ``measure``); returns the text and what was cut."""
    if measure(body) <= limit:
        return body, []
    budget = limit - NOTICE_RESERVE
    cut: list[str] = []
    text = body
    for label, pattern, replacement in STAGES:
        if measure(text) <= budget:
            break
        text, count = pattern.subn(replacement, text)
        if count:
            cut.append(f"{label} ({count})")
    if measure(text) > budget:
        keep = text
        # Cut by characters until the measure fits, then back to a line boundary.
        while measure(keep) > budget - 200 and keep:
            keep = keep[: max(0, len(keep) - max(1, (measure(keep) - budget + 200)))]
        keep = keep[: keep.rfind("\n") + 1] if "\n" in keep else keep
        dropped = len(text) - len(keep)
        text = _close_open_blocks(keep) + f"\n_… {dropped:,} more characters not shown._\n"
        cut.append("end of the review")
    notice = _notice(cut, limit_name)
    first, sep, rest = text.partition("\n")
    if first.strip().startswith("<!--"):
        text = first + sep + notice + rest
    else:
        text = notice + text
    return text, cut


# ---- the API client --------------------------------------------------------------------------

class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are refused: the token must never be sent on to another URL."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D401
        return None


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    data: Any


def _next_link(header: str | None) -> str | None:
    if not header:
        return None
    for part in header.split(","):
        match = re.match(r'\s*<([^>]+)>\s*;(.*)', part)
        if match and re.search(r'rel="?next"?', match.group(2)):
            return match.group(1)
    return None


class GitHubClient:
    def __init__(self, api_url: str, token: str, *, retries: int = 3, backoff: float = 1.0, max_wait: float = 30.0,
                 timeout: float = 30.0, deadline: float = TOTAL_DEADLINE_S, sleep: Callable[[float], None] = time.sleep):
        parsed = urllib.parse.urlsplit(api_url.rstrip("/"))
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise GitHubError(None, f"GITHUB_API_URL {api_url!r} is not an http(s) URL")
        self.api_url = api_url.rstrip("/")
        self._origin = (parsed.scheme, parsed.netloc)
        self.token = token
        self.retries = retries
        self.backoff = backoff
        self.max_wait = max_wait
        self.timeout = timeout
        self.deadline = deadline
        self.sleep = sleep
        self._opener = urllib.request.build_opener(_NoRedirect())

    def _url(self, path_or_url: str) -> str:
        if path_or_url.startswith(("http://", "https://")):
            parsed = urllib.parse.urlsplit(path_or_url)
            if (parsed.scheme, parsed.netloc) != self._origin:
                raise GitHubError(None, f"refusing to follow a link to another host: {parsed.netloc}")
            return path_or_url
        return self.api_url + path_or_url

    def _wait_for(self, attempt: int, headers: dict[str, str]) -> float:
        retry_after = headers.get("retry-after")
        if retry_after and retry_after.strip().isdigit():
            return min(float(retry_after), self.max_wait)
        reset = headers.get("x-ratelimit-reset")
        if headers.get("x-ratelimit-remaining") == "0" and reset and reset.isdigit():
            return min(max(0.0, float(reset) - time.time()), self.max_wait)
        return min(self.backoff * (2 ** attempt), self.max_wait)

    def request(self, method: str, path_or_url: str, body: dict[str, Any] | None = None) -> Response:
        url = self._url(path_or_url)
        data = json.dumps(body).encode("utf-8") if body is not None else None
        headers = {
            "Accept": "application/vnd.github+json",
            "Authorization": f"Bearer {self.token}",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": f"pgolf-audit/{__version__}",
        }
        if data is not None:
            headers["Content-Type"] = "application/json"
        last_error = ""
        deadline = time.monotonic() + self.deadline
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(url, data=data, headers=headers, method=method)
            try:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no complete answer within {self.deadline:.0f} s")
                with self._opener.open(request, timeout=min(self.timeout, remaining)) as reply:
                    raw = _read_until(reply, deadline, self.deadline)
                    reply_headers = {k.lower(): v for k, v in reply.headers.items()}
                    return Response(reply.status, reply_headers, _decode(raw))
            except urllib.error.HTTPError as exc:
                reply_headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
                raw = exc.read(MAX_RESPONSE_BYTES) if exc.fp else b""
                payload = _decode(raw)
                message = payload.get("message", "") if isinstance(payload, dict) else str(payload or "")
                if _retryable(exc.code, reply_headers, message) and attempt < self.retries:
                    last_error = f"HTTP {exc.code} {message}".strip()
                    self.sleep(self._wait_for(attempt, reply_headers))
                    continue
                if 300 <= exc.code < 400:
                    message = f"redirected to {reply_headers.get('location', '?')} (not followed)"
                raise GitHubError(exc.code, message or exc.reason or "") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException, OSError) as exc:
                # HTTPException: a malformed status line, too many or too long headers
                reason = getattr(exc, "reason", exc)
                last_error = f"cannot reach {self.api_url}: {reason}"
                if attempt < self.retries:
                    self.sleep(self._wait_for(attempt, {}))
                    continue
                raise GitHubError(None, last_error) from None
            if time.monotonic() >= deadline:
                break
        raise GitHubError(None, f"gave up after {self.retries + 1} attempts ({last_error})")

    def paginate(self, path: str) -> Iterator[dict[str, Any]]:
        url: str | None = path
        for _ in range(MAX_PAGES):
            if url is None:
                return
            reply = self.request("GET", url)
            if not isinstance(reply.data, list):
                raise GitHubError(reply.status, "expected a list of comments from the API")
            yield from reply.data
            url = _next_link(reply.headers.get("link"))
        raise GitHubError(None, f"more than {MAX_PAGES} pages of comments; stopped")


def _read_until(reply, deadline: float, total: float) -> bytes:
    """The response body, read in chunks against the total deadline (a socket timeout alone
    restarts with every byte, so a body trickled slowly would never time out)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the response took longer than {total:.0f} s")
        chunk = reply.read1(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            return b"".join(chunks)


def _decode(raw: bytes) -> Any:
    if len(raw) > MAX_RESPONSE_BYTES:
        raise GitHubError(None, "API response too large")
    if not raw:
        return None
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError):
        return raw.decode("utf-8", "replace")[:500]
    except RecursionError:
        raise GitHubError(None, "API response nested too deeply") from None


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise GitHubError(None, f"the API answered {what} as {type(value).__name__}, not a string")
    return value


def _comment_id(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise GitHubError(None, f"the API answered a comment id as {type(value).__name__} {str(value)[:40]!r}")
    return value


_SAFE_URL_RE = re.compile(r"https?://[A-Za-z0-9.-]+(?::\d+)?/[A-Za-z0-9._~/%#?=&+-]*")


def safe_url(value: Any) -> str:
    """The comment URL when it is a plain http(s) URL, else "" (it is printed to the log)."""
    if isinstance(value, str) and len(value) <= 2000 and _SAFE_URL_RE.fullmatch(value):
        return value
    return ""


def _retryable(status: int, headers: dict[str, str], message: str) -> bool:
    if status >= 500 or status == 429:
        return True
    if status == 403:
        # GitHub's secondary rate limit answers 403 with Retry-After or a message saying so.
        return "retry-after" in headers or headers.get("x-ratelimit-remaining") == "0" or "rate limit" in message.lower()
    return False


# ---- the sticky comment --------------------------------------------------------------------

def _normalise(body: str) -> str:
    return "\n".join(line.rstrip() for line in body.replace("\r\n", "\n").split("\n")).strip()


@dataclass
class Outcome:
    action: str          # created, updated, unchanged
    comment_id: int | None
    url: str
    cut: list[str]


def token_login(client: GitHubClient) -> str | None:
    """The token's login, or None when the token cannot read /user (an app installation token)."""
    try:
        reply = client.request("GET", "/user")
    except GitHubError as exc:
        if exc.status in (403, 404):
            return None
        raise
    if not isinstance(reply.data, dict) or "login" not in reply.data:
        return None
    return _text(reply.data["login"], "the token's login")


def upsert_comment(client: GitHubClient, repo: str, number: int, body: str, *, marker: str = MARKER,
                   author: str | None = None, expect_head_sha: str | None = None,
                   budget: int = COMMENT_BUDGET, warn: Callable[[str], None] = lambda _: None) -> Outcome:
    if marker not in body:
        body = marker + "\n" + body
    body, cut = fit_body(body, budget)
    if expect_head_sha:
        pull = client.request("GET", f"/repos/{repo}/pulls/{number}").data
        head = (pull or {}).get("head", {}).get("sha") if isinstance(pull, dict) else None
        if not head or head.lower() != expect_head_sha.lower():
            raise GitHubError(409, f"pull request #{number} has head {head or 'unknown'}, not {expect_head_sha}: "
                                   "the review belongs to another commit or another PR")
    login = author or token_login(client)
    if login is None:
        warn("the token cannot read /user and no --author was given: matching the marker on bot comments only")
    existing = None
    for comment in client.paginate(f"/repos/{repo}/issues/{number}/comments?per_page=100"):
        if not isinstance(comment, dict):
            raise GitHubError(None, f"the API answered a comment as {type(comment).__name__}, not an object")
        user = comment.get("user") or {}
        text = comment.get("body") or ""
        if not isinstance(user, dict) or not isinstance(text, str) or marker not in text:
            continue
        mine = (_text(user.get("login", ""), "a comment's login").lower() == login.lower()) if login else user.get("type") == "Bot"
        if mine:
            existing = comment
            break
    if existing is not None:
        comment_id = _comment_id(existing.get("id"))
        if _normalise(existing.get("body") or "") == _normalise(body):
            return Outcome("unchanged", comment_id, safe_url(existing.get("html_url")), cut)
        reply = client.request("PATCH", f"/repos/{repo}/issues/comments/{comment_id}", {"body": body})
        data = reply.data if isinstance(reply.data, dict) else {}
        return Outcome("updated", comment_id, safe_url(data.get("html_url", existing.get("html_url"))), cut)
    reply = client.request("POST", f"/repos/{repo}/issues/{number}/comments", {"body": body})
    data = reply.data if isinstance(reply.data, dict) else {}
    created = data.get("id")
    return Outcome("created", _comment_id(created) if created is not None else None, safe_url(data.get("html_url")), cut)


def explain(exc: GitHubError, repo: str, number: int) -> str:
    status = exc.status
    detail = f" ({exc})" if str(exc) else ""
    if status == 401:
        return f"GitHub rejected the token (401){detail}: check GITHUB_TOKEN"
    if status == 403:
        return (f"GitHub refused the request (403){detail}: the token needs `pull-requests: write` (or `issues: write`); "
                "a pull_request run from a fork only gets a read-only token, so post from a workflow_run job "
                "(see docs/github.md)")
    if status == 404:
        return f"{repo} or pull request #{number} was not found (404){detail}, or the token cannot see it"
    if status == 422:
        return f"GitHub could not process the comment (422){detail}"
    if status == 409:
        return str(exc)
    return f"GitHub API error{' ' + str(status) if status else ''}: {exc}"


def _read_text(path: Path, limit: int = MAX_BODY_FILE_BYTES) -> str:
    try:
        with path.open("rb") as handle:
            raw = handle.read(limit + 1)
    except OSError as exc:
        raise CommentFailure(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(raw) > limit:
        raise CommentFailure(f"{path} is larger than {limit:,} bytes")
    return raw.decode("utf-8", "replace")


def review_from_report(path: Path) -> str:
    """Render the Markdown review from a report.json with this installation's templates, so
    every submitter-controlled string in it is escaped again, whoever wrote the file."""
    try:
        doc = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise CommentFailure(f"{path} is not JSON: {exc}") from None
    if not isinstance(doc, dict) or "verdict" not in doc or "tool" not in doc:
        raise CommentFailure(f"{path} is not a pgolf-audit report")
    # schema-valid, declared fields only
    try:
        doc = trusted_document(doc)
    except ReportInvalid as exc:
        raise CommentFailure(f"{path} does not match the report schema: {exc}") from None
    try:
        return render(doc, "markdown")
    except Exception as exc:  # a malformed or hostile report must not print a traceback
        raise CommentFailure(f"{path} could not be rendered as a review ({type(exc).__name__}: {exc})") from None


@click.command("comment")
@click.option("--repo", required=True, help="owner/name of the repository.")
@click.option("--pr", "number", required=True, type=click.IntRange(min=1), help="Pull request number.")
@click.option("--body-file", type=click.Path(dir_okay=False, path_type=Path), help="The review to post (Markdown).")
@click.option("--report-json", type=click.Path(dir_okay=False, path_type=Path),
              help="Render the review from this report.json instead of taking a body file.")
@click.option("--marker", default=MARKER, show_default=True, help="Hidden marker that identifies the sticky comment.")
@click.option("--author", envvar="PGOLF_AUDIT_COMMENT_AUTHOR", default=None,
              help="Login that writes the comment, when the token cannot read /user (Actions: github-actions[bot]).")
@click.option("--expect-head-sha", default=None, help="Refuse unless the PR's head commit is this SHA.")
@click.option("--api-url", envvar="GITHUB_API_URL", default=DEFAULT_API_URL, show_default=True,
              help="GitHub API root (env GITHUB_API_URL).")
@click.option("--max-chars", type=click.IntRange(1_000, GITHUB_COMMENT_LIMIT), default=COMMENT_BUDGET, show_default=True,
              help="Trim the body to this many characters.")
@click.option("--retry-delay", type=click.FloatRange(0, 60), default=1.0, hidden=True,
              help="Base delay of the retry backoff, in seconds.")
def comment_command(repo, number, body_file, report_json, marker, author, expect_head_sha, api_url, max_chars, retry_delay):
    """Create or update the one sticky review comment of pgolf-audit on a pull request.

    The token comes from GITHUB_TOKEN. Prints "created URL", "updated URL" or "unchanged URL".
    Exit codes: 0 done, 2 anything went wrong (bad input, API error).
    """
    if not REPO_RE.match(repo):
        raise CommentFailure(f"--repo {repo!r} is not owner/name")
    if (body_file is None) == (report_json is None):
        raise CommentFailure("give exactly one of --body-file and --report-json")
    if expect_head_sha is not None and not SHA_RE.match(expect_head_sha):
        raise CommentFailure(f"--expect-head-sha {expect_head_sha!r} is not a commit SHA")
    if not marker.startswith("<!--") or not marker.endswith("-->"):
        raise CommentFailure("--marker must be a hidden HTML comment (<!-- ... -->)")
    token = os.environ.get("GITHUB_TOKEN", "").strip()
    if not token:
        raise CommentFailure("GITHUB_TOKEN is not set")
    body = review_from_report(report_json) if report_json else _read_text(body_file)
    try:
        client = GitHubClient(api_url, token, backoff=retry_delay)
        outcome = upsert_comment(client, repo, number, body, marker=marker, author=author,
                                 expect_head_sha=expect_head_sha, budget=max_chars,
                                 warn=lambda text: click.echo(f"warning: {text}", err=True))
    except GitHubError as exc:
        raise CommentFailure(explain(exc, repo, number)) from None
    if outcome.cut:
        click.echo(f"trimmed: {'; '.join(outcome.cut)}", err=True)
    click.echo(f"{outcome.action} {outcome.url}".rstrip())


# ---- the composite action's outputs ------------------------------------------------------------

@click.command("summary-outputs")
@click.argument("report", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--review", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Append this review to $GITHUB_STEP_SUMMARY, trimmed under 1 MiB.")
def summary_outputs_command(report, review):
    """Print a report's verdict and counts as key=value lines (for $GITHUB_OUTPUT).

    With --review and GITHUB_STEP_SUMMARY set, also append the review to the job summary.
    """
    try:
        doc = json.loads(_read_text(report))
    except json.JSONDecodeError as exc:
        raise CommentFailure(f"{report} is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise CommentFailure(f"{report} is not a pgolf-audit report")
    for key, value in action_outputs(doc).items():
        click.echo(f"{key}={value}")
    summary_path = os.environ.get("GITHUB_STEP_SUMMARY")
    if review is not None and summary_path:
        text, cut = fit_body(_read_text(review), SUMMARY_BUDGET_BYTES, measure=lambda s: len(s.encode("utf-8")),
                             limit_name="the 1 MiB job summary limit")
        try:
            with open(summary_path, "a", encoding="utf-8") as handle:
                handle.write(text if text.endswith("\n") else text + "\n")
        except OSError as exc:
            raise CommentFailure(f"cannot write the job summary {summary_path}: {exc.strerror or exc}") from None
        if cut:
            click.echo(f"summary trimmed: {'; '.join(cut)}", err=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(comment_command())
