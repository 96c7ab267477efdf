"""Transport security, authentication, permissions and the audit log (README "Security")."""
