"""Windows event logs as PowerShell exports them (`Get-WinEvent ... | ConvertTo-Json` or `| Export-Csv`), read as logs.

Every fixture is written here, with the properties an EventLogRecord has (most of them beside the point).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from incidentlens.errors import InputError
from incidentlens.telemetry import load_telemetry

EVENTS = [  # (epoch ms, Level, LevelDisplayName, ProviderName, Message)
    (1714557900123, 2, "Error", "Service Control Manager", "The W3SVC service terminated unexpectedly."),
    (1714557960000, 4, "Information", "Microsoft-Windows-Kernel-General", "The system time has changed."),
    (1714558020000, 3, "Warning", "Microsoft-Windows-DNS-Client", "Name resolution for api.local timed out."),
    (1714558080000, 1, "Critical", "Microsoft-Windows-Kernel-Power", "The system has rebooted without shutting down."),
    (1714558140000, 5, "Verbose", "Microsoft-Windows-Winlogon", "Winlogon notified subscribers."),
]
READ = [
    {"ts": datetime(2024, 5, 1, 10, 5, 0, 123000), "service": "Service Control Manager", "level": "ERROR",
     "message": "The W3SVC service terminated unexpectedly."},
    {"ts": datetime(2024, 5, 1, 10, 6), "service": "Microsoft-Windows-Kernel-General", "level": "INFO",
     "message": "The system time has changed."},
    {"ts": datetime(2024, 5, 1, 10, 7), "service": "Microsoft-Windows-DNS-Client", "level": "WARN",
     "message": "Name resolution for api.local timed out."},
    {"ts": datetime(2024, 5, 1, 10, 8), "service": "Microsoft-Windows-Kernel-Power", "level": "FATAL",
     "message": "The system has rebooted without shutting down."},
    {"ts": datetime(2024, 5, 1, 10, 9), "service": "Microsoft-Windows-Winlogon", "level": "TRACE",
     "message": "Winlogon notified subscribers."},
]


def record(millis: int, level: int, level_name: str | None, provider: str, message: str, time: str) -> dict:
    """One EventLogRecord as ConvertTo-Json writes it (its time as `time` gives it)."""
    written = {"Message": message, "Id": 7034, "Version": 0, "Qualifiers": 49152, "Level": level, "Task": 0,
               "Opcode": 0, "Keywords": 36028797018963968, "RecordId": millis % 1000, "ProviderName": provider,
               "ProviderId": "555908d1-a6d7-4695-8e1e-26931d2012f4", "LogName": "System", "ProcessId": 884,
               "ThreadId": 1000, "MachineName": "WEB01", "UserId": None, "TimeCreated": time, "ActivityId": None,
               "ContainerLog": "System", "MatchedQueryIds": [], "LevelDisplayName": level_name,
               "OpcodeDisplayName": "Info", "KeywordsDisplayNames": ["Classic"]}
    return {key: value for key, value in written.items() if value is not None or key != "LevelDisplayName"}


def powershell_5_json(path: Path, level_names: bool = True) -> Path:
    """Windows PowerShell 5.1's ConvertTo-Json: a DateTime is `"\\/Date(ms)\\/"`."""
    records = [record(millis, level, name if level_names else None, provider, message, f"/Date({millis})/")
               for millis, level, name, provider, message in EVENTS]
    path.write_text(json.dumps(records, indent=4).replace("/Date(", "\\/Date(").replace(')/"', ')\\/"'))
    return path


def logs(path: Path, **options: object) -> list[dict]:
    return load_telemetry(logs=path, **options).fetch("SELECT ts, service, level, message FROM logs").to_pylist()


def test_windows_powershells_json_export_is_read_as_logs(tmp_path: Path) -> None:
    # it was 'no time column (looked for ts, time, ...)': TimeCreated, and its /Date(ms)/ form, were not read
    assert logs(powershell_5_json(tmp_path / "events.json")) == READ


def test_a_windows_events_level_number_is_read_on_the_windows_scale(tmp_path: Path) -> None:
    # without LevelDisplayName (Select-Object left it out), 2 is Error, not syslog's 2 (critical), and 4 Information
    assert logs(powershell_5_json(tmp_path / "events.json", level_names=False)) == READ


def test_powershell_7s_json_with_iso_times_and_another_service_mapped(tmp_path: Path) -> None:
    path = tmp_path / "events.json"
    path.write_text(json.dumps([record(millis, level, name, provider, message,
                                       datetime.fromtimestamp(millis / 1000).astimezone().isoformat())
                                for millis, level, name, provider, message in EVENTS]))
    assert logs(path) == READ
    assert {row["service"] for row in logs(path, mapping={"service": "MachineName"})} == {"WEB01"}


def test_export_csv_with_its_type_line_reads_times_written_with_their_offset(tmp_path: Path) -> None:
    # Windows PowerShell's Export-Csv writes a '#TYPE' line above the header
    path = tmp_path / "events.csv"
    rows = "".join(f'"{message}","{level}","{provider}","2024-05-01T{12 + n // 60:02d}:{n % 60:02d}:00.0000000+02:00",'
                   f'"{name}"\n'
                   for n, (_, level, name, provider, message) in zip(range(5, 10), EVENTS, strict=True))
    path.write_text('#TYPE System.Diagnostics.Eventing.Reader.EventLogRecord\n'
                    '"Message","Level","ProviderName","TimeCreated","LevelDisplayName"\n' + rows)
    assert [row["level"] for row in logs(path)] == ["ERROR", "INFO", "WARN", "FATAL", "TRACE"]
    assert logs(path)[1]["ts"] == datetime(2024, 5, 1, 10, 6)


def test_export_csvs_local_times_are_refused_saying_how_to_export_them_with_their_offset(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text('"Message","Level","ProviderName","TimeCreated","LevelDisplayName"\n'
                    '"The W3SVC service terminated.","2","Service Control Manager","5/1/2024 10:05:00 AM","Error"\n')
    with pytest.raises(InputError) as refused:
        load_telemetry(logs=path)
    assert str(refused.value).startswith(f"{path}: column 'TimeCreated' row 1: cannot parse '5/1/2024 10:05:00 AM'")
    assert str(refused.value).endswith(
        "; a Windows event export's TimeCreated is written in its machine's local words, without a zone: export it "
        "with its offset, e.g. Get-WinEvent ... | Select-Object @{n='TimeCreated';e={$_.TimeCreated.ToString('o')}}, "
        "* -ExcludeProperty TimeCreated | Export-Csv events.csv")
