"""The audit log: what the web app records, append-only storage, tamper detection by the chain
check, signed checkpoints, Merkle proofs from the database, and concurrent appenders."""

from __future__ import annotations

import gc
import json
import re
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import exc, func, select, text

from tests.conftest import PASSWORD, PG_URL, csrf_from, pdf_bytes, sign_in
from vault.audit import merkle
from vault.audit.checkpoints import (
    Checkpoints,
    LogIdentity,
    create_log_identity,
    issue_and_publish,
    published,
)
from vault.audit.models import AuditCheckpoint, AuditEvent
from vault.audit.service import AuditLog, RequestInfo, Tag, canonical_json
from vault.audit.verify import VerificationFailed
from vault.cli import cli
from vault.cli_audit import check_database
from vault.crypto import signed_note
from vault.db import unit_of_work
from vault.documents.models import DocumentVersion
from vault.identity.models import Role
from vault.runtime import Runtime

REPO = Path(__file__).resolve().parent.parent
AUDIT_TABLES = ("audit_events", "audit_nodes", "audit_checkpoints", "audit_verifications")
#: A user agent that tries to close the JSON string, add a field and start a new line/event.
FORGED_AGENT = 'x","tag":"forged\n{"seq":0}'


# -- helpers ------------------------------------------------------------------------------------


@pytest.fixture
def identity(runtime: Runtime, settings) -> LogIdentity:
    """The log's signing identity, as ``vault init`` creates it."""
    runtime.log_identity = create_log_identity(settings)
    return runtime.log_identity


def _invoke(app, *args: str):
    """Run ``vault <args>`` against the test app."""
    return app.test_cli_runner().invoke(cli, list(args))


def grow(runtime: Runtime, count: int, *, checkpoint_each: bool = True) -> None:
    """Append ``count`` events, one transaction each, and optionally a published checkpoint
    after each, so that the chain check can locate an altered entry between two of them."""
    for number in range(count):
        with unit_of_work(runtime.sessions) as session:
            AuditLog(session, clock=runtime.clock).append(
                Tag.USER_CREATED, target={"n": number},
                request=RequestInfo(request_id=f"r{number}", client="test"))
        if checkpoint_each:
            publish_checkpoint(runtime)


def publish_checkpoint(runtime: Runtime) -> AuditCheckpoint:
    """Issue a checkpoint of the log as it is now and publish it."""
    return issue_and_publish(runtime.sessions, identity=runtime.log_identity, clock=runtime.clock,
                             path=runtime.settings.published_checkpoints)


def leaves(runtime: Runtime) -> list[bytes]:
    """Every leaf, in seq order."""
    with unit_of_work(runtime.sessions) as session:
        return list(session.scalars(select(AuditEvent.leaf).order_by(AuditEvent.seq)))


def events(runtime: Runtime, tag: Tag | None = None) -> list[dict]:
    """Every event (decoded), in seq order, optionally only those with ``tag``."""
    decoded = [json.loads(leaf) for leaf in leaves(runtime)]
    return [e for e in decoded if tag is None or e["tag"] == tag.value]


@contextmanager
def leaked_cursors() -> Iterator[list[str]]:
    """Collect what a failed check leaves behind: on PostgreSQL, ``yield_per`` opens a
    server-side cursor that check_database never closes when it raises (see
    ``test_a_failed_check_closes_its_cursor``). Recording them here keeps that one defect from
    surfacing as a random ResourceWarning in whichever test the garbage collector runs next."""
    found: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("error")
        warnings.simplefilter("always", ResourceWarning)
        try:
            yield found
        finally:
            gc.collect()
    found.extend(str(w.message) for w in caught)


def check(runtime: Runtime) -> str:
    """The in-app chain check (``VerificationFailed`` re-raised once the cursor is collected)."""
    with leaked_cursors():
        try:
            with unit_of_work(runtime.sessions) as session:
                return check_database(session, runtime)
        except VerificationFailed as failure:
            message = str(failure)
    raise VerificationFailed(message)


def invoke_check(app):
    """``vault audit check`` (with the leaked cursor of a failed check collected)."""
    with leaked_cursors():
        return _invoke(app, "audit", "check")


def dialect(runtime: Runtime) -> str:
    """``sqlite`` or ``postgresql``."""
    return runtime.engine.dialect.name


