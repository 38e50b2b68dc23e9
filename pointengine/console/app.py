"""The staff console: a local web application to write, check, forecast, explain and publish
programs, served with every asset it uses (no CDN: it runs on a closed government network).

One page (``static/index.html``) talks JSON to ``/api``. Staff sign in per jurisdiction
(:mod:`pointengine.console.accounts`); a session is a random token in an ``HttpOnly``,
``SameSite=Strict`` cookie, and every request that changes something must be JSON from the
console's own origin, so another site cannot act for a signed-in member of staff. A member of
staff lists, opens and publishes their own jurisdiction's programs only; every publication,
refusal and sign-in goes into the audit trail (:class:`pointengine.catalog.publish.AuditTrail`).
The long runs (forecast, replaying history, explaining a person) run one at a time in a thread
and report their progress to the page, which polls ``/api/jobs/{id}``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.middleware.trustedhost import TrustedHostMiddleware

from pointengine.catalog.drafts import check_draft
from pointengine.catalog.loading import load_catalog
from pointengine.catalog.publish import MESSAGES as PUBLISH_MESSAGES
from pointengine.catalog.publish import AuditTrail, publish, publish_message
from pointengine.catalog.schema import editor_schema
from pointengine.console.accounts import Account, Accounts
from pointengine.console.words import WORDS
from pointengine.errors import OutputError, PointEngineError, PublishRefused, RuleFileError
from pointengine.i18n import DEFAULT_LANG, Lang, Text, lang_of, say
from pointengine.model.jst import JST
from pointengine.model.municipalities import registry
from pointengine.model.privacy import carries_my_number

__all__ = ["ConsoleConfig", "create_console"]

COOKIE = "pointengine_console"
SESSION_SECONDS = 8 * 3600
MAX_BODY = 1024 * 1024
"""The largest request body read (a draft, a sign-in); a larger one is refused, unread."""
MAX_TEXT = 256 * 1024
"""The largest program file the editor sends (the largest shipped file is under 3 KiB)."""
_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'self'")


@dataclass
class ConsoleConfig:
    """Where the console reads and writes: the rules folder it publishes into, its state
    folder (accounts and audit trail), and the folder of past events and ledgers staff may
    replay or explain from (none: those screens have nothing to choose)."""

    rules: Path
    state: Path
    history: Path | None = None
    lang: Lang = DEFAULT_LANG
    now: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(JST))
    hosts: tuple[str, ...] = ("127.0.0.1", "localhost")
    """The names the console answers to (a page served under another, a rebound DNS name, is
    refused)."""


class ConsoleRefused(PointEngineError):
    """An API request refused with a code of :data:`WORDS` and an HTTP status."""

    def __init__(self, status: int, code: str, **args: object) -> None:
        super().__init__(code)
        self.status, self.code, self.args_ = status, code, args


@dataclass
class _Session:
    account: Account
    expires: float


@dataclass
class _Sessions:
    """The signed-in staff: token → session (kept in memory: a restart signs everyone out)."""

    by_token: dict[str, _Session] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def who(self, token: str) -> Account | None:
        with self.lock:
            session = self.by_token.get(token)
            if session is None or session.expires < time.monotonic():
                self.by_token.pop(token, None)
                return None
            session.expires = time.monotonic() + SESSION_SECONDS
            return session.account

    def start(self, account: Account) -> str:
        token = secrets.token_urlsafe(32)
        with self.lock:
            self.by_token[token] = _Session(account, time.monotonic() + SESSION_SECONDS)
        return token

    def end(self, token: str) -> None:
        with self.lock:
            self.by_token.pop(token, None)


def _staff(request: Request) -> Account:
    """The signed-in member of staff; 401 ``not_signed_in`` for anyone else."""
    sessions: _Sessions = request.app.state.sessions
    token = request.cookies.get(COOKIE, "")
    account = sessions.who(token)
    if account is None:
        raise ConsoleRefused(401, "not_signed_in")
    accounts: Accounts = request.app.state.accounts
    if accounts.names().get(account.name) != account.jurisdiction:
        # the account was removed or moved to another jurisdiction since it signed in
        sessions.end(token)
        raise ConsoleRefused(401, "not_signed_in")
    return account


Staff = Annotated[Account, Depends(_staff)]


@dataclass
class _Job:
    owner: str
    kind: str
    state: str = "running"
    label: str = ""
    done: int = 0
    total: int | None = None
    result: Any = None
    error: str | None = None


class SignIn(BaseModel):
    """The sign-in form."""

    name: Annotated[str, Field(max_length=64)]
    password: Annotated[str, Field(max_length=1024)]


class Draft(BaseModel):
    """The editor's text, and the name it is checked under."""

    text: Annotated[str, Field(max_length=MAX_TEXT)]
    name: Annotated[str, Field(max_length=200)] = "draft.yaml"
    lang: Lang | None = None


