"""The development harness: `airflow dags test` runs on a private Airflow home (the demo and the
DAG tests) and synthetic sample tensors for estimator tests and throughput benchmarks."""