def drop_triggers(runtime: Runtime) -> None:
    """What an attacker with the database's owner account can do: remove the append-only
    triggers (the names are those of migration 0003)."""
    with runtime.engine.begin() as connection:
        for table in AUDIT_TABLES:
            if dialect(runtime) == "postgresql":
                names = (f"{table}_append_only", f"{table}_no_truncate")
                for name in names:
                    connection.execute(text(f"DROP TRIGGER {name} ON {table}"))
            else:
                for name in (f"{table}_no_update", f"{table}_no_delete"):
                    connection.execute(text(f"DROP TRIGGER {name}"))


def rows(runtime: Runtime, table: str) -> list[tuple]:
    """Every row of ``table`` in a stable order (for before/after comparisons)."""
    query = text(f"SELECT * FROM {table} ORDER BY 1, 2")  # noqa: S608 - names from AUDIT_TABLES
    with runtime.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(query).all()]


def _upload(client, submission_id, body: bytes, *, filename: str = "proposal.pdf",
            **headers: str):
    """Upload ``body`` as the proposal through the JSON API with the browser session."""
    return client.put(
        f"/api/v1/submissions/{submission_id}/documents/proposal", data=body,
        content_type="application/pdf",
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}",
                 "X-CSRFToken": csrf_from(client, "/"), **headers})


# -- what the web app records -------------------------------------------------------------------


def test_sign_in_is_recorded_with_actor_and_request(client, make_user):
    account = make_user(Role.APPLICANT)
    csrf = csrf_from(client, "/login")
    response = client.post("/login", data={"email": account.email, "password": PASSWORD,
                                           "csrf_token": csrf},
                           headers={"User-Agent": "vault-test/1.0"})
    assert response.status_code == 302
    [event] = events(client.application.extensions["vault"], Tag.LOGIN_SUCCEEDED)
    assert event["actor"] == {"role": "applicant", "user": str(account.id)}
    assert event["target"] == {"account": str(account.id)}
    assert event["decision"] == "" and event["reasons"] == []
    assert event["request"] == {"client": "127.0.0.1", "id": response.headers["X-Request-ID"],
                                "user_agent": "vault-test/1.0"}
    assert re.fullmatch(r"[0-9a-f]{32}", event["request"]["id"])


@pytest.mark.parametrize("known", [True, False], ids=["wrong-password", "unknown-address"])
def test_failed_sign_in_records_only_a_digest_of_the_typed_address(client, runtime, make_user,
                                                                   known):
    typed = make_user(Role.APPLICANT).email if known else "Typo.Person@Test.Example"
    csrf = csrf_from(client, "/login")
    response = client.post("/login", data={"email": typed, "password": "insecure-wrong-password",
                                           "csrf_token": csrf})
    assert response.status_code == 401
    [event] = events(runtime, Tag.LOGIN_FAILED)
    assert event["actor"] is None and event["reasons"] == ["invalid credentials"]
    assert set(event["target"]) == {"email_digest"}
    assert re.fullmatch(r"[0-9a-f]{64}", event["target"]["email_digest"])
    log_bytes = b"".join(leaves(runtime)).lower()
    local_part = typed.split("@")[0].lower().encode()
    assert typed.lower().encode() not in log_bytes and local_part not in log_bytes
    assert b"insecure-wrong-password" not in log_bytes


def test_the_same_address_typed_twice_gives_the_same_digest(client, runtime):
    csrf = csrf_from(client, "/login")
    for typed in ("Someone@Test.Example", " someone@test.example "):
        client.post("/login", data={"email": typed, "password": "insecure-x-password",
                                    "csrf_token": csrf})
    first, second = events(runtime, Tag.LOGIN_FAILED)
    assert first["target"] == second["target"]