class ForecastAsk(Draft):
    """A forecast of the draft on a generated population."""

    persons: Annotated[int, Field(ge=100, le=200_000)] = 5_000
    events: Annotated[int, Field(ge=1_000, le=2_000_000)] = 50_000
    seed: Annotated[int, Field(ge=0, le=2**31)] = 2022


class CompareAsk(Draft):
    """Replaying a file of past events under the draft."""

    events: Annotated[str, Field(max_length=200)]
    paid: Annotated[str | None, Field(max_length=200)] = None


class ExplainAsk(BaseModel):
    """Explaining one person from a file of past events (and the ledger of what was paid)."""

    person: Annotated[str, Field(max_length=200)]
    events: Annotated[str, Field(max_length=200)]
    ledger: Annotated[str | None, Field(max_length=200)] = None
    lang: Lang | None = None


class PublishAsk(BaseModel):
    """A new version of a program (``program``), or a new program file (``new_file``)."""

    text: Annotated[str, Field(max_length=MAX_TEXT)]
    effective_from: dt.datetime
    reason: Annotated[str, Field(max_length=2000)]
    program: Annotated[str | None, Field(max_length=100)] = None
    new_file: Annotated[str | None, Field(max_length=100)] = None
    opened_sha256: Annotated[str | None, Field(max_length=64)] = None
    """The SHA-256 of the file as the draft was opened from it (refused if it changed)."""
    lang: Lang | None = None


def _static() -> Path:
    return Path(str(resources.files("pointengine.console") / "static"))


def place_name(code: str, lang: Lang) -> str:
    """A jurisdiction's name for the page: ``広島県三次市`` for ``342092``."""
    if code == "national":
        return "国" if lang == "ja" else "national"
    return registry().label_of(code)


