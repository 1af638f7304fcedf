-- wrk script for bench/api.mjs: the bearer token comes from PF_TOKEN.
wrk.headers["Authorization"] = "Bearer " .. os.getenv("PF_TOKEN")
