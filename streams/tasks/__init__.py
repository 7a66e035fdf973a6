"""Next-best-action tasks for store staff: intent without purchase, enriched and routed."""
