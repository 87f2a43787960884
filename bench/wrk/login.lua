-- wrk: sign in as the benchmark user, over and over (every attempt succeeds, so no throttling).
wrk.method = "POST"
wrk.body = "username=benchuser&password=correct%20horse%20battery%20staple"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Accept"] = "application/json"
