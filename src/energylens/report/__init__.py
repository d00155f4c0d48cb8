"""Reports: plots, Markdown and self-contained HTML."""
