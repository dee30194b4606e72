"""Search and ask: fact selection within a token budget, prompts, citations and the extractive answerer."""
