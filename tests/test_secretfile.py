"""secrets.csv: exclusive 0600 creation in a 0700 folder, fsync before return, torn rows,
formula neutralisation, reading back for resume."""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runner.errors import ExitCode, StorageError
from runner.secretfile import COLUMNS, FILE_NAME, SecretKind, SecretsFile
from runner.secrets import REDACTED, generate_password, redact
from tests.journal_support import make_run_dir

ROOT = Path(__file__).resolve().parent.parent
UNTIL = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A fresh 0700 run folder."""
    return make_run_dir(tmp_path)


def _write(secrets: SecretsFile, item: str, value: str, **changes: str) -> str:
    fields = {
        "upn": f"user{item}@contoso.example",
        "object_id": f"00000000-0000-0000-0000-{int(item):012d}",
        "action": "reset_password",
    }
    fields.update(changes)
    record = secrets.write(
        item_ref=item,
        kind=SecretKind.TEMPORARY_PASSWORD,
        value=value,
        **fields,
    )
    return record.secret_ref


def test_created_exclusively_with_mode_0600_and_a_header(run_dir: Path) -> None:
    """Created 0600 with its header; a second create fails (O_EXCL) instead of overwriting."""
    old_umask = os.umask(0)  # a permissive umask must not widen the file
    try:
        SecretsFile(run_dir).create()
    finally:
        os.umask(old_umask)
    path = run_dir / FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
    assert path.read_text().splitlines() == [",".join(COLUMNS)]
    with pytest.raises(StorageError) as caught:
        SecretsFile(run_dir).create()
    assert str(caught.value) == f"{path}: already exists; a secrets file is never overwritten"
    assert caught.value.exit_code is ExitCode.STORAGE


def test_refused_in_a_folder_others_can_enter(tmp_path: Path) -> None:
    """Secrets are written only in a 0700 folder."""
    folder = tmp_path / "open"
    folder.mkdir()
    folder.chmod(0o755)
    with pytest.raises(StorageError) as caught:
        SecretsFile(folder).create()
    assert str(caught.value) == (
        f"{folder}: the run folder is open to other users (mode 0755); "
        "secrets are written only in a folder of mode 0700"
    )
    assert not (folder / FILE_NAME).exists()


def test_refuses_to_append_to_a_widened_file(run_dir: Path) -> None:
    """A secrets file someone made readable by others gets no new secret."""
    SecretsFile(run_dir).create()
    (run_dir / FILE_NAME).chmod(0o644)
    with pytest.raises(StorageError, match="refusing to add secrets"):
        _write(SecretsFile(run_dir), "1", generate_password(12))


def test_written_rows_read_back_for_resume(run_dir: Path) -> None:
    """Each write returns a secret_ref; a new reader finds the latest secret of an item."""
    first, second, third = (generate_password(16) for _ in range(3))
    with SecretsFile(run_dir) as secrets:  # created on the first write
        refs = [_write(secrets, "1", first), _write(secrets, "2", second)]
        refs.append(
            secrets.write(
                item_ref="1",
                upn="user1@contoso.example",
                object_id="o-1",
                action="create_temporary_access_pass",
                kind=SecretKind.TEMPORARY_ACCESS_PASS,
                value=third,
                valid_until=UNTIL,
            ).secret_ref
        )
    assert refs == ["1:1", "2:2", "1:3"]
    again = SecretsFile(run_dir)
    assert again.has("1") and again.has("2") and not again.has("3")
    latest = again.lookup("1")
    assert latest is not None
    assert (latest.value, latest.kind, latest.valid_until) == (
        third,
        SecretKind.TEMPORARY_ACCESS_PASS,
        UNTIL,
    )
    by_ref = again.get("1:1")
    assert by_ref is not None and by_ref.value == first
    assert [r.secret_ref for r in again.records()] == refs


def test_values_are_never_in_a_repr(run_dir: Path) -> None:
    """Neither a record nor the file object shows a secret in repr (tracebacks, logs)."""
    value = generate_password(20)
    with SecretsFile(run_dir) as secrets:
        _write(secrets, "1", value)
        record = secrets.lookup("1")
        assert value not in repr(record)
        assert value not in repr(secrets)


def test_values_read_back_are_registered_for_redaction(run_dir: Path) -> None:
    """A secret written by another process is redacted here as soon as it is read."""
    script = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from runner.secretfile import SecretKind, SecretsFile
        SecretsFile(Path(sys.argv[1])).write(
            item_ref="9", upn="u@x.example", object_id="o", action="reset_password",
            kind=SecretKind.TEMPORARY_PASSWORD, value=sys.argv[2],
        )
        """
    )
    value = "Kx4%fresh-from-another-process"
    subprocess.run([sys.executable, "-c", script, str(run_dir), value], cwd=ROOT, check=True)
    assert redact(f"pw {value}") == f"pw {value}"  # this process has not seen it yet
    found = SecretsFile(run_dir).lookup("9")
    assert found is not None and found.value == value
    assert redact(f"pw {value}") == f"pw {REDACTED}"


