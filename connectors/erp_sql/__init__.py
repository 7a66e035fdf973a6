"""ERP over SQL: incremental orders and inventory from PostgreSQL (psycopg 3)."""
