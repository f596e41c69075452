"""Running on one machine: the sandbox (the emulator as upstream, a demo pool), the embedded
Redis, and child processes that die with their parent."""
