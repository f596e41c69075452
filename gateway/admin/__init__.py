"""The operator API at `/admin/v1`: routes and auth (`routes`), bodies and views (`schemas`)."""
