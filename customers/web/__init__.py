"""Request plumbing every route shares: problem documents and the one error mapping, JSON
output, request ids and the access line, logging set-up, API keys, limits and headers."""