def create_console(config: ConsoleConfig) -> FastAPI:
    """The console's ASGI application."""
    app = FastAPI(title="pointengine console", docs_url=None, redoc_url=None, openapi_url=None)
    accounts = Accounts(config.state / "accounts.json")
    trail = AuditTrail(config.state / "audit.jsonl")
    sessions = _Sessions()
    app.state.sessions = sessions
    app.state.accounts = accounts
    jobs: dict[str, _Job] = {}
    one_run = threading.Semaphore(1)

    def lang_for(request: Request, asked: Lang | None = None) -> Lang:
        return asked or lang_of(request.query_params.get("lang")) or config.lang

    @app.exception_handler(ConsoleRefused)
    async def refused(request: Request, exc: ConsoleRefused) -> JSONResponse:
        return JSONResponse({"code": exc.code, "message": say(
            WORDS, Text(exc.code, exc.args_), lang_for(request))}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, exc: RequestValidationError) -> JSONResponse:
        # which fields, never their values (a body may carry anything, a My Number included)
        fields = ", ".join(sorted({".".join(str(p) for p in e["loc"][1:]) or "body"
                                   for e in exc.errors()}))
        return JSONResponse({"code": "bad_request", "message": say(
            WORDS, Text("bad_request", {"reason": fields}), lang_for(request))},
            status_code=400)

    @app.exception_handler(PointEngineError)
    async def failed(request: Request, exc: PointEngineError) -> JSONResponse:
        # a broken rules folder or accounts file: said in one line, never a traceback
        return JSONResponse({"code": "failed", "message": say(
            WORDS, Text("failed", {"reason": _reason(exc)}), lang_for(request))},
            status_code=500)

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Any]) -> Response:
        if request.method not in ("GET", "HEAD"):
            origin = request.headers.get("origin")
            own = f"{request.url.scheme}://{request.url.netloc}"
            json_body = request.headers.get("content-type", "").startswith("application/json")
            if (origin is not None and origin != own) or (
                    request.method == "POST" and not json_body):
                lang = lang_for(request)
                return JSONResponse({"code": "cross_origin", "message": say(
                    WORDS, Text("cross_origin"), lang)}, status_code=403)
        response: Response = await call_next(request)
        response.headers["Content-Security-Policy"] = _CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        return response

    def history_file(name: str | None) -> Path | None:
        if name is None or name == "":
            return None
        files = {p.name: p for p in _history(config.history)}
        if name not in files:
            raise ConsoleRefused(404, "unknown_file", name=name)
        return files[name]

    def start(kind: str, who: Account, run: Callable[[_Job], Any]) -> dict[str, str]:
        if not one_run.acquire(blocking=False):
            raise ConsoleRefused(409, "busy")
        job_id = uuid.uuid4().hex
        job = _Job(owner=who.name, kind=kind)
        jobs[job_id] = job

        def work() -> None:
            try:
                job.result = run(job)
                job.state = "done"
            except Exception as exc:
                job.error = _reason(exc)
                job.state = "failed"
            finally:
                one_run.release()

        threading.Thread(target=work, name=f"console-{kind}", daemon=True).start()
        return {"job": job_id}

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(_static() / "index.html", media_type="text/html; charset=utf-8")

    @app.get("/api/words")
    def words() -> dict[str, Any]:
        return {"default": config.lang, "words": {code: dict(texts)
                                                   for code, texts in WORDS.items()}}

    @app.post("/api/session")
    def sign_in(form: SignIn, request: Request) -> JSONResponse:
        account = accounts.sign_in(form.name, form.password)
        if account is None:
            trail.record("sign_in_failed", form.name, "", client=_client(request))
            raise ConsoleRefused(401, "sign_in_failed")
        token = sessions.start(account)
        trail.record("sign_in", account.name, account.jurisdiction, client=_client(request))
        response = JSONResponse(_me(account, lang_for(request)))
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/",
                            secure=request.url.scheme == "https")
        return response

    @app.get("/api/session")
    def me(who: Staff, request: Request) -> dict[str, str]:
        return _me(who, lang_for(request))

    @app.delete("/api/session")
    def sign_out(request: Request) -> JSONResponse:
        sessions.end(request.cookies.get(COOKIE, ""))
        response = JSONResponse({"signed_out": True})
        response.delete_cookie(COOKIE, path="/")
        return response

    @app.get("/api/schema")
    def schema(who: Staff) -> dict[str, Any]:
        return editor_schema("program")

    @app.get("/api/programs")
    def programs(who: Staff) -> list[dict[str, Any]]:
        catalog = load_catalog(config.rules)
        out = []
        for program in catalog.programs.values():
            current = program.current
            if current.jurisdiction != who.jurisdiction:
                continue
            out.append({"id": program.id, "name": current.name, "type": current.type_letter,
                        "version": current.version, "file": _relative(program.path,
                                                                      config.rules),
                        "effective_from": current.effective_from.isoformat()
                        if current.effective_from else None})
        return sorted(out, key=lambda p: p["id"])

    @app.get("/api/programs/{program_id}")
    def program(program_id: str, who: Staff, request: Request) -> dict[str, Any]:
        catalog = load_catalog(config.rules)
        found = catalog.programs.get(program_id)
        if found is None:
            raise ConsoleRefused(404, "unknown_program", program=program_id)
        owner = found.current.jurisdiction
        if owner != who.jurisdiction:
            trail.record("open_refused", who.name, who.jurisdiction, program=program_id)
            raise ConsoleRefused(403, "not_your_jurisdiction",
                                 jurisdiction=place_name(owner, lang_for(request)))
        data = found.path.read_bytes()
        return {"id": program_id, "file": _relative(found.path, config.rules),
                "text": data.decode("utf-8"), "version": found.current.version,
                "sha256": hashlib.sha256(data).hexdigest()}

    @app.post("/api/check")
    def check(draft: Draft, who: Staff, request: Request) -> dict[str, Any]:
        lang = lang_for(request, draft.lang)
        checked = check_draft(draft.text, name=draft.name, rules=config.rules)
        return {"program": checked.program_id, "problems": [
            {"line": p.line, "field": p.field, "severity": p.severity,
             "message": p.say(lang), "suggestion": p.suggestion}
            for p in checked.problems]}

    @app.get("/api/history")
    def history(who: Staff) -> list[dict[str, Any]]:
        return [{"name": p.name, "bytes": p.stat().st_size} for p in _history(config.history)]

    @app.post("/api/forecast")
    def forecast(ask: ForecastAsk, who: Staff, request: Request) -> dict[str, str]:
        lang = lang_for(request, ask.lang)
        return start("forecast", who, lambda job: _run_forecast(config, ask, lang, job))

    @app.post("/api/compare")
    def compare(ask: CompareAsk, who: Staff, request: Request) -> dict[str, str]:
        lang = lang_for(request, ask.lang)
        events = history_file(ask.events)
        paid = history_file(ask.paid)
        assert events is not None
        return start("compare", who,
                     lambda job: _run_compare(config, ask, events, paid, lang, job))

    @app.post("/api/explain")
    def explain(ask: ExplainAsk, who: Staff, request: Request) -> dict[str, str]:
        lang = lang_for(request, ask.lang)
        if carries_my_number(ask.person.encode("utf-8")):
            raise ConsoleRefused(400, "my_number")
        events = history_file(ask.events)
        ledger = history_file(ask.ledger)
        assert events is not None
        return start("explain", who,
                     lambda job: _run_explain(config, ask.person, events, ledger, lang, job))

    @app.get("/api/jobs/{job_id}")
    def job(job_id: str, who: Staff) -> dict[str, Any]:
        found = jobs.get(job_id)
        if found is None or found.owner != who.name:
            raise ConsoleRefused(404, "unknown_job")
        if found.state != "running":  # collected: a person's explanation is not kept
            jobs.pop(job_id, None)
        return {"state": found.state, "label": found.label, "done": found.done,
                "total": found.total, "result": found.result, "error": found.error}

    @app.post("/api/publish")
    def publish_version(ask: PublishAsk, who: Staff, request: Request) -> dict[str, Any]:
        lang = lang_for(request, ask.lang)
        try:
            done = publish(rules=config.rules, draft=ask.text, who=who.name,
                           staff_jurisdiction=who.jurisdiction, reason=ask.reason,
                           effective_from=ask.effective_from, trail=trail,
                           program=ask.program, new_file=ask.new_file, now=config.now(),
                           opened_sha256=ask.opened_sha256)
        except PublishRefused as exc:
            return JSONResponse({"code": exc.code, "message": publish_message(exc, lang)},
                                status_code=409 if exc.code != "not_your_jurisdiction"
                                else 403)  # type: ignore[return-value]
        except OutputError as exc:
            raise ConsoleRefused(500, "cannot_write", file=exc.path.name) from None
        return {"file": _relative(Path(done.file), config.rules), "program": done.program,
                "version": done.version, "effective_from": done.effective_from,
                "appended": done.appended, "sha256": done.after_sha256}

    @app.get("/api/audit")
    def audit(who: Staff, request: Request) -> list[dict[str, Any]]:
        lang = lang_for(request)
        acts = trail.read(who.jurisdiction)[::-1]
        for act in acts:
            if act.get("code") in PUBLISH_MESSAGES:
                facts = act.get("facts") or {}
                act["message"] = publish_message(PublishRefused(act["code"], **facts), lang)
        return acts

    app.mount("/static", StaticFiles(directory=_static()), name="static")
    app.add_middleware(_BodyLimit, limit=MAX_BODY)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(config.hosts))
    return app


