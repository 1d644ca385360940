"""checks_util.py — helpers for the line-check and agreement integration
tests: an AlarmCommand script that writes
its environment to a file, and read-only looks into a station's store."""

import os
import sqlite3
import stat

from station import scaled, wait_for


def write_script(tmp_path, name, body):
    """A shell script NAME.sh under TMP_PATH running BODY, whose output
    file is NAME.out (in BODY: OUT); returns (script path, output path)."""
    out = os.path.join(str(tmp_path), f"{name}.out")
    path = os.path.join(str(tmp_path), f"{name}.sh")
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + body.replace("OUT", f"'{out}'"))
    os.chmod(path, stat.S_IRWXU)
    return path, out


def alarm_script(tmp_path, name="alarm"):
    """An AlarmCommand that appends its HOTLINE_* environment, one alarm per
    block, to a file; returns (script path, output path)."""
    return write_script(tmp_path, name, "env | grep '^HOTLINE_' | sort >> OUT\n"
                                        "echo END >> OUT\n")


def alarms(out_path):
    """The alarms the script saw, each a dict of its HOTLINE_* variables."""
    try:
        with open(out_path) as f:
            text = f.read()
    except FileNotFoundError:
        return []
    result, cur = [], {}
    for line in text.splitlines():
        if line == "END":
            result.append(cur)
            cur = {}
        elif "=" in line:
            k, v = line.split("=", 1)
            cur[k] = v
    return result


def wait_alarm(out_path, kind, timeout=None):
    return wait_for(lambda: [a for a in alarms(out_path) if a.get("HOTLINE_ALARM") == kind],
                    timeout or scaled(20), f"an AlarmCommand run for {kind}")


def store_rows(station, sql, args=()):
    """Rows of SQL against STATION's store, opened read-only."""
    db = sqlite3.connect(f"file:{os.path.join(station.dir, 'store.db')}?mode=ro", uri=True,
                         timeout=10)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def checks(station, direction):
    """(id hex, mode, link, manual, result, station_at, person_at, no_person_at)."""
    return [(r[0].hex(),) + tuple(r[1:]) for r in store_rows(
        station, "SELECT id, mode, link, manual, result, station_at, person_at, no_person_at"
        " FROM checks WHERE dir = ? ORDER BY created_at", (0 if direction == "out" else 1,))]


RESULT = {0: "pending", 1: "ok", 2: "no_connection", 3: "no_answer", 4: "no_person"}
