"""Public procurement notices from tender portals (RSS/Atom, JSON lists, HTML lists)."""
