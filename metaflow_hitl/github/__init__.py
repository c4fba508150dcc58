"""GitHub: webhook events, the Action's decision logic, and the PyGithub review backend."""