class _BodyLimit:
    """Refuses (413) a request body over ``limit`` bytes, declared or counted as it arrives
    (a chunked upload declares none), before the application holds it."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await _too_large(send)
            return
        seen = 0
        answered = False

        async def counted() -> Any:
            nonlocal seen, answered
            message = await receive()
            if message["type"] == "http.request" and not answered:
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    # answered here: the application, told the client left, answers no more
                    answered = True
                    await _too_large(send)
                    return {"type": "http.disconnect"}
            return message

        async def unless_answered(message: Any) -> None:
            if not answered:
                await send(message)

        await self.app(scope, counted, unless_answered)


async def _too_large(send: Any) -> None:
    body = orjson.dumps({"code": "too_large", "message": say(WORDS, Text("too_large"), "ja")})
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def _me(account: Account, lang: Lang) -> dict[str, str]:
    return {"name": account.name, "jurisdiction": account.jurisdiction,
            "place": place_name(account.jurisdiction, lang)}


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return path.name


def _history(folder: Path | None) -> list[Path]:
    """The events and ledger files staff may choose: ``*.jsonl`` directly in the folder."""
    if folder is None or not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix == ".jsonl" and p.is_file())


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RuleFileError):
        return "; ".join(str(p) for p in exc.problems[:5])
    return str(exc) or type(exc).__name__


def _draft_file(folder: str, text: str, name: str) -> Path:
    path = Path(folder) / (Path(name).name if name.endswith(".yaml") else "draft.yaml")
    path.write_text(text, encoding="utf-8")
    return path


def _progress(job: _Job) -> Callable[[str, int, int | None], None]:
    def update(label: str, done: int, total: int | None) -> None:
        job.label, job.done, job.total = label, done, total
    return update


def _share(value: float | None) -> str:
    return "" if value is None else f"{value:.1%}"


def _run_forecast(config: ConsoleConfig, ask: ForecastAsk, lang: Lang, job: _Job) -> Any:
    """The forecast of the draft, shaped for the page: summary lines, assumptions, warnings,
    the series per day and the figures per provider."""
    from pointengine.replay.forecast import render
    from pointengine.replay.simulate import simulate

    with tempfile.TemporaryDirectory(prefix="pointengine-console-") as folder:
        report = simulate(_draft_file(folder, ask.text, ask.name), rules=config.rules,
                          persons=ask.persons, events=ask.events, seed=ask.seed,
                          on_progress=_progress(job))
    money = say(WORDS, Text("yen", {"amount": f"{report.points_total:,}"}), lang)
    summary: list[tuple[str, str]] = [
        (say(WORDS, Text("program_name"), lang), f"{report.name} ({report.program})")]
    if report.population is not None:
        summary.append((say(WORDS, Text("persons_reached"), lang),
                        f"{report.persons_reached:,} / {report.population:,} "
                        f"({_share(report.reached_share)})"))
    else:
        summary.append((say(WORDS, Text("persons_reached"), lang), f"{report.persons_reached:,}"))
    summary.append((say(WORDS, Text("points_total"), lang), money))
    if report.budget_yen is not None:
        budget = say(WORDS, Text("yen", {"amount": f"{report.budget_yen:,}"}), lang)
        summary.append((say(WORDS, Text("budget"), lang),
                        f"{budget} ({_share(report.budget_share)})"))
    summary.append((say(WORDS, Text("budget_runs_out"), lang), report.budget_exhausted_on
                    or say(WORDS, Text("budget_lasts"), lang)))
    series = report.series
    left = series.budget_left
    return {
        "summary": summary,
        "assumptions": [render(t, lang) for t in report.assumptions],
        "warnings": [render(t, lang) for t in report.notices] + list(report.warnings),
        "days": [{"day": day, "points": series.points[i],
                  "cumulative": series.cumulative_points[i],
                  "budget_left": left[i] if left is not None else None,
                  "reached": series.persons_reached[i]} for i, day in enumerate(series.days)],
        "providers": [{"provider": p.name or p.provider, "points": p.points,
                       "persons": p.persons} for p in report.providers],
    }


def _bytes_read(job: _Job, label: str) -> Callable[[int, int | None], None]:
    def update(done: int, total: int | None) -> None:
        job.label, job.done, job.total = label, done, total
    return update


def _section(title: str, lines: list[str] | None = None, headers: list[str] | None = None,
             rows: list[list[object]] | None = None) -> dict[str, Any]:
    return {"title": title, "lines": lines, "headers": headers, "rows": rows}


def _words(lang: Lang, *codes: str) -> list[str]:
    return [say(WORDS, Text(code), lang) for code in codes]


def _run_compare(config: ConsoleConfig, ask: CompareAsk, events: Path, paid: Path | None,
                 lang: Lang, job: _Job) -> Any:
    """History replayed under the draft, as the page's sections: the summary, the tables per
    program, provider and day, and the persons who gain and lose most."""
    from pointengine.replay.compare import MESSAGES, Row, compare

    with tempfile.TemporaryDirectory(prefix="pointengine-console-") as folder:
        ask_folder = folder
        result = compare(_draft_file(folder, ask.text, ask.name), events=events,
                         rules=config.rules, paid=paid, on_progress=_bytes_read(job, "compare"))

    def table(title: str, key: str, rows: list[Any]) -> dict[str, Any]:
        return _section(say(WORDS, Text(title), lang),
                        headers=_words(lang, key, "draft_would_pay", "was_paid", "difference"),
                        rows=[[r.key if isinstance(r, Row) else r.person, f"{r.draft:,}",
                               f"{r.paid:,}", f"{r.difference:+,}"] for r in rows])

    def local(line: str) -> str:
        # staff see the files by the names they chose them by, not the server's folders
        for folder in {str(events.parent), str(Path(ask_folder))}:
            line = line.replace(folder + "/", "")
        return line

    return {"sections": [
        _section(say(WORDS, Text("compare"), lang),
                 lines=[local(say(MESSAGES, t, lang)) for t in result.summary]
                 + [local(w) for w in result.warnings]),
        table("per_program", "col_program", result.per_program),
        table("per_provider", "col_key", result.per_provider),
        table("gainers", "person", result.top_gainers),
        table("losers", "person", result.top_losers),
        table("per_day", "col_at", result.per_day),
    ]}


def _run_explain(config: ConsoleConfig, person: str, events: Path, ledger: Path | None,
                 lang: Lang, job: _Job) -> Any:
    """One person explained, as the page's sections: the notes, each event per program with
    the observed value beside the requirement, the refused lines and the totals."""
    from pointengine.replay.explain import MESSAGES, explain_person

    found = explain_person(person, events=events, rules=config.rules, ledger=ledger,
                           on_progress=_bytes_read(job, "explain"))

    def s(text: Text | None) -> str:
        return "" if text is None else say(MESSAGES, text, lang)

    rows: list[list[object]] = []
    for event in found.events:
        amount = "" if event.amount is None else f"{event.amount:,}"
        kind = f"event_{event.type}"
        head = [event.at, say(WORDS, Text(kind), lang) if kind in WORDS else event.type, amount]
        if not event.programs:
            rows.append([*head, "", s(event.message), "", "", "", "", ""])
        for answer in event.programs:
            rows.append([*head, f"{answer.program}@v{answer.version}", s(answer.message),
                         ", ".join(s(t) for t in answer.observed), s(answer.required),
                         f"{answer.awarded:,}", f"{answer.wanted:,}",
                         ", ".join(s(t) for t in answer.limits)])
        rows.extend([*head, "", s(text), "", "", "", "", ""] for text in event.reversals)
    totals = [*found.totals, *([found.total] if found.total is not None else [])]
    notes = [s(Text("head.source_ledger", {"ledger": ledger.name if ledger else ""})
               if found.source == "ledger" else Text("head.source_replay"))]
    notes += [s(note) for note in found.notes]
    return {"sections": [
        _section(say(WORDS, Text("explain"), lang) + f": {found.person}", lines=notes),
        _section(say(WORDS, Text("events_of_person"), lang),
                 headers=_words(lang, "col_at", "col_type", "col_amount", "col_program",
                                "col_result", "col_observed", "col_required", "col_awarded",
                                "col_wanted", "col_limits"), rows=rows),
        _section(say(WORDS, Text("refused_lines"), lang),
                 headers=_words(lang, "col_line", "col_code", "col_reason"),
                 rows=[[r.line, r.code, s(r.message)] for r in found.refused]),
        _section(say(WORDS, Text("totals"), lang),
                 headers=_words(lang, "col_program", "col_awarded", "col_reversed", "col_net"),
                 rows=[[t.program, f"{t.awarded:,}", f"{t.reversed:,}", f"{t.net:,}"]
                       for t in totals]),
    ]}
