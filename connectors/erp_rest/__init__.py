"""ERP over REST: orders and inventory from a cursor-paginated JSON API (httpx)."""
