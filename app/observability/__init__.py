"""What the service tells its operators: logs (through a bounded queue) and Prometheus metrics."""
