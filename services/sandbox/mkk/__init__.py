"""MKS Online sandbox: a local simulator of MKK's REST API (reports), see app.py."""

from services.sandbox.mkk.app import create_app, sandbox_state
from services.sandbox.mkk.config import SandboxConfig, load_config

__all__ = ["SandboxConfig", "create_app", "load_config", "sandbox_state"]
