"""Webhooks: mjgate's credentials towards GoAPI (`credentials`), GoAPI's webhooks and account
notifications coming in (`inbound`), and client webhooks going out (`outbound`)."""
