"""Deployment files generated from the code's definitions (python -m deploy.manifests)."""
