"""The Activity page: the account's audit trail (docs/security.md, "Audit trail")."""
