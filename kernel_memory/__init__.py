"""Kernel Memory in Python: document ingestion and retrieval-augmented answers with citations."""
