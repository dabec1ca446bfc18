"""What operators watch: structured logs and the Prometheus ``/metrics`` endpoint."""
