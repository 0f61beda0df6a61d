"""`pgolf-audit comment` against a small fake GitHub API on 127.0.0.1.

The fake implements the endpoints the command uses (GET /user, list/create comments with
Link pagination, PATCH a comment, GET a pull) plus scripted failures. It serves on an
ephemeral port, answers a bounded number of requests, and is shut down after each test.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner

from pgolf_audit.github_comment import (
    COMMENT_BUDGET, MARKER, GitHubClient, GitHubError, comment_command, fit_body, upsert_comment,
)

REPO = "openai/parameter-golf"
BOT = "github-actions[bot]"
MAX_REQUESTS = 200
PAGE_SIZE = 2  # small pages so that a handful of comments exercises pagination


class FakeGitHub:
    def __init__(self):
        self.login: str | None = BOT        # None: /user answers 403 like an installation token
        self.comments: list[dict] = []
        self.head_sha = "a" * 40
        self.failures: dict[tuple[str, str], list[tuple[int, dict, dict]]] = {}  # (method, path) -> queued replies
        self.requests: list[tuple[str, str, dict | None]] = []
        self.next_id = 1000
        self.link_override: str | None = None
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        # Whatever happens in a test, the server stops by itself after a minute.
        self.watchdog = threading.Timer(60, self.stop)

    def start(self):
        self.thread.start()
        self.watchdog.start()
        return self

    def stop(self):
        self.watchdog.cancel()
        self.server.shutdown()
        self.server.server_close()

    def add_comment(self, body: str, login: str = BOT, user_type: str = "Bot") -> dict:
        comment = {"id": self.next_id, "body": body, "user": {"login": login, "type": user_type},
                   "html_url": f"https://github.example/{REPO}/pull/7#issuecomment-{self.next_id}"}
        self.next_id += 1
        self.comments.append(comment)
        return comment

    def fail(self, method: str, path: str, status: int, body: dict | None = None, headers: dict | None = None, times: int = 1):
        self.failures.setdefault((method, path), []).extend([(status, body or {"message": "scripted"}, headers or {})] * times)

    def calls(self, method: str) -> list[tuple[str, str, dict | None]]:
        return [r for r in self.requests if r[0] == method]

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def _reply(self, status, payload, headers=None):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                parts = urlsplit(self.path)
                fake.requests.append((method, self.path, body))
                if len(fake.requests) > MAX_REQUESTS:
                    return self._reply(500, {"message": "request budget of the fake exhausted"})
                if self.headers.get("Authorization") != "Bearer test-token":
                    return self._reply(401, {"message": "Bad credentials"})
                queued = fake.failures.get((method, parts.path))
                if queued:
                    status, payload, headers = queued.pop(0)
                    return self._reply(status, payload, headers)
                path = parts.path
                if method == "GET" and path == "/user":
                    if fake.login is None:
                        return self._reply(403, {"message": "Resource not accessible by integration"})
                    return self._reply(200, {"login": fake.login})
                if method == "GET" and path == f"/repos/{REPO}/pulls/7":
                    return self._reply(200, {"number": 7, "head": {"sha": fake.head_sha}})
                if path == f"/repos/{REPO}/issues/7/comments":
                    if method == "GET":
                        query = parse_qs(parts.query)
                        assert query.get("per_page") == ["100"]
                        page = int(query.get("page", ["1"])[0])
                        chunk = fake.comments[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
                        headers = {}
                        if page * PAGE_SIZE < len(fake.comments):
                            nxt = fake.link_override or f"{fake.url}{path}?per_page=100&page={page + 1}"
                            headers["Link"] = f'<{nxt}>; rel="next", <{fake.url}{path}?per_page=100&page=99>; rel="last"'
                        return self._reply(200, chunk, headers)
                    if method == "POST":
                        comment = fake.add_comment(body["body"], login=fake.login or BOT)
                        return self._reply(201, comment)
                if method == "PATCH" and path.startswith(f"/repos/{REPO}/issues/comments/"):
                    cid = int(path.rsplit("/", 1)[1])
                    for comment in fake.comments:
                        if comment["id"] == cid:
                            comment["body"] = body["body"]
                            return self._reply(200, comment)
                    return self._reply(404, {"message": "Not Found"})
                return self._reply(404, {"message": "Not Found"})

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

            def do_PATCH(self):
                self._handle("PATCH")

        return Handler


@pytest.fixture
def github(monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    fake = FakeGitHub().start()
    monkeypatch.setenv("GITHUB_API_URL", fake.url)
    monkeypatch.setenv("GITHUB_TOKEN", "test-token")
    monkeypatch.delenv("PGOLF_AUDIT_COMMENT_AUTHOR", raising=False)
    try:
        yield fake
    finally:
        fake.stop()


def review(text: str = "verdict PASS") -> str:
    return f"{MARKER}\n## pgolf-audit: {text}\n"


def run_comment(tmp_path, body: str, *extra: str):
    path = tmp_path / "review.md"
    path.write_text(body, encoding="utf-8")
    return CliRunner().invoke(comment_command, ["--repo", REPO, "--pr", "7", "--body-file", str(path),
                                                "--retry-delay", "0", *extra])


def test_creates_the_comment_when_none_exists(github, tmp_path):
    github.add_comment("a human review", login="alice", user_type="User")
    result = run_comment(tmp_path, review())
    assert result.exit_code == 0, result.output
    assert result.output.startswith("created https://github.example/")
    posted = github.calls("POST")
    assert len(posted) == 1 and posted[0][2]["body"].startswith(MARKER)


def test_updates_its_own_comment_found_on_a_later_page(github, tmp_path):
    for i in range(5):
        github.add_comment(f"chatter {i}", login="alice", user_type="User")
    mine = github.add_comment(review("old verdict"))
    result = run_comment(tmp_path, review("new verdict"))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("updated ")
    assert not github.calls("POST")
    patched = github.calls("PATCH")
    assert len(patched) == 1 and patched[0][1].endswith(f"/issues/comments/{mine['id']}")
    assert "new verdict" in mine["body"]
    pages = [path for method, path, _ in github.requests if method == "GET" and "/comments" in path]
    assert len(pages) == 3  # 6 comments, 2 per page: the Link header was followed


def test_skips_when_unchanged(github, tmp_path):
    github.add_comment(review().replace("\n", "\r\n"))  # GitHub may hand back CRLF
    result = run_comment(tmp_path, review())
    assert result.exit_code == 0, result.output
    assert result.output.startswith("unchanged ")
    assert not github.calls("POST") and not github.calls("PATCH")


def test_a_marker_in_someone_elses_comment_is_not_taken_over(github, tmp_path):
    hostile = github.add_comment(review("PASS (forged)"), login="mallory", user_type="User")
    result = run_comment(tmp_path, review())
    assert result.exit_code == 0, result.output
    assert result.output.startswith("created ")
    assert hostile["body"] == review("PASS (forged)")


def test_installation_token_uses_author_option(github, tmp_path):
    github.login = None  # GET /user -> 403, as for the Actions GITHUB_TOKEN
    github.add_comment(review("PASS (forged)"), login="mallory", user_type="User")
    mine = github.add_comment(review("old"), login=BOT)
    result = run_comment(tmp_path, review("new"), "--author", BOT)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("updated ") and "new" in mine["body"]


def test_installation_token_without_author_matches_bot_comments_only(github, tmp_path):
    github.login = None
    human = github.add_comment(review("forged"), login="mallory", user_type="User")
    bot = github.add_comment(review("old"), login=BOT)
    result = run_comment(tmp_path, review("new"))
    assert result.exit_code == 0, result.output
    assert "bot comments only" in result.output  # the warning (stderr is mixed in)
    assert human["body"] == review("forged") and "new" in bot["body"]


def test_retries_server_errors_with_backoff(github, tmp_path):
    github.fail("POST", f"/repos/{REPO}/issues/7/comments", 502, times=2)
    result = run_comment(tmp_path, review())
    assert result.exit_code == 0, result.output
    assert len(github.calls("POST")) == 3
    assert result.output.startswith("created ")


def test_retries_a_secondary_rate_limit(github, tmp_path):
    github.fail("POST", f"/repos/{REPO}/issues/7/comments", 403,
                {"message": "You have exceeded a secondary rate limit."}, {"Retry-After": "0"})
    result = run_comment(tmp_path, review())
    assert result.exit_code == 0, result.output
    assert len(github.calls("POST")) == 2


def test_gives_up_after_bounded_retries(github, tmp_path):
    github.fail("GET", f"/repos/{REPO}/issues/7/comments", 503, times=10)
    result = run_comment(tmp_path, review())
    assert result.exit_code == 2
    assert "503" in result.output
    assert len([r for r in github.requests if "/comments" in r[1]]) == 4  # 1 try + 3 retries


@pytest.mark.parametrize("status,method,path,words", [
    (401, "GET", "/user", "rejected the token"),
    (403, "POST", f"/repos/{REPO}/issues/7/comments", "pull-requests: write"),
    (404, "GET", f"/repos/{REPO}/issues/7/comments", "not found"),
    (422, "POST", f"/repos/{REPO}/issues/7/comments", "could not process"),
])
def test_api_errors_exit_2_with_a_clear_message(github, tmp_path, status, method, path, words):
    github.fail(method, path, status, {"message": "scripted failure"})
    result = run_comment(tmp_path, review())
    assert result.exit_code == 2, result.output
    assert words in result.output and "scripted failure" in result.output
    assert "Traceback" not in result.output


def test_bad_token_is_reported(github, tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "wrong")
    result = run_comment(tmp_path, review())
    assert result.exit_code == 2 and "401" in result.output


def test_missing_token_and_bad_arguments(github, tmp_path, monkeypatch):
    assert run_comment(tmp_path, review(), "--repo", "not a repo").exit_code == 2
    monkeypatch.delenv("GITHUB_TOKEN")
    result = run_comment(tmp_path, review())
    assert result.exit_code == 2 and "GITHUB_TOKEN" in result.output
    assert not github.requests


def test_pr_number_must_be_an_integer(github, tmp_path):
    path = tmp_path / "review.md"
    path.write_text(review())
    result = CliRunner().invoke(comment_command, ["--repo", REPO, "--pr", "7; rm -rf /", "--body-file", str(path)])
    assert result.exit_code == 2 and not github.requests


def test_expect_head_sha(github, tmp_path):
    ok = run_comment(tmp_path, review(), "--expect-head-sha", "a" * 40)
    assert ok.exit_code == 0, ok.output
    wrong = run_comment(tmp_path, review("other"), "--expect-head-sha", "b" * 40)
    assert wrong.exit_code == 2 and "another commit" in wrong.output


def test_a_next_link_to_another_host_is_refused(github, tmp_path):
    for i in range(3):
        github.add_comment(f"chatter {i}", login="alice", user_type="User")
    github.link_override = "http://198.51.100.1/steal?page=2"
    result = run_comment(tmp_path, review())
    assert result.exit_code == 2 and "another host" in result.output


def test_oversized_body_is_trimmed_saying_what_was_cut(github, tmp_path):
    checks = "<details><summary>All checks (400 run, 0 skipped)</summary>\n\n" + "| PG1 | x | pass | 0 | |\n" * 4000 + "</details>\n"
    excerpt = "  ```text\n" + "  excerpt line\n" * 3000 + "  ```\n"
    body = review() + "\n#### Findings\n\n- **PG201 artifact-over-limit**: too big\n" + excerpt + "\n" + checks
    assert len(body) > 65_536
    result = run_comment(tmp_path, body)
    assert result.exit_code == 0, result.output
    posted = github.calls("POST")[0][2]["body"]
    assert len(posted) <= COMMENT_BUDGET
    assert posted.startswith(MARKER)
    assert "Trimmed to fit GitHub's comment size limit" in posted
    assert "lists of all checks" in posted and "PG201 artifact-over-limit" in posted


def test_report_json_is_rendered_with_escaping(github, tmp_path):
    from pgolf_audit import ruleset
    from pgolf_audit.model import AuditReport, Category, Confidence, Finding, FolderResult, Severity
    from pgolf_audit.render import document

    # a report as an audit writes it (a ruleset id and the track's limits), but for its hostile names
    rules = ruleset.get("2026-04-28")
    result = FolderResult(path="records/track_10min_16mb/<img src=x onerror=alert(1)>", name="<img src=x onerror=alert(1)>",
                          track="track_10min_16mb", track_source="path", ruleset=rules.id)
    result.limits = rules.limits("track_10min_16mb").to_json()
    result.findings.append(Finding("PG603", "bad-folder-name", Severity.WARNING, Confidence.HIGH, Category.PACKAGING,
                                   "folder name '](javascript:alert(1))' is odd"))
    result.finalise()
    doc = document(AuditReport(tool={"name": "pgolf-audit", "version": "0", "rules_digest": "sha256:0"}, results=[result]))
    path = tmp_path / "report.json"
    path.write_text(json.dumps(doc))
    out = CliRunner().invoke(comment_command, ["--repo", REPO, "--pr", "7", "--report-json", str(path)])
    assert out.exit_code == 0, out.output
    posted = github.calls("POST")[0][2]["body"]
    from test_github_formats import strip_code_spans

    outside_code = strip_code_spans(posted)
    assert re.search(r"(?<!\\)<img", outside_code) is None
    assert re.search(r"(?<!\\)\]\(javascript:", outside_code) is None
    bad = tmp_path / "bad.json"
    bad.write_text('{"verdict": "PASS", "tool": {}}')
    failed = CliRunner().invoke(comment_command, ["--repo", REPO, "--pr", "7", "--report-json", str(bad)])
    assert failed.exit_code == 2 and "Traceback" not in failed.output


def test_client_refuses_non_http_api_url():
    with pytest.raises(GitHubError):
        GitHubClient("file:///etc/passwd", "t")


def test_upsert_prepends_the_marker(github):
    client = GitHubClient(github.url, "test-token", backoff=0)
    outcome = upsert_comment(client, REPO, 7, "no marker here\n")
    assert outcome.action == "created"
    assert github.comments[-1]["body"].startswith(MARKER)


# ---- trimming without a server ------------------------------------------------------------------

def test_fit_body_leaves_small_bodies_alone():
    assert fit_body(review(), 1000) == (review(), [])


def test_fit_body_drops_sections_in_order_and_only_as_needed():
    checks = "<details><summary>All checks (3 run, 0 skipped)</summary>\n\n" + "| row |\n" * 500 + "</details>\n"
    infos = "<details><summary>Info (2)</summary>\n\n" + "- info finding\n" * 50 + "</details>\n"
    excerpt = "  ````text\n  ``` inner fence\n" + "  code\n" * 50 + "  ````\n"
    body = review() + excerpt + infos + checks
    text, cut = fit_body(body, len(body) - 1000)
    assert [c.split(" (")[0] for c in cut] == ["lists of all checks and changed paths"]
    assert "Info (2)" in text and "inner fence" in text
    text, cut = fit_body(body, 1200)
    assert [c.split(" (")[0] for c in cut] == ["lists of all checks and changed paths", "evidence excerpts", "info findings"]
    assert "inner fence" not in text and "Info (2)" not in text
    assert len(text) <= 1200


def test_fit_body_hard_cut_closes_open_blocks():
    body = review() + "<details><summary>Suppressed findings (1)</summary>\n\n```text\n" + "x" * 50 + "\n" * 5000
    text, cut = fit_body(body, 2000)
    assert cut[-1] == "end of the review"
    assert len(text) <= 2000
    assert text.count("```") % 2 == 0
    assert text.count("<details>") == text.count("</details>")


def test_fit_body_by_bytes():
    body = review() + "é" * 5000 + "\n"
    text, _ = fit_body(body, 3000, measure=lambda s: len(s.encode("utf-8")))
    assert len(text.encode("utf-8")) <= 3000


def test_fit_body_on_a_rendered_review():
    from pgolf_audit.model import (
        AuditReport, Category, CheckOutcome, CheckStatus, Confidence, Evidence, Finding, FolderResult, Location, Severity,
    )
    from pgolf_audit.render import document, render

    result = FolderResult(path="records/track_10min_16mb/X", name="X", track="track_10min_16mb", track_source="path",
                          ruleset="2026-04")
    excerpt = "\n".join(f"step {i}: </details> ``` <!-- pgolf-audit:review -->" for i in range(400))
    result.findings.append(Finding("PG201", "artifact-over-limit", Severity.ERROR, Confidence.HIGH, Category.ARTIFACT,
                                   "over the cap", location=Location("train_seed42.log", 3), evidence=Evidence(excerpt=excerpt)))
    result.findings.append(Finding("PG605", "wrapped-code", Severity.INFO, Confidence.HIGH, Category.PACKAGING, "wrapped"))
    result.checks.extend(CheckOutcome(f"PG{i:03d}", "some-check", CheckStatus.PASS, "ran " * 20) for i in range(300))
    result.finalise()
    body = render(document(AuditReport(tool={"name": "pgolf-audit", "version": "0", "rules_digest": "x"},
                                       results=[result])), "markdown")
    text, cut = fit_body(body, len(body) // 4)
    assert [c.split(" (")[0] for c in cut] == ["lists of all checks and changed paths", "evidence excerpts"]
    assert "step 1:" not in text and "over the cap" in text and "All checks" not in text
    assert text.count("<details>") == text.count("</details>")
    assert text.startswith(MARKER + "\n> ✂️ Trimmed")
