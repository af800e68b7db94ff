"""The Deploy mode: targets, releases, deploy and rollback."""
