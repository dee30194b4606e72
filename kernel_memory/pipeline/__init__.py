"""The ingestion pipeline: status file, orchestrator, dispatchers and the steps.

The orchestrator (`pipeline.orchestrator.Pipeline`) runs one step per pointer
message; `pipeline.in_process` runs messages in this process, and
`queues.dispatcher` sends them to storage queues.
"""
