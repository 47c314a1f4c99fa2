"""The tools behind `make demo` (demo), `make bench` (bench) and `make faults` (faults_report); run them as
`PYTHONPATH=tests python -m scenarios.<name>`."""
