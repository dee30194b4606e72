"""The HTTP API: handlers shared by `kernel-memory serve` and the Functions app, auth, uploads, problem details."""
