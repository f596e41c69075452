"""The HTTP service: settings, app factory, client contract, upstream client, webhooks,
admin API, metrics and CLI. Imports `routing`, never the reverse."""