def test_every_write_is_fsynced_before_it_returns(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file after each row and the folder after creation are fsynced before returning."""
    synced: list[str] = []
    real = os.fsync

    def watch(fd: int) -> None:
        real(fd)
        synced.append(str(Path(f"/proc/self/fd/{fd}").readlink()))

    monkeypatch.setattr(os, "fsync", watch)
    secrets = SecretsFile(run_dir)
    secrets.create()
    assert synced == [str(run_dir / FILE_NAME), str(run_dir)]
    size = (run_dir / FILE_NAME).stat().st_size
    _write(secrets, "1", generate_password(10))
    assert synced[2:] == [str(run_dir / FILE_NAME)]
    assert (run_dir / FILE_NAME).stat().st_size > size


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from runner.secretfile import SecretKind, SecretsFile
    secrets = SecretsFile(Path(sys.argv[1]))
    for n in (1, 2, 3):
        secrets.write(
            item_ref=str(n), upn=f"u{n}@x.example", object_id=f"o{n}", action="reset_password",
            kind=SecretKind.TEMPORARY_PASSWORD, value=f"Pw{n}-{'x' * 30}",
        )
        print(f"written {n}", flush=True)
    """
)


def test_a_row_cut_by_a_crash_never_passes_for_a_secret(run_dir: Path) -> None:
    """A row cut by mid_secrets_write is ignored, and the next row starts on its own line."""
    env = {**os.environ, "ENTRA_BULK_CRASH_AT": "mid_secrets_write:2"}
    result = subprocess.run(
        [sys.executable, "-c", WRITER, str(run_dir)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == -signal.SIGKILL
    assert result.stdout.splitlines() == ["written 1"]
    raw = (run_dir / FILE_NAME).read_text()
    assert not raw.endswith("\n")  # the cut row
    secrets = SecretsFile(run_dir)
    assert [r.item_ref for r in secrets.records()] == ["1"]
    assert not secrets.has("2")
    ref = _write(secrets, "2", "Pw2-reissued-after-crash")
    assert ref == "2:3"  # the cut row keeps its number
    again = SecretsFile(run_dir)
    assert [(r.item_ref, r.value) for r in again.records()] == [
        ("1", "Pw1-" + "x" * 30),
        ("2", "Pw2-reissued-after-crash"),
    ]


@pytest.mark.parametrize("left", [0, 1, 17], ids=["empty", "one-byte", "part-header"])
def test_a_file_whose_creation_a_crash_cut_is_completed(run_dir: Path, left: int) -> None:
    """A kill between creating secrets.csv and writing its whole header left no secret: the
    file reads as empty and the first row completes the header before it."""
    header = ",".join(COLUMNS) + "\n"
    path = run_dir / FILE_NAME
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, header[:left].encode())
    os.close(fd)
    secrets = SecretsFile(run_dir)
    assert secrets.records() == []
    assert _write(secrets, "1", "After-the-crash-1") == "1:1"
    assert path.read_text().splitlines()[0] == header.rstrip("\n")
    assert [r.value for r in SecretsFile(run_dir).records()] == ["After-the-crash-1"]


def test_an_edited_row_fails_its_check(run_dir: Path) -> None:
    """A row changed after writing (or cut inside its value) is not trusted."""
    with SecretsFile(run_dir) as secrets:
        _write(secrets, "1", "Original-Pw-123")
    path = run_dir / FILE_NAME
    path.write_text(path.read_text().replace("Original-Pw-123", "Original-Pw"))
    assert SecretsFile(run_dir).records() == []


def test_text_cells_are_neutralised_but_the_secret_is_not(run_dir: Path) -> None:
    """Formula-prefixed text cells get a quote; the secret is kept exactly; both read back."""
    tap = '-3x,"Q@'
    with SecretsFile(run_dir) as secrets:
        _write(secrets, "1", "Safe1-password", upn="=HYPERLINK(evil)@x.example")
        _write(secrets, "2", tap, upn="-bob@x.example", action="create_temporary_access_pass")
    lines = (run_dir / FILE_NAME).read_text().splitlines()
    assert lines[1].startswith("'=HYPERLINK(evil)@x.example,")
    assert lines[2].startswith("'-bob@x.example,")
    assert ',"-3x,""Q@",' in lines[2]
    records = SecretsFile(run_dir).records()
    assert [r.upn for r in records] == ["=HYPERLINK(evil)@x.example", "-bob@x.example"]
    assert records[1].value == tap


def test_multi_line_values_are_refused(run_dir: Path) -> None:
    """A secret or a cell with a line break would break the one-row-per-line format."""
    secrets = SecretsFile(run_dir)
    with pytest.raises(ValueError, match="on one line"):
        _write(secrets, "1", "two\nlines")
    with pytest.raises(ValueError, match="upn must be on one line"):
        _write(secrets, "1", "Fine-pw-1", upn="a\n@x.example")
    assert not (run_dir / FILE_NAME).exists()


def _descriptors_of(path: Path) -> int:
    """How many of this process's descriptors are open on `path` (other tests' garbage may
    hold or free descriptors of their own meanwhile: only this file's count)."""
    count = 0
    for fd in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):
            count += fd.readlink() == path
    return count


def test_a_forgotten_file_object_does_not_leak_its_descriptor(run_dir: Path) -> None:
    """The descriptor is closed when the object goes, even without close()."""
    secrets = SecretsFile(run_dir)
    _write(secrets, "1", "Leak-check-pw-1")
    path = (run_dir / FILE_NAME).resolve()
    assert _descriptors_of(path) == 1
    del secrets
    gc.collect()
    assert _descriptors_of(path) == 0
