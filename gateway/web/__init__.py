"""The gateway's one HTTP server (FastAPI on uvicorn)."""
