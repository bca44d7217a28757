"""
Everything on the wire, each file below the next:

- `retry.py`: `RetryPolicy`, the Retry-After rule and the one retry loop (pure
  but for the sleep it is handed);
- `decode.py`: status + headers + bytes -> a `Response` and the value it
  holds, or the right `APIError` (sans-io);
- `transport.py`: the session, the concurrency limit, the 429 pause; one
  attempt at a time, driven by `retry.py`;
- `endpoints.py`: each API call's path, body and reply; Idempotency-Keys;
  task-id quoting;
- `uploads.py`: local files -> files-API URLs;
- `downloads.py`: result videos -> files on disk, one limit per client.
"""
