"""Generated from proto/octo/v1 by clients/generate.sh; do not edit."""
