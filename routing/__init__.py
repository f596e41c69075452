"""What to decide and how to count: modes, plans, costs, accounts and the Redis store.

This package never imports Starlette or httpx; the gateway imports it, never the reverse.
"""
