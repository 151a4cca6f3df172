"""The `ssm-guard` command: the people's side of the guard."""
