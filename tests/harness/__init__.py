"""Applying Terraform into the local cloud and driving pipelines: the CLI configuration and roots (terraform),
an applied example and its pipeline runs (deployment), what happened to a job (timeline), and the matrix runner
(matrix)."""
