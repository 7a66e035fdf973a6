"""Delivery-platform and e-commerce reviews: JSON API polling and file exports."""
