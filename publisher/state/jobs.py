"""What ``publisher run`` remembers of each scheduled job: its last run
(``JobRun``), one record per job, replaced as the job starts and ends."""

from __future__ import annotations

from publisher.state.database import Database
from publisher.state.records import JobRun
from publisher.state.schema import from_optional_iso, iso

_COLUMNS = "job, last_slot, last_started, last_finished, last_status, last_message"


def _job_run(row: tuple) -> JobRun:
    slot, started, finished = (from_optional_iso(text) for text in row[1:4])
    return JobRun(row[0], slot, started, finished, row[4], row[5])


class SqlJobRepository:
    def __init__(self, database: Database):
        self._db = database

    def all(self) -> dict[str, JobRun]:
        """Every job's last run, by job name."""
        return {row[0]: _job_run(row) for row in self._db.query(f"SELECT {_COLUMNS} FROM job_runs ORDER BY job")}

    def get(self, job: str) -> JobRun | None:
        row = self._db.query_one(f"SELECT {_COLUMNS} FROM job_runs WHERE job = ?", (job,))
        return _job_run(row) if row else None

    def record(self, run: JobRun) -> None:
        """Replace ``run.job``'s record with ``run`` (joining the caller's transaction, if any)."""
        with self._db.change("record a job run"):
            self._db.execute(
                f"""INSERT INTO job_runs ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT(job) DO UPDATE SET
                      last_slot = excluded.last_slot, last_started = excluded.last_started,
                      last_finished = excluded.last_finished, last_status = excluded.last_status,
                      last_message = excluded.last_message""",
                (
                    run.job,
                    iso(run.last_slot) if run.last_slot else None,
                    iso(run.started) if run.started else None,
                    iso(run.finished) if run.finished else None,
                    run.status,
                    run.message,
                ),
            )