def test_upload_and_download_are_recorded_with_their_version(app, runtime, make_team):
    team = make_team("Team Alpha")
    client = app.test_client()
    sign_in(client, team.applicant)
    body = pdf_bytes(3000)
    uploaded = _upload(client, team.submission_id, body, **{"User-Agent": "uploader/2"})
    assert uploaded.status_code == 201
    receipt = uploaded.json
    downloaded = client.get(receipt["content_url"], headers={"User-Agent": "reader/3"})
    assert downloaded.status_code == 200 and downloaded.data == body
    with unit_of_work(runtime.sessions) as session:
        version = session.scalars(select(DocumentVersion)).one()
        blob_sha256 = version.blob_sha256
    actor = {"role": "applicant", "user": str(team.applicant.id)}
    expected_target = {
        "consortium": str(team.consortium_id), "submission": str(team.submission_id),
        "document": receipt["document_id"], "version": "1", "blob_sha256": blob_sha256,
        "size": str(len(body)),
    }
    [up] = events(runtime, Tag.DOCUMENT_UPLOADED)
    assert up["actor"] == actor and up["target"] == expected_target
    assert up["request"] == {"client": "127.0.0.1", "id": uploaded.headers["X-Request-ID"],
                             "user_agent": "uploader/2"}
    [down] = events(runtime, Tag.DOCUMENT_DOWNLOADED)
    assert down["actor"] == actor and down["target"] == expected_target
    assert down["request"] == {"client": "127.0.0.1", "id": downloaded.headers["X-Request-ID"],
                               "user_agent": "reader/3"}
    assert up["seq"] < down["seq"]
    # The filter columns are copies of the leaf's fields.
    with unit_of_work(runtime.sessions) as session:
        row = session.get(AuditEvent, down["seq"])
        assert (str(row.document_id), str(row.consortium_id), str(row.actor_id)) == (
            receipt["document_id"], str(team.consortium_id), str(team.applicant.id))


def test_allowed_reads_are_recorded_as_allow(app, runtime, make_team):
    team = make_team("Team Alpha")
    client = app.test_client()
    sign_in(client, team.applicant)
    response = client.get(f"/api/v1/submissions/{team.submission_id}")
    assert response.status_code == 200
    [decision] = events(runtime, Tag.ACCESS_DECIDED)
    # The deciding policy is named.
    assert decision["decision"] == "allow"
    assert decision["reasons"] == ["applicant-works-on-own-submission"]
    assert decision["actor"]["user"] == str(team.applicant.id)
    assert decision["target"] == {"action": "submission:view",
                                  "resource": f"Submission:{team.submission_id}",
                                  "consortium": str(team.consortium_id),
                                  "submission": str(team.submission_id)}
    assert decision["request"]["id"] == response.headers["X-Request-ID"]


def test_denied_access_is_recorded_although_the_request_fails(app, runtime, make_team):
    owner_team = make_team("Team Alpha")
    other = make_team("Team Beta", partners=("Beta University",))
    owner = app.test_client()
    sign_in(owner, owner_team.applicant)
    document_id = _upload(owner, owner_team.submission_id, pdf_bytes(2000)).json["document_id"]
    intruder = app.test_client()
    sign_in(intruder, other.applicant)
    before = len(leaves(runtime))
    responses = [intruder.get(f"/api/v1/submissions/{owner_team.submission_id}"),
                 intruder.get(f"/submissions/{owner_team.submission_id}"),
                 intruder.get(f"/api/v1/documents/{document_id}/content")]
    assert [r.status_code for r in responses] == [404, 404, 404]
    recorded = [e for e in events(runtime)[before:] if e["tag"] == Tag.ACCESS_DECIDED.value]
    assert [e["decision"] for e in recorded] == ["deny", "deny", "deny"]
    assert all(e["actor"] == {"role": "applicant", "user": str(other.applicant.id)}
               for e in recorded)
    # No permit matched; the defence-in-depth forbids did, and are named.
    assert [e["reasons"] for e in recorded] == [["guard-applicant-other-submission"]] * 2 + [
        ["guard-applicant-other-document"]]
    assert recorded[0]["target"] == {"action": "submission:view",
                                     "resource": f"Submission:{owner_team.submission_id}",
                                     "consortium": str(owner_team.consortium_id),
                                     "submission": str(owner_team.submission_id)}
    assert recorded[2]["target"] == {"action": "document:read",
                                     "resource": f"Document:{document_id}",
                                     "consortium": str(owner_team.consortium_id),
                                     "document": document_id}
    assert [e["request"]["id"] for e in recorded] == [r.headers["X-Request-ID"]
                                                      for r in responses]
    assert not events(runtime, Tag.DOCUMENT_DOWNLOADED)


