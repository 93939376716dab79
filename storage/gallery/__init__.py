"""Gallery storage: sign-in links used once and web sessions (issue 16)."""
