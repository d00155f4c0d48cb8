"""Command-line interface: thin Typer commands that parse options, call the library and print."""
