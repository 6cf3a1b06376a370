"""The PostgreSQL target: shadow database/schema, DDL, COPY stream, grants."""
