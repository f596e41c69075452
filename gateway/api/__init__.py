"""The client API: `/api/v1/task` as GoAPI serves it (handlers, validation, task views,
the pass-through and its permissions, upstream ids kept out of messages)."""
