"""Secrets (C3): encrypted at rest with a key from configuration, a missing key is an error (never plaintext),
and no token text in the database, its files, exceptions, listings or logs."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import MetaData, select

from tests.connections import secret_scan
from tests.connections.conftest import Connected
from xero_crm_sync import db, health, redaction
from xero_crm_sync.connections import ConnectionStore
from xero_crm_sync.secrets import SecretBox
from xero_crm_sync.settings import SettingsError


def _database_files(url: str) -> list[Path]:
    path = Path(url.removeprefix("sqlite:///"))
    return [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]


def test_no_token_text_in_the_database(one_org: Connected):
    """After a connect and a refresh, the current tokens, every token Xero ever issued and the client secret
    appear nowhere in the database: not in its files (SQLite, WAL included), not in any column (PostgreSQL)."""
    health.check_connection(
        one_org.store, one_org.store.get(one_org.ids["primary"]), one_org.settings, refresh_ahead=3600
    )
    secrets = {f"issued #{i}": s for i, s in enumerate(sorted(one_org.issued_secrets()))}
    assert len(secrets) >= 5  # two access and two refresh tokens (connect, refresh) and the client secret
    if one_org.url.startswith("sqlite"):
        files = _database_files(one_org.url)
        assert secret_scan.scan(files, secrets) == []
        # The scanner does find a token that is there: the check can fail.
        planted = files[0].with_name("planted.db")
        planted.write_bytes(files[0].read_bytes() + next(iter(secrets.values())).encode())
        assert secret_scan.scan([planted], secrets)
    else:
        metadata = MetaData()
        metadata.reflect(one_org.engine)
        with one_org.engine.connect() as conn:
            dump = "\n".join(
                str(row) for table in metadata.sorted_tables for row in conn.execute(select(table))
            )
        assert dump and not [what for what, value in secrets.items() if value in dump]
    # What is stored is a Fernet token that decrypts, with the configured key, to the current token set.
    blob = one_org.row(one_org.ids["primary"])["token_blob"]
    assert blob.startswith("gAAAA")
    assert one_org.store.box.decrypt_json(blob)["token"] == one_org.stored_token(one_org.ids["primary"])


def test_a_missing_or_wrong_key_is_a_clear_error_never_plaintext(one_org: Connected, monkeypatch):
    with pytest.raises(SettingsError, match="XERO_CRM_FERNET_KEY is not set"):
        SecretBox.from_env({})
    with pytest.raises(SettingsError, match="not a valid Fernet key"):
        SecretBox.from_env({"XERO_CRM_FERNET_KEY": "not-a-key"})
    monkeypatch.delenv("XERO_CRM_FERNET_KEY")
    with pytest.raises(SettingsError, match="XERO_CRM_FERNET_KEY is not set"):
        ConnectionStore(db.get_engine(one_org.url))
    other = ConnectionStore(one_org.engine, SecretBox(Fernet.generate_key().decode()))
    with pytest.raises(SettingsError, match="cannot be decrypted") as refused:
        other.session(one_org.ids["primary"], one_org.settings)
    assert one_org.row(one_org.ids["primary"])["token_blob"] not in str(refused.value)


def test_key_rotation_new_key_first_old_key_second(one_org: Connected):
    """Rotating the key: list the new key first and the old one after it; old blobs still decrypt, and the next
    write (a refresh) is encrypted with the new key only."""
    old_key = os.environ["XERO_CRM_FERNET_KEY"]
    new_key = Fernet.generate_key().decode()
    rotated = ConnectionStore(one_org.engine, SecretBox(f"{new_key},{old_key}"))
    info = rotated.get(one_org.ids["primary"])
    assert health.check_connection(rotated, info, one_org.settings, refresh_ahead=3600).refreshed
    blob = one_org.row(info.id)["token_blob"]
    assert SecretBox(new_key).decrypt_json(blob)["client_id"]
    with pytest.raises(SettingsError):
        SecretBox(old_key).decrypt_json(blob)


def test_listings_exceptions_and_reprs_carry_no_secret(one_org: Connected):
    token = one_org.stored_token(one_org.ids["primary"])
    credentials = one_org.store.credentials(one_org.ids["primary"])
    shown = json.dumps([i.as_dict() for i in one_org.store.list(include_inactive=True)]) + repr(credentials)
    for secret in (token["access_token"], token["refresh_token"], credentials.client_secret):
        assert secret not in shown
    one_org.sandbox.admin.remove_user(one_org.sandbox.state.demo_user().user_id)
    result = health.check_connection(
        one_org.store, one_org.store.get(one_org.ids["primary"]), one_org.settings, refresh_ahead=3600
    )
    assert result.outcome == "reconnect_required"
    for secret in (token["access_token"], token["refresh_token"], credentials.client_secret):
        assert (
            secret not in json.dumps(result.as_dict())
            and secret not in one_org.row(one_org.ids["primary"])["last_error"]
        )


def test_redaction_masks_known_secrets_and_token_shaped_text(caplog):
    secret = "s3cr3t-refresh-token-value-0123456789"
    redaction.remember(secret)
    text_in = (
        f"refresh failed for {secret}; Authorization: Bearer eyJabc.def.ghi123456; "
        'body {"access_token": "abcdefghijkl", "refresh_token":"zyxwvutsrqpo"} '
        "callback /callback?code=one-time-code&state=x"
    )
    out = redaction.redact(text_in)
    for leaked in (secret, "eyJabc.def.ghi123456", "abcdefghijkl", "zyxwvutsrqpo", "one-time-code"):
        assert leaked not in out
    assert "refresh failed for ***" in out and "state=x" in out

    logger = logging.getLogger("test.redaction")
    handler = logging.StreamHandler()
    redaction.install_filter([handler, caplog.handler])
    with caplog.at_level(logging.INFO, logger="test.redaction"):
        logger.info("token %s", secret)
        try:
            raise RuntimeError(f"boom {secret}")
        except RuntimeError:
            logger.exception("failed")
    assert secret not in caplog.text and "token ***" in caplog.text and "boom ***" in caplog.text


def test_http_and_oauth_debug_logs_stay_off():
    """requests-oauthlib logs whole token responses at DEBUG and urllib3 logs request lines: even with the root
    logger at DEBUG, those loggers stay above it."""
    root = logging.getLogger()
    before = root.level
    try:
        root.setLevel(logging.DEBUG)
        redaction.quiet_secret_loggers()
        for name in ("requests_oauthlib.oauth2_session", "oauthlib", "urllib3.connectionpool"):
            assert not logging.getLogger(name).isEnabledFor(logging.DEBUG)
    finally:
        root.setLevel(before)


def test_scanning_a_database_this_process_holds_locked_leaves_its_lock_in_place(tmp_path):
    """SQLite's locks belong to the process and closing any descriptor of the file drops them all: a scan that read
    Airflow's live database in the test process let the next writer beside it corrupt the file."""
    import sqlite3
    import subprocess
    import sys

    from tests.connections import secret_scan

    path = tmp_path / "live.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")  # this process writes: nobody else may
    try:
        assert secret_scan.scan([tmp_path], {"a secret": "not-in-there-at-all"}) == []
        other = subprocess.run(
            [
                sys.executable,
                "-c",
                f"import sqlite3; sqlite3.connect({str(path)!r}, timeout=0).execute('INSERT INTO t VALUES (1)').connection.commit()",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert other.returncode != 0 and "locked" in other.stderr  # still held after the scan
    finally:
        holder.execute("ROLLBACK")
        holder.close()
