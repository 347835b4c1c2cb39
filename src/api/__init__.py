"""The local inference API (`python main.py serve`): FastAPI on 127.0.0.1, token required."""
