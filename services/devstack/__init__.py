"""The local stack: Kafka and PostgreSQL started by the project itself, and the four services.

Used by `make run` / `make up` / `make down` and by the test suite. Nothing here runs in
production, where Kafka and PostgreSQL are named by RETAIN_KAFKA_BOOTSTRAP_SERVERS and
RETAIN_DATABASE_URL.
"""
