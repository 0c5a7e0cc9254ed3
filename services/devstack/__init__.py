"""The local stack: Kafka, PostgreSQL and Mailpit (SMTP and an inbox) started by the project
itself, and the four services.

Used by `make run` / `make up` / `make down` and by the test suite. Nothing here runs in
production, where Kafka, PostgreSQL and the SMTP server are named by
RETAIN_KAFKA_BOOTSTRAP_SERVERS, RETAIN_DATABASE_URL and RETAIN_SMTP_HOST.
"""
