"""The status page and its login form as plain HTML strings: no template engine, no build
step, no script. Every value is escaped."""

from __future__ import annotations

from html import escape

from cardiogate import __version__
from cardiogate.api.page_view import JobLine, StatusView

NOTICE = "Research software, not for clinical use."
REFRESH_SECONDS = 30

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em auto;max-width:72em;padding:0 1em;color:#222}
h1{margin:0}h2{margin:1.2em 0 .4em;font-size:1.1em}
.notice{background:#fff3cd;border:1px solid #e0c36a;padding:.4em .7em}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.25em .6em;
border-bottom:1px solid #ddd;vertical-align:middle}
.ok{color:#176f2c;font-weight:600}.bad{color:#b00020;font-weight:600}
.error{color:#b00020}.muted{color:#666}img.thumb{max-width:96px;max-height:96px}
header{display:flex;justify-content:space-between;align-items:center;gap:1em}
""".strip()


def _document(title: str, body: str, refresh: bool = False) -> str:
    meta = f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">' if refresh else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title>{meta}<style>{_STYLE}</style></head>"
        f'<body><p class="notice">{NOTICE}</p>{body}</body></html>'
    )


def login_page(error: str | None = None) -> str:
    """The form that asks for the API token once; the session cookie keeps it."""
    problem = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    body = (
        "<h1>cardiogate</h1>"
        '<form method="post" action="/login">'
        '<p><label for="token">API token</label> '
        '<input type="password" id="token" name="token" autocomplete="current-password" '
        "required autofocus> "
        '<button type="submit">Log in</button></p></form>'
        f"{problem}"
        '<p class="muted">The token is <code>CARDIOGATE_API_TOKEN</code>, or else the file '
        "<code>api-token</code> in the service's data directory (the start-up log names it)."
        "</p>"
    )
    return _document("cardiogate: log in", body)


def _check(ok: bool) -> str:
    return '<span class="ok">OK</span>' if ok else '<span class="bad">FAILING</span>'


def _health(view: StatusView) -> str:
    state = '<span class="ok">Ready</span>' if view.ready else '<span class="bad">Not ready</span>'
    rows = "".join(
        f'<tr data-check="{escape(name)}"><td>{escape(name.replace("_", " "))}</td>'
        f"<td>{_check(ok)}</td></tr>"
        for name, ok in view.checks.items()
    )
    facts = ", ".join(
        f"{escape(key.replace('_', ' '))} {escape(str(value))}"
        for key, value in view.details.items()
    )
    return (
        f'<section id="health"><h2>Health</h2><p class="state">{state}</p>'
        f'<p class="muted">{facts}</p><table>{rows}</table></section>'
    )


def _models(view: StatusView) -> str:
    if not view.models:
        return '<section id="models"><h2>Models</h2><p>No model loaded.</p></section>'
    rows = "".join(
        f'<tr data-task="{escape(m.task)}"><td>{escape(m.task)}</td><td>{escape(m.name)}</td>'
        f"<td>{escape(m.version)}</td><td>{escape(m.provider)}</td></tr>"
        for m in view.models
    )
    return (
        '<section id="models"><h2>Models</h2><table><tr><th>Task</th><th>Name</th>'
        f"<th>Version</th><th>Provider</th></tr>{rows}</table></section>"
    )


def _review(view: StatusView) -> str:
    return (
        '<section id="review"><h2>Review queue</h2><p><a href="/api/v1/review">'
        f'<span id="review-count">{view.review_total}</span> result(s) waiting for a '
        "reviewer's verdict</a></p></section>"
    )


def _viewer(job: JobLine) -> str:
    if job.viewer_url is None:
        return "<td></td>"
    return (
        f'<td><a class="viewer" href="{escape(job.viewer_url)}" target="_blank" '
        f'rel="noopener noreferrer">open study</a></td>'
    )


def _job(job: JobLine, viewer: bool) -> str:
    thumb = (
        f'<img class="thumb" src="/jobs/{job.id}/thumbnail.png" alt="key image of job {job.id}">'
        if job.has_key_image
        else ""
    )
    flag = f' <span class="bad">needs review: {escape(job.review)}</span>' if job.review else ""
    when = job.created_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    return (
        f'<tr id="job-{job.id}" data-state="{escape(job.state)}">'
        f'<td><a href="/api/v1/jobs/{job.id}">{job.id}</a></td>'
        f'<td>{escape(job.task or "")}</td><td class="state">{escape(job.state)}</td>'
        f"<td>{escape(job.modality or '')}</td><td>{when}</td>"
        f'<td class="summary">{escape(job.summary)}{flag}</td><td>{thumb}</td>'
        f"{_viewer(job) if viewer else ''}</tr>"
    )


def _jobs(view: StatusView) -> str:
    if not view.jobs:
        return '<section id="jobs"><h2>Recent jobs</h2><p>No job yet.</p></section>'
    rows = "".join(_job(j, view.viewer) for j in view.jobs)
    viewer = "<th>Viewer</th>" if view.viewer else ""
    return (
        f'<section id="jobs"><h2>Recent jobs</h2><p class="muted">the latest {len(view.jobs)} '
        f'of {view.jobs_total}; <a href="/api/v1/jobs">all as JSON</a></p><table><tr>'
        "<th>Job</th><th>Task</th><th>State</th><th>Modality</th><th>Created</th>"
        f"<th>Result</th><th>Key image</th>{viewer}</tr>{rows}</table></section>"
    )


def status_page(view: StatusView, logout: bool) -> str:
    """The page: health, models, review queue count and recent jobs; refreshes itself."""
    out = (
        '<form method="post" action="/logout"><button type="submit">Log out</button></form>'
        if logout
        else ""
    )
    body = (
        f'<header><h1>cardiogate <span class="muted">{escape(__version__)}</span></h1>{out}'
        f"</header>{_health(view)}{_models(view)}{_review(view)}{_jobs(view)}"
    )
    return _document("cardiogate status", body, refresh=True)
