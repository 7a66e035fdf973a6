"""Procurement plans and tender attachments: text PDFs, scanned pages and images (OCR)."""
