"""
The batch runner, in four rooms, each below the next:

- `jobs.py`: the values a run takes and gives (`Job`, `JobOutcome`,
  `BatchStats`) and `read_job`, the only reader of a job dict (the CLI's
  `validate` and `batch` use it too, so all three agree);
- `records.py`: the one flat record of an outcome (`JobOutcome.to_record()`,
  the CLI's `--out` lines, the journal export);
- `limiter.py`: the AIMD limit on creates in flight;
- `journal.py`: the durable journal and the codec of its outcome records;
- `runner.py`: `BatchRun`, which reads, claims, uploads, creates, watches,
  downloads and journals, built from the parts it is handed.
"""
