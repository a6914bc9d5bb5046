"""Look for Xero secrets in every file a run wrote: logs, test artifacts, database files.

What counts as a secret:
- exact values: the current access and refresh tokens and client secrets of every connection in the given CRM
  databases (decrypted with the Fernet key), the Fernet key itself, the sandbox demo apps' client secrets, and
  any extra values a test passes (e.g. every token a sandbox ever issued);
- any JWT whose claims are a Xero access or id token (`xero_userid`), even one no database remembers (a token
  rotated away long ago still must not sit in a log).

Files are read as bytes, so SQLite databases and their WAL files are searched too; a Fernet-encrypted blob is
not a finding (that is the point of it).

    python -m tests.connections.secret_scan [--database-url URL ...] [PATH ...]

Defaults: the CRM database of CRM_DATABASE_URL and of `make run` (var/demo/crm.db), and the paths var/,
test-artifacts/ and $AIRFLOW_HOME. Exit status 1 when anything is found; the report never prints a secret.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text

REPO_ROOT = Path(__file__).resolve().parents[2]
_JWT = re.compile(rb"eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}")
_MAX_FILE_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class Finding:
    path: Path
    what: str  # which kind of secret, never the value
    offset: int

    def __str__(self) -> str:
        return f"{self.path}: {self.what} at byte {self.offset}"


def static_secrets(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Secrets known without a database: the Fernet key(s) and the sandbox demo apps' client secrets."""
    from xero_sandbox.state import DEMO_CLIENT_SECRET, GRANULAR_CLIENT_SECRET

    env = os.environ if environ is None else environ
    found = {
        "sandbox demo client secret": DEMO_CLIENT_SECRET,
        "sandbox granular client secret": GRANULAR_CLIENT_SECRET,
    }
    for number, key in enumerate(k.strip() for k in env.get("XERO_CRM_FERNET_KEY", "").split(",")):
        if key:
            found[f"XERO_CRM_FERNET_KEY #{number + 1}"] = key
    return found


def database_secrets(url: str, fernet_keys: str) -> dict[str, str]:
    """The current tokens and client secret of every connection in a CRM database."""
    from xero_crm_sync.secrets import SecretBox

    box = SecretBox(fernet_keys)
    engine = create_engine(_sqlalchemy_url(url))
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT id, token_blob FROM xero_connection WHERE token_blob IS NOT NULL")
            ).all()
    finally:
        engine.dispose()
    found: dict[str, str] = {}
    for connection_id, blob in rows:
        value = box.decrypt_json(blob)
        token = value.get("token") or {}
        found[f"connection {connection_id} client secret"] = value.get("client_secret", "")
        found[f"connection {connection_id} access token"] = token.get("access_token", "")
        found[f"connection {connection_id} refresh token"] = token.get("refresh_token", "")
    return {k: v for k, v in found.items() if v}


def _sqlalchemy_url(url: str) -> str:
    return (
        url.replace("postgresql://", "postgresql+psycopg://", 1) if url.startswith("postgresql://") else url
    )


def _is_xero_jwt(candidate: bytes) -> bool:
    try:
        payload = candidate.split(b".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return False
    return isinstance(claims, dict) and "xero_userid" in claims


def files_under(roots: Iterable[Path]) -> Iterable[Path]:
    for root in roots:
        if root.is_file():
            yield root
        elif root.is_dir():
            for path in sorted(root.rglob("*")):
                if path.is_file() and not path.is_symlink():
                    yield path


def scan(roots: Iterable[Path], secrets: dict[str, str]) -> list[Finding]:
    """Every place under `roots` where a secret of `secrets` ({what: value}) or a Xero JWT appears.

    The files are read in a child process. SQLite guards a database with POSIX record locks, which belong to the
    process and are all dropped when *any* descriptor of that file is closed: reading Airflow's live metadata
    database here, in a process that holds it open (a test that ran `dag.test()`), released that process's locks,
    and the next writer beside it (`airflow dags test`) corrupted the file ("database disk image is malformed").
    The secrets go to the child on stdin, never on its command line."""
    request = json.dumps({"roots": [str(r) for r in roots], "secrets": secrets})
    child = subprocess.run(
        [sys.executable, "-m", "tests.connections.secret_scan", "--scan-stdin"],
        input=request,
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )
    if child.returncode != 0:
        raise RuntimeError(f"the secret scan's child process failed: {child.stderr[-2000:]}")
    return [Finding(Path(f["path"]), f["what"], f["offset"]) for f in json.loads(child.stdout)]


def _scan_here(roots: Iterable[Path], secrets: dict[str, str]) -> list[Finding]:
    needles = [(what, value.encode()) for what, value in secrets.items() if value and len(value) >= 8]
    findings: list[Finding] = []
    for path in files_under(roots):
        try:
            if path.stat().st_size > _MAX_FILE_BYTES:
                continue
            data = path.read_bytes()
        except OSError:
            continue  # vanished meanwhile (a WAL checkpoint) or unreadable: nothing we could leak through
        for what, needle in needles:
            offset = data.find(needle)
            if offset >= 0:
                findings.append(Finding(path, what, offset))
        for match in _JWT.finditer(data):
            if _is_xero_jwt(match.group()):
                findings.append(Finding(path, "a Xero access/id token (JWT)", match.start()))
                break
    return findings


def _serve_stdin() -> int:
    """The child side of `scan`: a request on stdin, the findings as JSON on stdout."""
    request = json.loads(sys.stdin.read())
    found = _scan_here([Path(r) for r in request["roots"]], request["secrets"])
    json.dump([{"path": str(f.path), "what": f.what, "offset": f.offset} for f in found], sys.stdout)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.connections.secret_scan", description=__doc__)
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument(
        "--database-url", action="append", default=[], help="a CRM database to take tokens from"
    )
    parser.add_argument("--scan-stdin", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.scan_stdin:
        return _serve_stdin()
    keys = os.environ.get("XERO_CRM_FERNET_KEY", "")
    urls = args.database_url or [
        u
        for u in (os.environ.get("CRM_DATABASE_URL"), f"sqlite:///{REPO_ROOT / 'var' / 'demo' / 'crm.db'}")
        if u and (not u.startswith("sqlite:///") or Path(u.removeprefix("sqlite:///")).exists())
    ]
    roots = args.paths or [
        p
        for p in (REPO_ROOT / "var", REPO_ROOT / "test-artifacts", Path(os.environ.get("AIRFLOW_HOME", "")))
        if str(p) and p.exists()
    ]
    secrets = static_secrets()
    for url in urls:
        if keys:
            secrets.update({f"{url.split('/')[-1]}: {k}": v for k, v in database_secrets(url, keys).items()})
    findings = _scan_here(roots, secrets)  # this CLI is its own process: no lock of a caller to drop
    print(
        f"secret scan: {len(secrets)} known secrets and Xero JWTs, {sum(1 for _ in files_under(roots))} files "
        f"under {', '.join(str(r) for r in roots)}: {len(findings)} finding(s)"
    )
    for finding in findings:
        print(f"  {finding}")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