def test_a_forged_user_agent_stays_data_inside_one_field(app, runtime, make_user):
    account = make_user(Role.APPLICANT)
    client = app.test_client()
    csrf = csrf_from(client, "/login")
    # The environ, not a header object: Werkzeug's test headers refuse newlines themselves.
    client.post("/login", data={"email": account.email, "password": PASSWORD, "csrf_token": csrf},
                environ_overrides={"HTTP_USER_AGENT": FORGED_AGENT})
    with unit_of_work(runtime.sessions) as session:
        AuditLog(session, clock=runtime.clock).append(
            Tag.LOGOUT, request=RequestInfo(request_id=FORGED_AGENT, client=FORGED_AGENT,
                                            user_agent=FORGED_AGENT),
            target={"account": FORGED_AGENT}, reasons=(FORGED_AGENT,))
    *_, login, logout = leaves(runtime)
    for leaf in (login, logout):
        assert b"\n" not in leaf and leaf.count(b"\n") == 0
        event = json.loads(leaf)
        assert canonical_json(event) == leaf
        assert event["request"]["user_agent"] == FORGED_AGENT
        assert event["tag"] in (Tag.LOGIN_SUCCEEDED.value, Tag.LOGOUT.value)
        # No forged key anywhere, at any depth: the quotes stayed inside the string.
        assert sorted(event) == ["actor", "decision", "real_actor", "reasons", "request", "seq",
                                 "tag", "target", "time"]
        assert sorted(event["request"]) == ["client", "id", "user_agent"]
    assert json.loads(logout)["target"] == {"account": FORGED_AGENT}


def test_leaf_i_is_canonical_json_with_seq_i(app, runtime, make_team):
    team = make_team("Team Alpha")
    client = app.test_client()
    sign_in(client, team.applicant)
    _upload(client, team.submission_id, pdf_bytes(1000), filename="계획서 \"v1\".pdf")
    client.get(f"/submissions/{team.submission_id}")
    with unit_of_work(runtime.sessions) as session:
        stored = session.execute(select(AuditEvent.seq, AuditEvent.leaf, AuditEvent.leaf_hash,
                                        AuditEvent.tag).order_by(AuditEvent.seq)).all()
    assert len(stored) >= 5
    for index, (seq, leaf, leaf_hash, tag) in enumerate(stored):
        event = json.loads(leaf)
        assert seq == index and event["seq"] == index and event["tag"] == tag
        assert leaf == canonical_json(event)
        assert leaf == json.dumps(event, sort_keys=True, separators=(",", ":"),
                                  ensure_ascii=False).encode("utf-8")
        assert leaf_hash == merkle.leaf_hash(leaf)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", event["time"])


def test_times_never_go_backwards_when_the_clock_does(runtime, clock, identity):
    start = clock()
    with unit_of_work(runtime.sessions) as session:
        AuditLog(session, clock=runtime.clock).append(Tag.USER_CREATED)
    clock.now = start - timedelta(hours=1)
    with unit_of_work(runtime.sessions) as session:
        AuditLog(session, clock=runtime.clock).append(Tag.USER_CREATED)
    clock.now = start + timedelta(seconds=1)
    with unit_of_work(runtime.sessions) as session:
        AuditLog(session, clock=runtime.clock).append(Tag.USER_CREATED)
    times = [e["time"] for e in events(runtime)]
    assert times == ["2026-12-01T01:00:00.000000Z", "2026-12-01T01:00:00.000000Z",
                     "2026-12-01T01:00:01.000000Z"]
    with unit_of_work(runtime.sessions) as session:
        stored = list(session.scalars(select(AuditEvent.time).order_by(AuditEvent.seq)))
    assert stored == [start, start, start + timedelta(seconds=1)]
    publish_checkpoint(runtime)
    assert check(runtime) == "3 entries, 1 checkpoints verified"


def test_unknown_decisions_and_tags_are_refused(runtime):
    with unit_of_work(runtime.sessions) as session:
        log = AuditLog(session, clock=runtime.clock)
        with pytest.raises(ValueError, match="decision"):
            log.append(Tag.ACCESS_DECIDED, decision="maybe")
        with pytest.raises(ValueError):
            log.append("made:up:tag")  # type: ignore[arg-type]
        assert log.size() == 0


# -- append-only in the database ----------------------------------------------------------------

_CHANGES = {
    "audit_events": "SET leaf = :forged",
    "audit_nodes": "SET hash = :forged",
    "audit_checkpoints": "SET root = :forged",
    "audit_verifications": "SET message = 'forged'",
}


@pytest.fixture
def full_log(app, runtime, identity) -> Runtime:
    """A log with events, nodes, checkpoints and a recorded chain check."""
    grow(runtime, 5)
    assert invoke_check(app).exit_code == 0
    for table in AUDIT_TABLES:
        assert rows(runtime, table), table
    return runtime


