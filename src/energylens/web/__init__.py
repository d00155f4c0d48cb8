"""The web explorer (`energylens serve`): a FastAPI app, one page and a JSON API mirroring the CLI.

Needs the `web` extra (FastAPI, uvicorn, python-multipart); nothing here is imported by `import energylens`.
"""
