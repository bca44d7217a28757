"""
The batch runner, in rooms, each below the next:

- `jobs.py`: the values a run takes and gives (`Job`, `JobOutcome`,
  `BatchStats`) and `read_job`, the only reader of a job dict (the CLI's
  `validate` and `batch` use it too, so all three agree);
- `records.py`: the one flat record of an outcome (`JobOutcome.to_record()`,
  the CLI's `--out` lines, the journal export);
- `limiter.py`: the AIMD limit on creates in flight;
- `keys.py`: derived Idempotency-Keys, one per (run, job, request);
- `journal.py`: the SQLite journal; `pgjournal.py`: the PostgreSQL one,
  shared by the processes of a run; `store.py`: the protocol both meet;
- `runner.py`: `BatchRun`, which reads, claims, uploads, creates, watches,
  downloads and journals, built from the parts it is handed.
"""