@pytest.mark.parametrize("table", AUDIT_TABLES)
@pytest.mark.parametrize("statement", ["UPDATE {table} {change}", "DELETE FROM {table}",
                                       "DELETE FROM {table} WHERE 1 = 1"])
def test_the_database_refuses_to_change_or_remove_audit_rows(full_log, table, statement):
    before = rows(full_log, table)
    sql = statement.format(table=table, change=_CHANGES[table])
    params = {"forged": b"\x11" * 32} if ":forged" in sql else {}
    with pytest.raises(exc.DBAPIError, match="append-only"), full_log.engine.begin() as db:
        db.execute(text(sql), params)
    assert rows(full_log, table) == before


def test_the_orm_cannot_change_audit_rows_either(full_log):
    before = rows(full_log, "audit_events")
    with pytest.raises(exc.DBAPIError, match="append-only"), \
            unit_of_work(full_log.sessions) as session:
        event = session.get(AuditEvent, 0)
        event.tag = "forged"
    with pytest.raises(exc.DBAPIError, match="append-only"), \
            unit_of_work(full_log.sessions) as session:
        session.delete(session.get(AuditEvent, 1))
    assert rows(full_log, "audit_events") == before


@pytest.mark.skipif(not PG_URL, reason="TRUNCATE exists only on PostgreSQL")
@pytest.mark.parametrize("table", AUDIT_TABLES)
def test_postgresql_refuses_truncate(full_log, table):
    before = rows(full_log, table)
    with pytest.raises(exc.DBAPIError, match="append-only"), full_log.engine.begin() as db:
        db.execute(text(f"TRUNCATE {table}"))
    assert rows(full_log, table) == before


def test_an_upsert_cannot_replace_an_event(full_log):
    # SQLite's REPLACE deletes the old row; the DELETE trigger fires only with recursive
    # triggers on (vault.db turns them on for every connection).
    before = rows(full_log, "audit_events")
    forged = b'{"forged":true}'
    upsert = {
        "sqlite": "INSERT OR REPLACE INTO audit_events "
                  "(seq, leaf, leaf_hash, time, tag, decision) "
                  "SELECT seq, :leaf, leaf_hash, time, tag, decision FROM audit_events "
                  "WHERE seq = 0",
        "postgresql": "INSERT INTO audit_events (seq, leaf, leaf_hash, time, tag, decision) "
                      "SELECT seq, :leaf, leaf_hash, time, tag, decision FROM audit_events "
                      "WHERE seq = 0 ON CONFLICT (seq) DO UPDATE SET leaf = excluded.leaf",
    }[dialect(full_log)]
    try:
        with full_log.engine.begin() as db:
            db.execute(text(upsert), {"leaf": forged})
    except exc.DBAPIError as error:
        assert "append-only" in str(error)
    assert rows(full_log, "audit_events") == before


# -- tampering (triggers dropped) is caught by the chain check ----------------------------------

SIZE = 10


def _edit(leaf: bytes) -> bytes:
    event = json.loads(leaf)
    event["target"] = {"n": "999"}
    return canonical_json(event)


def _set_leaf(db, seq: int, leaf: bytes, *, rehash: bool) -> None:
    if rehash:
        db.execute(text("UPDATE audit_events SET leaf = :leaf, leaf_hash = :hash WHERE seq = :s"),
                   {"leaf": leaf, "hash": merkle.leaf_hash(leaf), "s": seq})
    else:
        db.execute(text("UPDATE audit_events SET leaf = :leaf WHERE seq = :s"),
                   {"leaf": leaf, "s": seq})


def _leaf(db, seq: int) -> bytes:
    return db.execute(text("SELECT leaf FROM audit_events WHERE seq = :s"), {"s": seq}).scalar()


def edited_keeping_hash(db) -> None:
    _set_leaf(db, 3, _edit(_leaf(db, 3)), rehash=False)


def edited_with_recomputed_hash(db) -> None:
    _set_leaf(db, 3, _edit(_leaf(db, 3)), rehash=True)


def edited_to_non_canonical_json(db) -> None:
    _set_leaf(db, 3, _leaf(db, 3).replace(b'","', b'", "', 1), rehash=True)


def deleted(db) -> None:
    db.execute(text("DELETE FROM audit_events WHERE seq = 3"))


