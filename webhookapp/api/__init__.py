"""The public JSON API under /public/v1: token-authenticated, CSRF-exempt, JSON errors."""
