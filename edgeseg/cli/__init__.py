"""typer CLI: one small module per command; heavy stages are imported inside the command body."""