def reordered_by_seq(db) -> None:
    for old, new in ((3, -1), (4, 3), (-1, 4)):
        db.execute(text("UPDATE audit_events SET seq = :new WHERE seq = :old"),
                   {"old": old, "new": new})


def reordered_by_leaves(db) -> None:
    three, four = _leaf(db, 3), _leaf(db, 4)
    _set_leaf(db, 3, four, rehash=True)
    _set_leaf(db, 4, three, rehash=True)


def truncated(db) -> None:
    db.execute(text("DELETE FROM audit_events WHERE seq >= 7"))


def truncated_with_its_checkpoints(db) -> None:
    # The published file outside the database still remembers them.
    truncated(db)
    db.execute(text("DELETE FROM audit_checkpoints WHERE size > 7"))


def _insert_copy(db, seq: int, leaf: bytes) -> None:
    db.execute(text("INSERT INTO audit_events (seq, leaf, leaf_hash, time, tag, decision) "
                    "SELECT :seq, :leaf, :hash, time, tag, decision FROM audit_events "
                    "WHERE seq = :last"),
               {"seq": seq, "leaf": leaf, "hash": merkle.leaf_hash(leaf), "last": seq - 1})


def duplicated_last(db) -> None:
    _insert_copy(db, SIZE, _leaf(db, SIZE - 1))


def duplicated_last_with_seq_and_hash_recomputed(db) -> None:
    event = json.loads(_leaf(db, SIZE - 1))
    event["seq"] = SIZE
    _insert_copy(db, SIZE, canonical_json(event))


TAMPERING: list[tuple[Callable, str]] = [
    (edited_keeping_hash, r"^entry 3: its bytes do not match"),
    (edited_with_recomputed_hash, r"^entry 3: does not match the tree node"),
    (edited_to_non_canonical_json, r"^entry 3: not canonical JSON"),
    (deleted, r"^entry 3: missing"),
    (reordered_by_seq, r"^entry 3: carries sequence number 4"),
    (reordered_by_leaves, r"^entry 3: carries sequence number 4"),
    (truncated, r"log has 7 entries but a checkpoint covers 8\b.*truncated"),
    (truncated_with_its_checkpoints, r"log has 7 entries but a checkpoint covers 8\b.*truncated"),
    (duplicated_last, rf"^entry {SIZE}: carries sequence number {SIZE - 1}"),
    (duplicated_last_with_seq_and_hash_recomputed, rf"^entry {SIZE}\b"),
]


@pytest.mark.parametrize(("tamper", "message"), TAMPERING,
                         ids=lambda value: getattr(value, "__name__", None))
def test_the_chain_check_names_the_tampered_entry(runtime, identity, tamper, message):
    grow(runtime, SIZE)
    assert check(runtime) == f"{SIZE} entries, {SIZE} checkpoints verified"
    drop_triggers(runtime)
    with runtime.engine.begin() as db:
        tamper(db)
    with pytest.raises(VerificationFailed) as failure:
        check(runtime)
    assert re.search(message, str(failure.value)), str(failure.value)


def test_an_edit_after_the_last_checkpoint_is_named_too(runtime, identity):
    grow(runtime, 4)
    grow(runtime, 3, checkpoint_each=False)
    drop_triggers(runtime)
    with runtime.engine.begin() as db:
        _set_leaf(db, 5, _edit(_leaf(db, 5)), rehash=True)
    with pytest.raises(VerificationFailed, match=r"\bentry 5\b"):
        check(runtime)


def test_the_check_command_reports_tampering_and_records_the_run(app, runtime, identity):
    grow(runtime, 6)
    ok = invoke_check(app)
    # Six events and the check's own access decision (the operator policy).
    assert ok.exit_code == 0 and "audit log intact: 7 entries" in ok.output
    drop_triggers(runtime)
    with runtime.engine.begin() as db:
        deleted(db)
    failed = invoke_check(app)
    assert failed.exit_code == 2
    assert "FAILED: entry 3: missing" in failed.output and "Traceback" not in failed.output
    runs = rows(runtime, "audit_verifications")
    assert sorted(row[4] for row in runs) == [False, True]


def test_the_check_needs_a_signing_key(runtime):
    with pytest.raises(VerificationFailed, match="vault init"):
        check(runtime)


