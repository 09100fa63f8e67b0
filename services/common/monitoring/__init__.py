"""Monitoring generated from code: Grafana dashboards (dashboards.py, panels in
dashboard_panels.py) and the metric names their queries use (promql_names.py)."""
