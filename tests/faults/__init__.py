"""The fault suite: whole processes (API, worker, Redis, the AWS emulator, `tilegraph dev`)
started here, killed and restarted, asserting that nothing acknowledged is lost and how long
recovery takes. Run alone with `make test-faults`; `make test` runs it too."""
