"""The operator's side: queue statistics and the metrics server."""