def test_a_failed_check_closes_its_cursor(runtime, identity):
    grow(runtime, 6)
    drop_triggers(runtime)
    with runtime.engine.begin() as db:
        deleted(db)
    with leaked_cursors() as leaked:
        try:
            with unit_of_work(runtime.sessions) as session:
                check_database(session, runtime)
        except VerificationFailed as failure:
            assert "entry 3" in str(failure)
    assert leaked == []


def test_a_checkpoint_of_the_empty_log_does_not_break_the_check(app, runtime, identity):
    result = _invoke(app, "audit", "checkpoint")
    assert result.exit_code == 0 and "\n0\n" in result.output
    grow(runtime, 2)
    assert check(runtime) == "2 entries, 3 checkpoints verified"  # the empty one counts


# -- checkpoints --------------------------------------------------------------------------------


def test_checkpoint_command_prints_a_note_that_verifies_with_the_vkey(app, runtime, identity):
    grow(runtime, 3, checkpoint_each=False)
    vkey = _invoke(app, "audit", "vkey")
    assert vkey.exit_code == 0
    result = _invoke(app, "audit", "checkpoint")
    assert result.exit_code == 0, result.output
    checkpoint = signed_note.verify_checkpoint(result.output, vkey.output.strip(),
                                               expected_origin=identity.origin)
    with unit_of_work(runtime.sessions) as session:
        assert (checkpoint.size, checkpoint.root) == (3, AuditLog(session, clock=runtime.clock)
                                                      .root())
    other_key = signed_note.generate_signer(identity.origin)[1]
    with pytest.raises(signed_note.NoteError):
        signed_note.verify_checkpoint(result.output, other_key)


def test_each_new_checkpoint_is_published_once(app, runtime, identity, settings):
    grow(runtime, 2, checkpoint_each=False)
    first = _invoke(app, "audit", "checkpoint").output
    again = _invoke(app, "audit", "checkpoint").output
    assert again == first
    lines = settings.published_checkpoints.read_text("utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [{"note": first, "size": 2}]
    grow(runtime, 1, checkpoint_each=False)
    third = _invoke(app, "audit", "checkpoint").output
    assert published(settings.published_checkpoints) == [first, third]
    assert settings.published_checkpoints.stat().st_mode & 0o777 == 0o600
    with unit_of_work(runtime.sessions) as session:
        assert [c.note for c in Checkpoints(session, identity=identity,
                                            clock=runtime.clock).all()] == [first, third]


def test_checkpoint_without_a_key_is_a_clear_error(app):
    result = _invoke(app, "audit", "checkpoint")
    assert result.exit_code == 2 and "vault init" in result.output
    assert _invoke(app, "audit", "vkey").exit_code == 2


def test_due_counts_events_and_time(runtime, identity, clock):
    with unit_of_work(runtime.sessions) as session:
        assert not Checkpoints(session, identity=identity, clock=clock).due(3, 60)
    grow(runtime, 1)
    grow(runtime, 2, checkpoint_each=False)
    with unit_of_work(runtime.sessions) as session:
        checkpoints = Checkpoints(session, identity=identity, clock=clock)
        assert not checkpoints.due(3, 60)
        assert checkpoints.due(2, 60)
        clock.advance(seconds=61)
        assert checkpoints.due(3, 60)


def forged_checkpoint(identity: LogIdentity, size: int, root: bytes) -> str:
    """A checkpoint signed with the real log key for a root the log never had."""
    return signed_note.sign_note(signed_note.format_checkpoint(identity.origin, size, root),
                                 identity.signing_key)


def _publish_note(path: Path, size: int, note: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"note": note, "size": size}, sort_keys=True) + "\n")


def test_two_checkpoints_of_one_size_with_different_roots_are_equivocation(app, runtime,
                                                                           identity, settings):
    grow(runtime, 4)
    assert check(runtime)
    _publish_note(settings.published_checkpoints, 3, forged_checkpoint(identity, 3, b"\x42" * 32))
    with pytest.raises(VerificationFailed, match=r"equivocation.*size 3"):
        check(runtime)
    result = invoke_check(app)
    assert result.exit_code == 2 and "equivocation" in result.output


def test_a_published_checkpoint_the_log_does_not_match_is_caught(runtime, identity, settings):
    grow(runtime, 4, checkpoint_each=False)
    # A size no real checkpoint has: no equivocation, but the entries do not rebuild it.
    _publish_note(settings.published_checkpoints, 2, forged_checkpoint(identity, 2, b"\x42" * 32))
    with pytest.raises(VerificationFailed, match=r"entries 0\.\.1"):
        check(runtime)


