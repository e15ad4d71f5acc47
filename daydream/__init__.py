"""The `daydream` command: the composition root, and the only code that starts
a bot or a worker (ARCHITECTURE.md). Nothing in `bot/`, `worker/` or `shared/`
imports it."""
