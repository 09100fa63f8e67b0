"""The demo runner and its flows (`kopru demo`, services/cli/demo.py)."""