def test_a_checkpoint_signed_by_another_key_is_refused(runtime, identity, settings):
    grow(runtime, 2)
    skey, _vkey = signed_note.generate_signer(identity.origin)
    with unit_of_work(runtime.sessions) as session:
        root = AuditLog(session, clock=runtime.clock).root()
    _publish_note(settings.published_checkpoints, 2, signed_note.sign_note(
        signed_note.format_checkpoint(identity.origin, 2, root), skey))
    with pytest.raises(VerificationFailed, match="checkpoint does not verify"):
        check(runtime)


# -- proofs from the database -------------------------------------------------------------------


def test_roots_and_proofs_from_the_database_verify(runtime):
    count = 17
    grow(runtime, count, checkpoint_each=False)
    hashes = [merkle.leaf_hash(leaf) for leaf in leaves(runtime)]
    with unit_of_work(runtime.sessions) as session:
        log = AuditLog(session, clock=runtime.clock)
        assert log.size() == count
        assert log.root(0) == merkle.EMPTY_ROOT
        roots = {size: log.root(size) for size in range(count + 1)}
        for size in range(1, count + 1):
            assert roots[size] == merkle.root_from_leaf_hashes(hashes[:size])[1]
            for seq in range(size):
                merkle.verify_inclusion(hashes[seq], seq, size, log.inclusion_proof(seq, size),
                                        roots[size])
            for old in range(1, size + 1):
                merkle.verify_consistency(old, size, roots[old], roots[size],
                                          log.consistency_proof(old, size))
        # And they do not verify what is not in the log.
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(merkle.leaf_hash(b"forged"), 5, count,
                                    log.inclusion_proof(5, count), roots[count])
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(5, count, b"\x00" * 32, roots[count],
                                      log.consistency_proof(5, count))


# -- concurrent appenders -----------------------------------------------------------------------

WORKER = """
import sys
from vault.audit.service import AuditLog, RequestInfo, Tag
from vault.db import make_engine, make_session_factory, utcnow

url, worker, count, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
engine = make_engine(url)
session = make_session_factory(engine)()
log = AuditLog(session, clock=utcnow)
for number in range(count):
    log.append(Tag.ACCESS_DECIDED, decision="allow", target={"worker": worker, "n": number},
               request=RequestInfo(request_id=f"{worker}-{number}", client="worker"))
    if number % batch == batch - 1 or number == count - 1:
        session.commit()
session.close()
engine.dispose()
"""


@pytest.mark.skipif(not PG_URL, reason="SQLite serialises writers itself; the advisory lock "
                                       "that serialises appenders is PostgreSQL's")
def test_concurrent_appenders_in_four_processes_keep_one_gapless_log(runtime, identity,
                                                                     settings):
    workers, per_worker = 4, 2000
    processes = [
        subprocess.Popen(
            [sys.executable, "-W", "error", "-c", WORKER, settings.database_url, str(worker),
             str(per_worker), str(1 + worker % 3)],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for worker in range(workers)
    ]
    # Checkpoints are signed while the appenders run: each must match the final log.
    deadline = time.monotonic() + 90
    while any(p.poll() is None for p in processes) and time.monotonic() < deadline:
        with unit_of_work(runtime.sessions) as session:
            started = AuditLog(session, clock=runtime.clock).size() > 0
        if started:  # a checkpoint of the empty log is the defect tested above
            publish_checkpoint(runtime)
        time.sleep(0.2)
    for process in processes:
        _out, err = process.communicate(timeout=max(1, deadline - time.monotonic()))
        assert process.returncode == 0, err.decode()
    publish_checkpoint(runtime)
    total = workers * per_worker
    with unit_of_work(runtime.sessions) as session:
        seqs = list(session.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq)))
        checkpoints = session.scalar(select(func.count()).select_from(AuditCheckpoint))
    assert seqs == list(range(total))
    assert checkpoints >= 2
    summary = check(runtime)
    assert summary.startswith(f"{total} entries")
    by_worker: dict[str, list[int]] = {}
    for event in events(runtime):
        by_worker.setdefault(event["target"]["worker"], []).append(int(event["target"]["n"]))
    assert by_worker == {str(w): list(range(per_worker)) for w in range(workers)}
