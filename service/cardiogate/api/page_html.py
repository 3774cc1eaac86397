"""The status page and its login form as plain HTML strings: no template engine, no build
step, no script. Every value is escaped."""

from __future__ import annotations

from datetime import datetime
from html import escape

from cardiogate import __version__
from cardiogate.api.page_view import JobLine, StatusView
from cardiogate.api.shadow_schemas import ModelRef, ShadowTaskOut
from cardiogate.store.events import JobEventRecord

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
ul.lesions,ol.events{margin:.2em 0;padding-left:1.2em}details summary{cursor:pointer;color:#555}
td.study-date{white-space:nowrap}
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


def _shadow(view: StatusView) -> str:
    """Serving beside candidate models: runs, agreement, disagreements (shadow mode)."""
    if not view.shadow:
        return ""

    def model(ref: ModelRef | None) -> str:
        return "none" if ref is None else f"{escape(ref.name)} {escape(ref.version)}"

    def row(t: ShadowTaskOut) -> str:
        ratio = "-" if t.agreement_ratio is None else f"{t.agreement_ratio:.0%}"
        jobs = ", ".join(f'<a href="/api/v1/jobs/{j}/shadow">{j}</a>' for j in t.disagreements[:5])
        more = f" and {len(t.disagreements) - 5} more" if len(t.disagreements) > 5 else ""
        state = "" if t.candidate_loaded else ' <span class="muted">(not loaded)</span>'
        return (
            f'<tr data-task="{escape(t.task)}"><td>{escape(t.task)}</td><td>{model(t.serving)}</td>'
            f"<td>{model(t.candidate)}{state}</td><td>{t.runs}</td>"
            f'<td class="agreement">{ratio}</td><td>{jobs or "none"}{more}</td></tr>'
        )

    return (
        '<section id="shadow"><h2>Shadow mode</h2><p class="muted">Candidate models run beside '
        "the serving ones; their results are stored and compared, never sent. "
        '<a href="/api/v1/shadow">Details</a>. <code>cardiogate models promote</code> makes a '
        "candidate serve (at restart).</p><table><tr><th>Task</th><th>Serving</th>"
        "<th>Candidate</th><th>Runs</th><th>Agreement</th><th>Disagreed on jobs</th></tr>"
        f"{''.join(row(t) for t in view.shadow)}</table></section>"
    )


def _review(view: StatusView) -> str:
    loop = ""
    if view.reviews is not None:
        yields = ", ".join(
            f"{escape(c)} {ratio:.0%} of {n}" for c, (ratio, n) in view.reviews.yields.items()
        )
        loop = (
            f'<p id="review-settled">{view.reviews.settled} result(s) settled by reviewers, '
            f"{view.reviews.changed} changed by them"
            + (f"; changed, by why they were selected: {yields}" if yields else "")
            + '. <a href="/api/v1/review/agreement">Reviewers\' agreement</a>.</p>'
        )
    return (
        '<section id="review"><h2>Review queue</h2><p><a href="/api/v1/review">'
        f'<span id="review-count">{view.review_total}</span> result(s) waiting for a '
        f"reviewer's verdict</a></p>{loop}</section>"
    )


def _promotions(view: StatusView) -> str:
    """The latest promotions and rollbacks: who changed which model, and when."""
    if not view.promotions:
        return ""
    rows = "".join(
        f'<tr data-task="{escape(p.task)}"><td>{p.created_at:%Y-%m-%d %H:%M}</td>'
        f"<td>{escape(p.task)}</td><td>{escape(p.action)}</td>"
        f"<td>{escape(p.from_version or '-')} &rarr; {escape(p.to_version)}</td>"
        f"<td>{escape(p.by)}</td><td>{escape(p.note)}</td></tr>"
        for p in view.promotions
    )
    return (
        '<section id="promotions"><h2>Model changes</h2><p class="muted">'
        "<code>cardiogate models promote</code> and <code>rollback</code>; each takes effect "
        "at the next restart.</p><table><tr><th>When (UTC)</th><th>Task</th><th>Action</th>"
        f"<th>Version</th><th>By</th><th>Note</th></tr>{rows}</table></section>"
    )


def _viewer(job: JobLine) -> str:
    if job.viewer_url is None:
        return "<td></td>"
    return (
        f'<td><a class="viewer" href="{escape(job.viewer_url)}" target="_blank" '
        f'rel="noopener noreferrer">open study</a></td>'
    )


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


def _series(job: JobLine) -> str:
    """SeriesNumber (muted) and SeriesDescription: how the PACS lists the series."""
    number = "" if job.series_number is None else f'<span class="muted">{job.series_number}</span> '
    return f'<td class="series">{number}{escape(job.series_description or "")}</td>'


def _patient(job: JobLine, show: bool) -> str:
    if not show:
        return ""
    name, patient_id = job.header.patient_name or "", job.header.patient_id or ""
    return (
        f'<td class="patient">{escape(name)}<br>'
        f'<span class="muted">{escape(patient_id)}</span></td>'
    )


def _event(e: JobEventRecord) -> str:
    attempt = f" (attempt {e.attempt})" if e.attempt is not None else ""
    detail = f": {escape(e.detail)}" if e.detail else ""
    return f"<li>{_when(e.at)} {escape(e.event)}{attempt}{detail}</li>"


def _timeline(job: JobLine) -> str:
    if not job.timeline:
        return ""
    events = "".join(_event(e) for e in job.timeline)
    count = f"{len(job.timeline)} event{'' if len(job.timeline) == 1 else 's'}"
    return (
        f'<details class="timeline"><summary>timeline, {count}'
        f'</summary><ol class="events">{events}</ol></details>'
    )


def _job(job: JobLine, view: StatusView) -> str:
    thumb = (
        f'<img class="thumb" src="/jobs/{job.id}/thumbnail.png" alt="key image of job {job.id}">'
        if job.has_key_image
        else ""
    )
    flag = f' <span class="bad">needs review: {escape(job.review)}</span>' if job.review else ""
    lesions = "".join(f"<li>{escape(text)}</li>" for text in job.lesions)
    lesions = f'<ul class="lesions">{lesions}</ul>' if lesions else ""
    return (
        f'<tr id="job-{job.id}" data-state="{escape(job.state)}">'
        f'<td><a href="/api/v1/jobs/{job.id}">{job.id}</a></td>'
        f'<td>{escape(job.task or "")}</td><td class="state">{escape(job.state)}</td>'
        f'<td class="study-date">{escape(job.header.study_date or "")}</td>'
        f"<td>{escape(job.modality or '')}</td>{_series(job)}{_patient(job, view.show_patient)}"
        f"<td>{_when(job.created_at)}</td>"
        f'<td class="summary">{escape(job.summary)}{flag}{lesions}{_timeline(job)}</td>'
        f"<td>{thumb}</td>{_viewer(job) if view.viewer else ''}</tr>"
    )


def _columns(view: StatusView, *names: str) -> str:
    patient = "<th>Patient</th>" if view.show_patient else ""
    head = "<th>Study date</th><th>Modality</th><th>Series</th>" + patient
    return "".join(head if n == "*" else f"<th>{n}</th>" for n in names)


def _jobs(view: StatusView) -> str:
    if not view.jobs:
        return '<section id="jobs"><h2>Recent jobs</h2><p>No job yet.</p></section>'
    rows = "".join(_job(j, view) for j in view.jobs)
    viewer = ("Viewer",) if view.viewer else ()
    header = _columns(view, "Job", "Task", "State", "*", "Created", "Result", "Key image", *viewer)
    return (
        f'<section id="jobs"><h2>Recent jobs</h2><p class="muted">the latest {len(view.jobs)} '
        f'of {view.jobs_total}; <a href="/api/v1/jobs">all as JSON</a></p><table><tr>'
        f"{header}</tr>{rows}</table></section>"
    )


def _not_analysed(job: JobLine, view: StatusView) -> str:
    return (
        f'<tr id="job-{job.id}" data-state="{escape(job.state)}">'
        f'<td><a href="/api/v1/jobs/{job.id}">{job.id}</a></td>'
        f'<td class="study-date">{escape(job.header.study_date or "")}</td>'
        f"<td>{escape(job.modality or '')}</td>{_series(job)}{_patient(job, view.show_patient)}"
        f'<td>{_when(job.created_at)}</td><td class="reason">{escape(job.summary)}</td></tr>'
    )


def _ignored(view: StatusView) -> str:
    if not view.ignored:
        return ""
    rows = "".join(_not_analysed(j, view) for j in view.ignored)
    return (
        '<section id="ignored"><h2>Series not analysed</h2><p class="muted">the latest '
        f"{len(view.ignored)} of {view.ignored_total}, each with the reason; "
        '<a href="/api/v1/jobs?state=ignored">all as JSON</a>; '
        "<code>cardiogate route explain</code> shows the rule each series meets</p><table><tr>"
        f"{_columns(view, 'Job', '*', 'Completed', 'Why not')}</tr>{rows}</table></section>"
    )


def status_page(view: StatusView, logout: bool) -> str:
    """The page: health, models, shadow mode (with a candidate), review queue count,
    recent jobs and the series not analysed; refreshes itself."""
    out = (
        '<form method="post" action="/logout"><button type="submit">Log out</button></form>'
        if logout
        else ""
    )
    body = (
        f'<header><h1>cardiogate <span class="muted">{escape(__version__)}</span></h1>{out}'
        f"</header>{_health(view)}{_models(view)}{_shadow(view)}{_promotions(view)}{_review(view)}{_jobs(view)}{_ignored(view)}"
    )
    return _document("cardiogate status", body, refresh=True)
