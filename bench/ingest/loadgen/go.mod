module retain/bench/ingest/loadgen

go 1.22
