"""Client keys: who is calling (`client`: the Client and its policy, static keys) and the
managed keys in Redis (`store`: lookup and rate limits on the request path, the admin half)."""
